/**
 * A node killed with SIGKILL at random moments under load, and restarted, 50
 * times (CRASH_LOOP_KILLS for more; CRASH_LOOP_SEED repeats a run): after
 * each kill nothing acknowledged is missing beyond what README's group-commit
 * window allows, every block re-hashes to its CID, the journal verifies, and
 * the home reopened answers queries as one rebuilt from its journal does.
 * See test/_crash-loop.ts for what each check reads; `npm run bench --
 * durable` runs the same loop with more kills.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import type { ChildProcess } from 'node:child_process';
import { crashLoop } from './_crash-loop.js';
import { tempDir } from './_helpers.js';

const KILLS = Number(process.env.CRASH_LOOP_KILLS ?? 50);

test(`a node killed with SIGKILL under load ${KILLS} times loses nothing it acknowledged, and its home reopens as a rebuild would`, async (t) => {
  // Generous: 50 restarts of a real node cost 2–4 s of CPU each (node and checks), and a loaded machine stretches that.
  t.timeout(1_500_000);
  const seed = Number(process.env.CRASH_LOOP_SEED ?? Date.now() % 1_000_000);
  t.log(`seed ${seed} (CRASH_LOOP_SEED=${seed} repeats this run)`);
  const processes = new Set<ChildProcess>();
  t.teardown(() => {
    for (const child of processes) child.kill('SIGKILL');
  });
  const report = await crashLoop({ kills: KILLS, seed, dir: await tempDir(t, 'grid-crash-loop-'), processes, stopOnFailure: true, log: (line) => t.log(line), verbose: process.env.CRASH_LOOP_VERBOSE === '1', progressEvery: 10 });
  const { acknowledged: a } = report;
  t.log(
    `${report.kills} kills in ${report.seconds.toFixed(1)} s; acknowledged ${a.call} calls, ${a.hit} hits, ${a.apply} applies, ${a.delegate} delegations, ${a.through} calls through them, ${a.revoke} revocations; ` +
      `${report.lostInWindow} acknowledged group-committed operations taken back by kills (oldest answered ${report.oldestLostMs.toFixed(1)} ms before its kill); ${report.records} records; ` +
      `restart ${(report.restartMs.reduce((n, ms) => n + ms, 0) / report.restartMs.length).toFixed(0)} ms mean`,
  );
  t.deepEqual(report.failures, [], `seed ${seed}`);
  t.is(report.kills, KILLS);
  // The load did what it is for: each kind of operation was acknowledged (and so checked) along the way.
  for (const kind of ['call', 'hit', 'apply', 'delegate', 'through', 'revoke'] as const) t.true(a[kind] > 0, `no ${kind} was acknowledged (seed ${seed})`);
});
