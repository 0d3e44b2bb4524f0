/**
 * The journal as segments (journal/segments.ts), the signed checkpoint
 * (journal/checkpoint.ts) and retention (home/retention.ts), on real files
 * with a small segment size: a journal spanning many segments opens, reads
 * and restarts; a torn tail in the last segment is cut; segments outside
 * `keep` are dropped behind a checkpoint whose snapshot restores what they
 * said when db/ is gone; a tampered checkpoint refuses to open; a home from
 * before segments opens.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, cp, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openKernel } from '../src/index.js';
import { Journal, JournalError, type Entry } from '../src/journal/journal.js';
import { listSegments, openSegmentedJournal, segmentName } from '../src/journal/segments.js';
import { followJournalFile } from '../src/journal/fs-file.js';
import { readCheckpoint, signCheckpoint } from '../src/journal/checkpoint.js';
import { checkpointRoots, parseKeep } from '../src/home/retention.js';
import { repairHome } from '../src/home/open.js';
import { homePaths } from '../src/home/home.js';
import { loadIdentity } from '../src/identity/key-file.js';
import { generateIdentity } from '../src/identity/index.js';
import { decode, encode } from '../src/wire/index.js';
import type { Token } from '../src/interface/ids.js';
import { source, tempDir, valueOf } from './_helpers.js';
import { gridProcesses } from './_processes.js';

const SEGMENT = 4096;
process.env.GRID_JOURNAL_SEGMENT_BYTES = String(SEGMENT);
const random = (n: number) => new Uint8Array(randomBytes(n));

const powers = (file: Awaited<ReturnType<typeof openSegmentedJournal>>, identity = generateIdentity(random)) => ({ file, identity, clock: Date.now, schedule: setImmediate });
const all = async (journal: Journal) => {
  const out: Entry[] = [];
  for await (const entry of journal.read(0)) out.push(entry);
  return out;
};
const callBody = (i: number) => ({ kind: 'call' as const, token: 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' as Token, caller: 'did:key:z6Mk' as never, args: encode([i, 'x'.repeat(i % 50)]) });

test('a journal spanning many segments opens, reads across them, restarts, and cuts a torn tail in the last segment', async (t) => {
  const dir = join(await tempDir(t), 'journal');
  await mkdir(dir);
  const identity = generateIdentity(random);
  const { journal } = await Journal.open(powers(await openSegmentedJournal(dir, { write: true, segmentBytes: SEGMENT }), identity));
  for (let i = 0; i < 600; i++) {
    journal.append(callBody(i));
    if (i % 50 === 49) await journal.written();
  }
  await journal.flush();
  const written = await all(journal);
  const segments = await listSegments(dir);
  t.true(segments.length >= 5, `${segments.length} segments`);
  t.is(segments[0]!.start, 0);
  for (const segment of segments.slice(0, -1)) t.true(segment.size >= SEGMENT && segment.size < SEGMENT + 64 * 1024, 'a segment closes at a batch past the limit');
  // Records read by number from anywhere, and a range that spans a boundary.
  const picked = [0, 77, 301, 599].map((seq) => seq);
  t.deepEqual((await journal.recordsBySeq(picked)).map((e) => e.seq), picked);
  await journal.close();

  const reopened = await Journal.open(powers(await openSegmentedJournal(dir, { write: true, segmentBytes: SEGMENT }), identity));
  t.is(reopened.droppedBytes, 0);
  t.deepEqual((await all(reopened.journal)).map((e) => e.seq), written.map((e) => e.seq));
  reopened.journal.append(callBody(1000));
  await reopened.journal.close();

  // A crash tears the last frame of the last segment: cut, and the rest is whole.
  const last = (await listSegments(dir)).at(-1)!;
  const frame = new Uint8Array(4 + 60).fill(7);
  new DataView(frame.buffer).setUint32(0, 60);
  await appendFile(last.path, frame.subarray(0, 20));
  const torn = await Journal.open(powers(await openSegmentedJournal(dir, { write: true, segmentBytes: SEGMENT }), identity));
  t.is(torn.droppedBytes, 20);
  t.is(torn.journal.length, written.length + 2);
  await torn.journal.close();

  // A reader following it sees every record across the segments.
  t.is((await followJournalFile(dir, identity.principal).entries()).length, written.length + 2);

  // A segment missing in the middle is not a torn tail: one line, no open.
  const middle = (await listSegments(dir))[2]!;
  await rename(middle.path, `${middle.path}.gone`);
  const refused = await t.throwsAsync(openSegmentedJournal(dir, { write: true }), { instanceOf: JournalError });
  t.is(refused!.code, 'ERR_CORRUPT');
  t.regex(refused!.message, /^journal: segment \d{16} starts at byte \d+, but the one before it ends at byte \d+: a segment is missing or was cut$/);
});

/** A home that revoked a token, applied a document and made calls, then made enough calls after that to fill several segments. */
const historyHome = async (home: string) => {
  const kernel = await openKernel({ home, create: true });
  const bob = generateIdentity(random);
  const code = await kernel.publish('export const double = (ctx, x) => x * 2; export const refuse = (ctx) => ctx.revoke("no");');
  const double = await kernel.issue({ code, export: 'double' });
  const gone = await kernel.issue({ code, export: 'double', env: { n: 1 } });
  const refuse = await kernel.issue({ code, export: 'refuse' });
  for (let i = 0; i < 10; i++) await kernel.call(i % 3 === 0 ? refuse : gone, [i], { caller: bob.principal });
  await kernel.revoke(gone, 'enough');
  const reducer = await kernel.issue({ code: await kernel.publish(await source('examples/budget.js')), export: 'update', replicable: true });
  const budget = await kernel.docs.create({ reducer, merges: ['json'], init: { total: 100, lines: {} } });
  valueOf(await kernel.docs.apply(budget.write, { set: 120 }));
  await kernel.flush();
  const early = kernel.journal.length;
  // Later history: enough to fill several segments.
  for (let i = 0; i < 200; i++) await kernel.call(double, [i + 1000], { caller: bob.principal });
  await kernel.flush();
  const state = kernel.stateSnapshot();
  const reputation = kernel.reputation();
  const heads = kernel.docs.held().find((held) => held.doc === budget.doc)!.heads;
  await kernel.close();
  return { gone, double, refuse, doc: budget.doc, heads, early, state, reputation, bob };
};

const segmentsOf = async (home: string) => listSegments(homePaths(home).journal);

test('--keep drops whole old segments behind a signed checkpoint; with db/ deleted the revocation, document head and reputation hold', async (t) => {
  const home = join(await tempDir(t), 'home');
  const before = await historyHome(home);
  const paths = homePaths(home);
  const segments = await segmentsOf(home);
  t.true(segments.length >= 4, `${segments.length} segments`);
  await cp(paths.db, join(home, '..', 'db-old'), { recursive: true });

  // Keep at most 3 segments' worth: the run at open (on the stored snapshot, at the journal's end) drops the rest.
  const kernel = await openKernel({ home, keep: `${SEGMENT * 3}B` });
  await kernel.close();
  const kept = await segmentsOf(home);
  t.true(kept.length < segments.length && kept.length <= 4, `${segments.length} → ${kept.length} segments`);
  t.true(kept.at(-1)!.start + kept.at(-1)!.size - kept[0]!.start <= SEGMENT * 3 + SEGMENT, 'about the size kept');
  t.is((await readFile(join(home, 'keep'), 'utf8')).trim(), `${SEGMENT * 3}B`, 'the keep is remembered in the home');
  const identity = await loadIdentity(paths.identity);
  const checkpoint = readCheckpoint(new Uint8Array(await readFile(join(paths.journal, 'checkpoint'))), identity.principal);
  t.is(checkpoint.start.offset, kept[0]!.start, 'the checkpoint names where the kept journal starts');
  t.true(checkpoint.start.seq > before.early, 'the revocation and the document are in dropped segments');
  t.deepEqual((await checkpointRoots(paths)).map(String), [checkpoint.state.snapshot], 'grid gc finds the snapshot block as a root');

  // db/ gone (or `grid repair`): the checkpoint's snapshot restores what the dropped records said.
  await rm(paths.db, { recursive: true });
  const restored = await openKernel({ home, keep: 'all' });
  t.deepEqual(restored.stateSnapshot(), before.state, 'the same state as before the drop');
  t.deepEqual(restored.reputation(), before.reputation);
  t.is(restored.journal.floor().seq, checkpoint.start.seq);
  // Queries on records before the checkpoint answer from what is kept, without crashing.
  const shown = await restored.records.show(before.gone);
  t.truthy(shown);
  t.deepEqual(await restored.records.calls({ token: before.gone }), [], 'its calls were all before the checkpoint');
  t.is((await restored.call(before.gone, [1])).status, 'revoked', 'the revocation holds');
  t.deepEqual(restored.docs.held().find((held) => held.doc === before.doc)!.heads, before.heads, 'the document head holds');
  t.true((await restored.records.calls({ token: before.double })).length > 0);
  await restored.records.who(before.gone);
  await restored.records.broken();
  await restored.records.pending();
  // A disclosure of a token whose records were dropped omits them.
  const disclosed = await restored.disclose(before.gone, before.bob.principal);
  t.true(Array.isArray(disclosed.records));
  // The journal goes on from there.
  await restored.call(before.double, [5]);
  await restored.close();
  t.false(existsSync(join(home, 'keep')), 'keep: all forgets it');

  // A database older than the checkpoint: its snapshot stands before the kept journal, the checkpoint's is used.
  await rm(paths.db, { recursive: true });
  await cp(join(home, '..', 'db-old'), paths.db, { recursive: true });
  const fromOld = await openKernel({ home });
  t.is((await fromOld.call(before.gone, [1])).status, 'revoked');
  t.deepEqual(fromOld.docs.held().find((held) => held.doc === before.doc)!.heads, before.heads);
  await fromOld.close();

  // grid repair (which deletes db/) on a home with a checkpoint keeps it and the kept journal.
  const report = await repairHome({ home });
  t.is(report.moved, undefined);
  const afterRepair = await openKernel({ home });
  t.is((await afterRepair.call(before.gone, [1])).status, 'revoked');
  t.deepEqual(afterRepair.reputation(), before.reputation, 'reputation from before the checkpoint (the calls since were the node\'s own)');
  await afterRepair.close();
});

test('a tampered checkpoint refuses to open with one line; so does one naming another head, or a missing snapshot block', async (t) => {
  const home = join(await tempDir(t), 'home');
  await historyHome(home);
  const paths = homePaths(home);
  await (await openKernel({ home, keep: `${SEGMENT * 2}B` })).close();
  const path = join(paths.journal, 'checkpoint');
  const good = new Uint8Array(await readFile(path));
  const identity = await loadIdentity(paths.identity);
  const checkpoint = readCheckpoint(good, identity.principal);
  await rm(paths.db, { recursive: true });

  const refusal = async (bytes: Uint8Array) => {
    await writeFile(path, bytes);
    const error = await t.throwsAsync(openKernel({ home }));
    t.false(error!.message.includes('\n'), 'one line');
    return error as Error & { code?: string };
  };
  // A field changed after signing: the kept journal said to start one record later.
  const fields = decode(good) as Record<string, unknown>;
  const moved = encode({ ...fields, start: { ...(fields.start as object), seq: checkpoint.start.seq + 1 } });
  const changed = await refusal(moved);
  t.is(changed.code, 'ERR_CHECKPOINT');
  t.regex(changed.message, /^journal: the checkpoint has a bad signature \(it was changed after the node signed it\); the segments before it are gone/);
  // Bytes that are no checkpoint.
  t.is((await refusal(new Uint8Array([1, 2, 3]))).code, 'ERR_CHECKPOINT');
  // Signed by another key.
  const stranger = await signCheckpoint({ at: checkpoint.at, start: checkpoint.start, state: checkpoint.state }, generateIdentity(random));
  t.regex((await refusal(stranger)).message, /is signed by did:key:\w+, not by this node/);
  // Signed by this node but naming a head the first kept record does not link to.
  const node = { principal: identity.principal, publicKey: identity.publicKey, sign: (bytes: Uint8Array) => identity.sign(bytes) };
  const wrongHead = await signCheckpoint({ at: checkpoint.at, start: { ...checkpoint.start, head: new Uint8Array(checkpoint.start.head!).fill(1) }, state: checkpoint.state }, node as never);
  const unlinked = await refusal(wrongHead);
  t.is(unlinked.code, 'ERR_CORRUPT');
  t.regex(unlinked.message, /does not link to the head the checkpoint names/);
  // The snapshot block gone, with db/ gone too.
  await writeFile(path, good);
  const [root] = await checkpointRoots(paths);
  const { blockPath } = await import('../src/store/index.js');
  await rm(blockPath(paths.blocks, root!));
  const missing = await t.throwsAsync(openKernel({ home }));
  t.is((missing as { code?: string }).code, 'ERR_CHECKPOINT');
  t.regex(missing!.message, /^journal: the checkpoint's snapshot block \w+ cannot be read/);
});

test('a home written before segments (one journal file) opens with the same state, its journal moved into the first segment', async (t) => {
  const home = join(await tempDir(t), 'home');
  const kernel = await openKernel({ home, create: true });
  const code = await kernel.publish('export const double = (ctx, x) => x * 2;');
  const double = await kernel.issue({ code, export: 'double' });
  for (let i = 0; i < 20; i++) await kernel.call(double, [i]);
  const state = kernel.stateSnapshot();
  const length = kernel.journal.length;
  await kernel.close();
  // The layout before segments: <home>/journal is the file.
  const paths = homePaths(home);
  const old = Buffer.concat(await Promise.all((await listSegments(paths.journal)).map((segment) => readFile(segment.path))));
  await rm(paths.journal, { recursive: true });
  await writeFile(paths.journal, old);
  // It follows as a file too (a reader of a home whose node has not moved it).
  const followed = (await followJournalFile(paths.journal, kernel.principal).entries()).length;
  t.true(followed > length, 'every record, and the seal closing wrote');
  const reopened = await openKernel({ home });
  t.deepEqual(reopened.stateSnapshot(), state, 'with its database (the offsets it names are the same)');
  t.is(reopened.journal.length, followed);
  await reopened.close();
  t.is((await readdir(paths.journal))[0], segmentName(0));
  t.deepEqual((await readFile(join(paths.journal, segmentName(0)))).subarray(0, old.length), old, 'the file, unchanged, is the first segment');
  // Again, without the database: rebuilt from the moved journal.
  await rm(paths.journal, { recursive: true });
  await writeFile(paths.journal, old);
  await rm(paths.db, { recursive: true });
  const rebuilt = await openKernel({ home });
  t.deepEqual(rebuilt.stateSnapshot(), state, 'rebuilt from the journal');
  await rebuilt.close();
});

test('--keep takes a duration or a size, or all', (t) => {
  t.deepEqual(parseKeep('30d'), { ms: 30 * 86_400_000 });
  t.deepEqual(parseKeep('12h'), { ms: 12 * 3_600_000 });
  t.deepEqual(parseKeep('500MB'), { bytes: 500e6 });
  t.deepEqual(parseKeep('2GiB'), { bytes: 2 * 2 ** 30 });
  t.is(parseKeep('all'), undefined);
  for (const bad of ['', '30', 'forever', '-1d', '0d', '5M', '1e9B']) {
    const error = t.throws(() => parseKeep(bad));
    t.is((error as { code?: string }).code, 'ERR_BAD_KEEP');
  }
});

test('--keep 30d drops only segments whose records are all older than the window', async (t) => {
  const home = join(await tempDir(t), 'home');
  let now = Date.parse('2026-01-01T00:00:00Z');
  const clock = () => now;
  const kernel = await openKernel({ home, create: true, clock });
  const code = await kernel.publish('export const double = (ctx, x) => x * 2;');
  const double = await kernel.issue({ code, export: 'double' });
  for (let i = 0; i < 100; i++) await kernel.call(double, [i]);
  await kernel.flush();
  const oldEnd = kernel.journal.position();
  now += 40 * 86_400_000; // forty days later
  for (let i = 0; i < 100; i++) await kernel.call(double, [1000 + i]);
  await kernel.close();
  const segments = await segmentsOf(home);
  t.true(segments.length >= 4);

  await (await openKernel({ home, keep: '30d', clock })).close();
  const kept = await segmentsOf(home);
  t.true(kept.length < segments.length, 'old segments dropped');
  t.true(kept[0]!.start <= oldEnd.offset! + SEGMENT + 64 * 1024, 'none from inside the window');
  // Every record kept from the old days is in the segment that straddles the window; every newer one is kept.
  const reopened = await openKernel({ home, clock });
  const records = await all(reopened.journal);
  t.true(records.filter((entry) => entry.at === now).length >= 100 * 2, 'every newer record kept');
  t.true(records.filter((entry) => entry.at < now).length < 100 * 2, 'older ones dropped, but for those in the segment that straddles the window');
  await reopened.close();
});

test('a running node drops segments as it goes: reads, queries and appends carry on across the drop', async (t) => {
  const home = join(await tempDir(t), 'home');
  const kernel = await openKernel({ home, create: true, keep: `${SEGMENT * 4}B` });
  const code = await kernel.publish('export const double = (ctx, x) => x * 2;');
  const double = await kernel.issue({ code, export: 'double' });
  const first = await kernel.call(double, [21]);
  t.is(valueOf(first), 42);
  const paths = homePaths(home);
  // A snapshot is due after 10,000 records and 2 s: cache hits make records fast.
  const started = Date.now();
  let hits = 0;
  while (!existsSync(join(paths.journal, 'checkpoint')) && Date.now() - started < 120_000) {
    for (let i = 0; i < 500; i++) await kernel.call(double, [21]);
    hits += 500;
    await kernel.flush();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.true(existsSync(join(paths.journal, 'checkpoint')), `a checkpoint after ${hits} cache hits`);
  t.true(kernel.journal.floor().seq > 0, 'the running journal reads from the checkpoint on');
  // The drop that wrote it may still be removing segments: until the first left is where the journal reads from.
  for (let tries = 0; tries < 1000 && (await segmentsOf(home))[0]!.start !== kernel.journal.floor().offset; tries++) await new Promise((resolve) => setTimeout(resolve, 10));
  t.is((await segmentsOf(home))[0]!.start, kernel.journal.floor().offset ?? 0);
  // Reading and querying across the drop.
  const records = await all(kernel.journal);
  t.is(records[0]!.seq, kernel.journal.floor().seq);
  t.true((await kernel.records.calls({ token: double })).every((view) => view.call.seq >= kernel.journal.floor().seq), 'calls answers from the kept records');
  const shown = await kernel.records.show(double);
  t.truthy(shown);
  t.is(valueOf(await kernel.call(double, [21])), 42, 'the cache answer, from before the checkpoint, still answers');
  const state = kernel.stateSnapshot();
  await kernel.close();
  await rm(paths.db, { recursive: true });
  const reopened = await openKernel({ home });
  t.deepEqual(reopened.stateSnapshot(), state, 'db/ deleted: the checkpoint and the kept journal give the same state');
  await reopened.close();
});

test('grid start --keep drops into --archive; grid reputation counts what the checkpoint summarized; a bad --keep is one line', async (t) => {
  const { grid, ok, startNode } = gridProcesses({ GRID_JOURNAL_SEGMENT_BYTES: String(SEGMENT) });
  const home = join(await tempDir(t), 'home');
  const before = await historyHome(home);
  const paths = homePaths(home);
  const segments = await segmentsOf(home);
  const bad = await grid(home, ['start', '--keep', 'forever']);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^grid: --keep takes a duration \(30d, 12h: s m h d w\) or a size \(500MB, 2GiB\), or all \(got "forever"\)\n?$/);
  const archive = join(home, '..', 'archive');
  const node = await startNode(t, home, ['--keep', `${SEGMENT * 2}B`, '--archive', archive]);
  // grid reputation with the node running follows its journal from the checkpoint on, with the checkpoint's tally.
  const through = JSON.parse(await ok(home, ['reputation', '--json'])) as { reputation: unknown };
  t.deepEqual(through.reputation, JSON.parse(JSON.stringify(before.reputation)));
  t.is(await node.stop(), 0);
  const moved = (await readdir(archive)).sort();
  t.true(moved.length > 0 && moved.length < segments.length, `${moved.length} of ${segments.length} segments archived`);
  t.deepEqual(moved, segments.slice(0, moved.length).map((segment) => segmentName(segment.start)), 'the oldest, unchanged names');
  t.true(existsSync(join(paths.journal, 'checkpoint')));
  // grid reputation, no node running: the checkpoint's tally, then the kept records.
  const { reputation } = JSON.parse(await ok(home, ['reputation', '--json'])) as { reputation: unknown };
  t.deepEqual(reputation, JSON.parse(JSON.stringify(before.reputation)));
});

test('grid gc keeps the checkpoint\'s snapshot block: after collecting, a home with db/ deleted still restores from it', async (t) => {
  const home = join(await tempDir(t), 'home');
  const before = await historyHome(home);
  await (await openKernel({ home, keep: `${SEGMENT * 2}B` })).close();
  const paths = homePaths(home);
  const [root] = await checkpointRoots(paths);
  t.truthy(root);
  const { collectGarbage } = await import('../src/home/gc.js');
  await collectGarbage({ home, keepModulesMs: 0 });
  const { blockPath } = await import('../src/store/index.js');
  t.true(existsSync(blockPath(paths.blocks, root!)), 'the snapshot block is kept');
  await rm(paths.db, { recursive: true });
  const restored = await openKernel({ home });
  t.deepEqual(restored.stateSnapshot(), before.state);
  await restored.close();
});
