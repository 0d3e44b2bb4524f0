/**
 * A document's changes are durable once acknowledged: a node killed with
 * SIGKILL while changes pour in loses none it answered, and processes that
 * apply changes to one document on one home at once lose no update.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './_helpers.js';
import { gridProcesses } from './_processes.js';

// Commands wait for the home as long as it takes: a refusal after the default wait is not what these tests look for.
// Journal batches wait 300 ms before they are written, so an answer sent before its records reach the file would
// be lost to a kill in that window (without `journal.written()` in the docs part, this test fails).
const { grid, ok, startNode } = gridProcesses({ GRID_LOCK_WAIT_MS: '120000', GRID_JOURNAL_WRITE_DELAY_MS: '300' });

const counterHome = async (t: import('ava').ExecutionContext) => {
  const dir = await tempDir(t);
  const home = join(dir, 'home');
  await ok(home, ['init']);
  const module = join(dir, 'counter.js');
  await writeFile(module, 'export const update = (ctx, total, n) => total + n;\n');
  await ok(home, ['doc', 'create', module, '--reducer', 'update', '--init', '0', '--name', 'count']);
  return home;
};

test('changes a node acknowledged survive its kill -9', async (t) => {
  t.timeout(300_000);
  const home = await counterHome(t);
  const node = await startNode(t, home);
  const acknowledged: string[] = [];
  let alive = true;
  // Three writers apply changes while the node runs; the node is killed under them.
  const writer = async () => {
    while (alive) {
      const result = await grid(home, ['doc', 'apply', 'count.write', '1', '--json'], 120_000);
      if (result.code === 0 && alive) acknowledged.push(JSON.parse(result.stdout).version);
    }
  };
  const writers = [writer(), writer(), writer()];
  while (acknowledged.length < 6) await new Promise((resolve) => setTimeout(resolve, 50));
  alive = false;
  await node.crash();
  await Promise.all(writers);
  const log = JSON.parse(await ok(home, ['doc', 'log', 'count.read', '--json', '--limit', '1000'])).versions as Array<{ version: string }>;
  const kept = new Set(log.map((entry) => entry.version));
  t.deepEqual(acknowledged.filter((version) => !kept.has(version)), [], 'every acknowledged version is in the history');
  // The value follows from the history: one per change kept.
  t.is(Number(await ok(home, ['doc', 'show', 'count.read'])), log.length);
});

test('processes applying changes to one document on one home at once lose no update', async (t) => {
  t.timeout(300_000);
  const home = await counterHome(t);
  const results = await Promise.all(Array.from({ length: 6 }, (_, i) => grid(home, ['doc', 'apply', 'count.write', String(i + 1)], 240_000)));
  t.deepEqual(results.map((result) => result.code), [0, 0, 0, 0, 0, 0], results.map((result) => result.stderr).join('\n'));
  t.is(await ok(home, ['doc', 'show', 'count.read']), String(1 + 2 + 3 + 4 + 5 + 6));
});
