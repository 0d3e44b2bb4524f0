/**
 * `npm run bench -- durable`: the crash loop of test/crash-loop.test.ts
 * (test/_crash-loop.ts) with more kills: a real `grid start` node under load
 * from one driver, killed with SIGKILL at seeded random moments and
 * restarted, DURABLE_KILLS times (default 500; DURABLE_SEED repeats a run,
 * DURABLE_VERBOSE=1 prints every cycle). After each kill the same checks as
 * the test: nothing acknowledged missing beyond the group-commit window,
 * every block re-hashes, the journal verifies, and the reopened home answers
 * as a rebuild from its journal does. Prints the kills, the failures (must
 * be 0; the process then exits 1) and the restart time (spawn of `grid
 * start` to its listening line, timed alone: nothing else runs meanwhile),
 * over all kills and over the first and last tenth, as the journal grows.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crashLoop } from '../test/_crash-loop.js';
import { row, type Row } from './measure.js';

const mean = (values: readonly number[]) => values.reduce((sum, value) => sum + value, 0) / Math.max(1, values.length);
const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[values.length >> 1] ?? 0;

export const benchDurable = async (): Promise<Row[]> => {
  const kills = Number(process.env.DURABLE_KILLS ?? 500);
  if (!Number.isSafeInteger(kills) || kills < 1) throw new TypeError(`DURABLE_KILLS is a whole number of kills, at least 1 (got ${JSON.stringify(process.env.DURABLE_KILLS)})`);
  const seed = Number(process.env.DURABLE_SEED ?? Date.now() % 1_000_000);
  const dir = await mkdtemp(join(tmpdir(), 'grid-bench-durable-'));
  try {
    console.log(`crash loop: ${kills} kills, seed ${seed} (DURABLE_SEED=${seed} repeats this run)`);
    const report = await crashLoop({ kills, seed, dir, overlapRestarts: false, verbose: process.env.DURABLE_VERBOSE === '1', log: (line) => console.log(line) });
    const { restartMs: ms, acknowledged: a } = report;
    const tenth = Math.max(1, Math.floor(ms.length / 10));
    console.log(`kills ${report.kills}, failures ${report.failures.length} (must be 0), in ${report.seconds.toFixed(0)} s`);
    for (const failure of report.failures.slice(0, 20)) console.log(`  ${failure}`);
    if (report.failures.length > 20) console.log(`  … and ${report.failures.length - 20} more`);
    console.log(
      `restart (spawn to listening) after kill -9: mean ${mean(ms).toFixed(0)} ms, median ${median(ms).toFixed(0)} ms, max ${Math.max(...ms).toFixed(0)} ms; ` +
        `first ${tenth} kills ${mean(ms.slice(0, tenth)).toFixed(0)} ms mean, last ${tenth} ${mean(ms.slice(-tenth)).toFixed(0)} ms mean (${report.records} records at the end)`,
    );
    console.log(
      `acknowledged: ${a.call} executing calls, ${a.hit} repeated calls (cache hits), ${a.apply} doc applies, ${a.delegate} delegations, ${a.through} calls through them, ${a.revoke} revocations; ` +
        `${report.lostInWindow} acknowledged group-committed operations taken back by kills, the oldest answered ${report.oldestLostMs.toFixed(1)} ms before its kill`,
    );
    if (report.failures.length > 0) process.exitCode = 1;
    return [row('restart after kill -9 under load (median)', median(ms) * 1e6)];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};
