/**
 * `npm run bench -- memory`: what a node keeps per call (issue 13 item 6).
 * A `grid start` node in a child process (with --expose-gc and
 * bench/memory-probe.mjs, which collects garbage and reports on SIGHUP), one
 * client making MEMORY_CALLS (default 100,000) calls of a small pure closure,
 * 64 in flight: with distinct arguments (each executes in a vat and is
 * journaled and cached) and with the same arguments (cache hits). Figures are
 * bytes per call, after a full collection, against the same node before the
 * calls; and the RSS once the client has gone and the node sat idle.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateIdentity } from '../dist/identity/index.js';
import { connectNode } from '../dist/net/client.js';
import type { Row } from './measure.js';

const CALLS = Number(process.env.MEMORY_CALLS ?? 100_000);
const IN_FLIGHT = 64;
const random = (n: number) => new Uint8Array(randomBytes(n));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const grid = (home: string, args: string[]) =>
  new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [join(process.cwd(), 'bin', 'grid.js'), ...args, '--home', home], { env: { ...process.env, GRID_HOME: '' }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`grid ${args[0]} exited ${code}`))));
  });

type Figures = Record<'rss' | 'anon' | 'heapTotal' | 'heapUsed' | 'external' | 'arrayBuffers', number>;

/** Prints its figures (bytes, not times); returns no rows. */
export const benchMemory = async (): Promise<Row[]> => {
  for (const mode of ['distinct arguments', 'same arguments'] as const) {
    const home = await mkdtemp(join(tmpdir(), 'grid-bench-memory-'));
    const out = join(home, 'probe.jsonl');
    let node: ChildProcess | undefined;
    try {
      await grid(home, ['init']);
      await writeFile(join(home, 'add.js'), 'export const add = (ctx, a, b) => a + b;');
      const token = await grid(home, ['issue', join(home, 'add.js'), '--export', 'add']);
      node = spawn(process.execPath, ['--expose-gc', `--import=${join(process.cwd(), 'bench', 'memory-probe.mjs')}`, join(process.cwd(), 'bin', 'grid.js'), 'start', '--home', home, '--json'], {
        env: { ...process.env, GRID_HOME: '', MEMORY_PROBE_OUT: out },
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      const url = await new Promise<string>((resolve) => node!.stdout!.once('data', (d) => resolve(JSON.parse(String(d).split('\n')[0]!).url)));
      let reports = 0;
      const probe = async (): Promise<Figures> => {
        node!.kill('SIGHUP');
        for (;;) {
          await sleep(200);
          const lines = (await readFile(out, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean);
          if (lines.length > reports) return JSON.parse(lines[(reports = lines.length) - 1]!);
        }
      };
      const client = await connectNode(url, { identity: generateIdentity(random), random });
      const run = async (n: number, base: number) => {
        for (let i = 0; i < n; i += IN_FLIGHT) {
          await Promise.all(Array.from({ length: IN_FLIGHT }, (_, k) => client.call(token, mode === 'same arguments' ? [1, 1] : [base + i + k, 1])));
        }
      };
      await run(5_000, 1e9); // warm: vats started, code compiled
      await sleep(1_000);
      const before = await probe();
      await run(CALLS, 0);
      await sleep(1_000);
      const after = await probe();
      client.close();
      await sleep(10_000);
      const idle = await probe();
      const per = (key: keyof Figures) => Math.round((after[key] - before[key]) / CALLS);
      console.log(
        `${mode}, ${CALLS} calls: per call RSS ${per('rss')} B (anonymous ${per('anon')} B), V8 heap used ${per('heapUsed')} B of ${per('heapTotal')} B committed, ` +
          `array buffers ${per('arrayBuffers')} B; RSS ${Math.round(before.rss / 2 ** 20)} → ${Math.round(after.rss / 2 ** 20)} MB, ${Math.round(idle.rss / 2 ** 20)} MB 10 s after the client left`,
      );
    } finally {
      node?.kill('SIGKILL');
      await sleep(200);
      await rm(home, { recursive: true, force: true });
    }
  }
  return [];
};
