import '../src/perimeter/lockdown.js';
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { appendFile, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { acquireHomeLock, HomeLockedError } from '../src/home/lock.js';
import { homePaths } from '../src/home/home.js';
import { announceNode, runningNode } from '../src/home/running-node.js';
import { loadIdentity } from '../src/identity/index.js';
import { Journal, memoryJournalFile, type AppendBody } from '../src/journal/journal.js';
import { openFsJournalFile } from '../src/journal/fs-file.js';
import { openKernel, repairHome } from '../src/home/open.js';
import { encodeValue } from '../src/closures/values.js';
import type { Principal, Token } from '../src/interface/ids.js';
import type { Identity } from '../src/identity/identity.js';
import { tempDir, journalEntries } from './_helpers.js';

const token = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' as Token;
const callBody = (identity: Identity, n: number): AppendBody => ({ kind: 'call', token, caller: identity.principal as Principal, args: encodeValue([n, 'x']) });
const journalPowers = (identity: Identity) => ({ identity, clock: () => 1_700_000_000_000, schedule: setImmediate });

const newHome = async (t: ExecutionContext) => {
  const home = join(await tempDir(t), 'home');
  await (await openKernel({ home, create: true })).close();
  return { home, paths: homePaths(home), identity: await loadIdentity(homePaths(home).identity) };
};

test('the home lock is exclusive, names its holder, and is free once released', async (t) => {
  const dir = await tempDir(t);
  const lock = join(dir, 'lock');
  const release = await acquireHomeLock(dir, lock);
  const error = await t.throwsAsync(acquireHomeLock(dir, lock, { waitMs: 100 }), { instanceOf: HomeLockedError });
  t.is((error as HomeLockedError).code, 'ERR_HOME_LOCKED');
  t.regex(error!.message, new RegExp(`in use by process ${process.pid};`));
  await release();
  await release(); // twice is harmless
  await (await acquireHomeLock(dir, lock, { waitMs: 100 }))();
});

test('a waiter for the home lock stops when its signal aborts', async (t) => {
  const dir = await tempDir(t);
  const lock = join(dir, 'lock');
  const release = await acquireHomeLock(dir, lock);
  const controller = new AbortController();
  const waiting = acquireHomeLock(dir, lock, { waitMs: 60_000, signal: controller.signal });
  setTimeout(() => controller.abort(new Error('a node serves the home now')), 50);
  await t.throwsAsync(waiting, { message: 'a node serves the home now' });
  await release();
});

test('a lock file left by a process that was killed (or by the old pid lock) does not hold the home', async (t) => {
  const dir = await tempDir(t);
  const lock = join(dir, 'lock');
  // What the old lock left behind: a file naming a pid (ours, so alive).
  await writeFile(lock, String(process.pid));
  await (await acquireHomeLock(dir, lock, { waitMs: 100 }))();
  // A process holding the lock is killed with SIGKILL: the OS lets go of it.
  const holder = spawn(
    process.execPath,
    ['--import=tsx', '-e', `import('./src/home/lock.ts').then(async ({ acquireHomeLock }) => { await acquireHomeLock(${JSON.stringify(dir)}, ${JSON.stringify(lock)}); process.stdout.write('held\\n'); setInterval(() => {}, 1000); })`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  t.teardown(() => void holder.kill('SIGKILL'));
  await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
  const error = await t.throwsAsync(acquireHomeLock(dir, lock, { waitMs: 100 }));
  t.regex(error!.message, new RegExp(`in use by process ${holder.pid};`));
  const exited = new Promise((resolve) => holder.once('close', resolve));
  holder.kill('SIGKILL');
  await exited;
  await (await acquireHomeLock(dir, lock, { waitMs: 100 }))();
});

test('a journal refuses to append to a file another process wrote to', async (t) => {
  const { identity } = await newHome(t);
  const path = join(await tempDir(t), 'journal');
  const { journal } = await Journal.open({ file: await openFsJournalFile(path), ...journalPowers(identity) });
  journal.append(callBody(identity, 1));
  await journal.flush();
  const before = await readFile(path);
  await appendFile(path, new Uint8Array([0, 0, 0, 1, 0])); // someone else's bytes
  journal.append(callBody(identity, 2));
  const error = await t.throwsAsync(journal.flush());
  t.regex(error!.message, /another process wrote to it/);
  t.deepEqual(new Uint8Array((await readFile(path)).subarray(0, before.length)), new Uint8Array(before), 'nothing of ours landed after them');
  t.is((await readFile(path)).length, before.length + 5);
  // Closing still closes the file, and says the write failed.
  await t.throwsAsync(journal.close(), { message: /another process wrote to it/ });
  await journal.close();
});

test('a memory journal file checks where an append lands too', async (t) => {
  const file = memoryJournalFile();
  await file.append(new Uint8Array([1, 2]), 0);
  await t.throwsAsync(file.append(new Uint8Array([3]), 1), { message: /ends at byte 2, not 1/ });
});

/**
 * What two writers did to a journal: both read it up to record `fork`, then
 * each appended its own records after it. Returns the bytes of the first
 * writer's journal (the prefix repair must keep).
 */
const twoWriters = async (path: string, identity: Identity, fork: number) => {
  const { journal } = await Journal.open({ file: await openFsJournalFile(path), ...journalPowers(identity) });
  for (let i = 0; i < fork; i++) journal.append(callBody(identity, i));
  await journal.flush();
  const shared = await readFile(path);
  const sharedRecords = journal.length;
  for (let i = 0; i < 6; i++) journal.append(callBody(identity, 100 + i));
  await journal.close();
  const first = await readFile(path);
  // The second writer, from the same start.
  const second = join(path, '..', 'second');
  await writeFile(second, shared);
  const other = (await Journal.open({ file: await openFsJournalFile(second), ...journalPowers(identity) })).journal;
  for (let i = 0; i < 4; i++) other.append(callBody(identity, 200 + i));
  await other.close();
  const tail = (await readFile(second)).subarray(shared.length);
  await writeFile(path, Buffer.concat([first, tail]));
  return { first: new Uint8Array(first), tail: new Uint8Array(tail), tailRecords: other.length - sharedRecords };
};

test('a journal broken part way refuses to open with one line naming grid repair; repair keeps the verified prefix and moves the rest aside', async (t) => {
  const { home, paths, identity } = await newHome(t);
  const { first, tail, tailRecords } = await twoWriters(join(paths.journal, '0000000000000000'), identity, 10);
  const refused = await t.throwsAsync(openKernel({ home, create: false }));
  t.is((refused as { code?: string }).code, 'ERR_CORRUPT');
  t.regex(refused!.message, /^journal: record \d+ at byte \d+ does not link to the record before it; run `grid repair` to keep the records before it and move the rest aside$/);
  const keptRecords = Journal.parse(first, identity.principal).entries.length;

  const report = await repairHome({ home, clock: () => Date.parse('2026-11-28T08:41:07.123Z') });
  t.is(report.kept, keptRecords);
  t.is(report.keptBytes, first.length);
  t.regex(report.reason!, /does not link to the record before it/);
  t.deepEqual(report.moved, { records: tailRecords, from: first.length, to: first.length + tail.length, file: join(paths.root, 'journal.broken-2026-11-28T08-41-07.123Z') });
  t.deepEqual(new Uint8Array(await readFile(report.moved!.file)), tail, 'the moved bytes, unchanged');
  t.deepEqual(new Uint8Array(await readFile(join(paths.journal, '0000000000000000'))), first, 'the prefix, unchanged (it ended with a seal)');
  t.is(report.sealed, 0);
  t.false((await readdir(paths.root)).some((name) => name.endsWith('.tmp')));

  // The home opens again, with every record before the break, and goes on.
  const kernel = await openKernel({ home, create: false });
  t.is((await journalEntries(kernel.journal)).length, keptRecords);
  await kernel.close();
  // A second repair finds nothing to do.
  const again = await repairHome({ home });
  t.is(again.moved, undefined);
  t.is(again.kept, keptRecords);
});

test('repair seals kept records that no seal covered', async (t) => {
  const { home, paths, identity } = await newHome(t);
  const { first } = await twoWriters(join(paths.journal, '0000000000000000'), identity, 3);
  // Cut the first writer's last seal off, as if it died before sealing.
  const parsed = Journal.parse(first, identity.principal);
  const lastSeal = parsed.entries.at(-1)!;
  t.is(lastSeal.kind, 'seal');
  const unsealedPrefix = first.subarray(0, parsed.offsets.at(-1));
  const segment = join(paths.journal, '0000000000000000');
  const rest = (await readFile(segment)).subarray(first.length);
  await writeFile(segment, Buffer.concat([unsealedPrefix, rest]));
  const report = await repairHome({ home });
  t.is(report.kept, parsed.entries.length - 1);
  t.true(report.sealed > 0);
  const kernel = await openKernel({ home, create: false });
  t.is((await journalEntries(kernel.journal)).length, parsed.entries.length, 'the kept records and the seal repair added');
  t.is((await journalEntries(kernel.journal)).at(-1)!.kind, 'seal');
  await kernel.close();
});

test('repair on a whole journal moves nothing', async (t) => {
  const { home } = await newHome(t);
  const report = await repairHome({ home });
  t.is(report.moved, undefined);
  t.is(report.reason, undefined);
});

test('a node announcing itself is never seen half-written by a command looking for it', async (t) => {
  const path = join(await tempDir(t), 'node');
  await announceNode(path, 'ws://127.0.0.1:1');
  let missed = 0;
  let writing = true;
  const reader = (async () => {
    while (writing) if (!(await runningNode(path))) missed += 1;
  })();
  for (let i = 0; i < 300; i++) await announceNode(path, `ws://127.0.0.1:${i + 2}`);
  writing = false;
  await reader;
  t.is(missed, 0);
  t.is((await runningNode(path))?.url, 'ws://127.0.0.1:301');
});
