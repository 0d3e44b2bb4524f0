/**
 * The kernel's call path against a plain JS call of the same function, in
 * the same process: warm calls (executing), calls in flight together, and
 * cache hits.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openKernel } from '../dist/index.js';
import { medianBatched, medianOf, row, throughput, type Row } from './measure.js';

const SOURCE = 'export const greet = (ctx, name) => `${ctx.env.greeting}, ${name}`;';

export const benchKernel = async (): Promise<Row[]> => {
  const rows: Row[] = [];
  const greet = (ctx: { env: { greeting: string } }, name: string) => `${ctx.env.greeting}, ${name}`;
  const ctx = { env: { greeting: 'hi' } };
  const plain = { name: 'plain JS call', median_ns: medianBatched((i) => greet(ctx, `n${i}`)) };
  rows.push(row(plain.name, plain.median_ns));

  const home = await mkdtemp(join(tmpdir(), 'grid-bench-'));
  try {
    for (const [label, options] of [
      ['memory', { memory: true as const }],
      ['home', { home }],
    ] as const) {
      const kernel = await openKernel(options);
      const token = await kernel.issue({ code: await kernel.publish(SOURCE), export: 'greet', env: { greeting: 'hi' } });
      // Distinct arguments: every call misses the cache and executes.
      const warm = await medianOf((i) => kernel.call(token, [`n${i}`]), 20_000);
      rows.push(row(`warm call, executes (${label})`, warm, plain));
      const perSecond = await throughput((i) => kernel.call(token, [`m${i}`]), 100_000, 256);
      rows.push({ name: `calls/s, 256 in flight (${label})`, median_ns: Math.round(1e9 / perSecond), ops_per_s: Math.round(perSecond) });
      await kernel.call(token, ['cached']);
      const hit = await medianOf(() => kernel.call(token, ['cached']), 20_000);
      rows.push(row(`cache hit (${label})`, hit, plain));
      await kernel.close();
    }
  } finally {
    await rm(home, { recursive: true, force: true });
  }
  return rows;
};
