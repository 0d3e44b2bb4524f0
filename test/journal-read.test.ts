/**
 * Issue 16: the journal keeps no history in memory. It is read back from its
 * file a window at a time (`read`, `batches`), a record found by number
 * through a sparse table of where records start, and its listeners hear
 * each batch once it is in the file (`onWritten`, with its position).
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { Journal, memoryJournalFile, readRecord, MARK_STRIDE, RECENT_RECORDS, type AppendBody, type JournalFile, type WrittenBatch } from '../src/journal/journal.js';
import { openFsJournalFile } from '../src/journal/fs-file.js';
import { generateIdentity } from '../src/identity/index.js';
import type { Principal, Token } from '../src/interface/ids.js';
import { encodeValue } from '../src/closures/values.js';
import { journalEntries, tempDir } from './_helpers.js';

const identity = generateIdentity((n: number) => new Uint8Array(randomBytes(n)));
const token = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' as Token;
const powers = (file: JournalFile = memoryJournalFile()) => ({ file, identity, clock: () => 1_700_000_000_000, schedule: setImmediate });
const callBody = (n: number): AppendBody => ({ kind: 'call', token, caller: identity.principal as Principal, args: encodeValue([n, 'x']) });
const argOf = (entry: { kind: string }) => (entry.kind === 'call' ? ((entry as unknown as { args: unknown[] }).args[0] as number) : -1);

test('read streams every record from the file, pending ones included, from any record number', async (t) => {
  const { journal } = await Journal.open(powers());
  for (let i = 0; i < 3 * MARK_STRIDE + 7; i++) journal.append(callBody(i));
  await journal.flush();
  for (let i = 0; i < 5; i++) journal.append(callBody(10_000 + i)); // still pending
  const all = await journalEntries(journal);
  t.is(all.length, journal.length);
  t.deepEqual(all.map((e) => e.seq), [...all.keys()]);
  t.deepEqual(all.filter((e) => e.kind === 'call').slice(-5).map(argOf), [10_000, 10_001, 10_002, 10_003, 10_004]);
  for (const from of [0, 1, MARK_STRIDE - 1, MARK_STRIDE, MARK_STRIDE + 1, 2 * MARK_STRIDE + 100, journal.length - 1]) {
    const first = (await journal.read(from).next()).value;
    t.is(first?.seq, from, `read(${from})`);
  }
  t.is((await journal.read(journal.length).next()).done, true);
  // records(): the exact bytes, found without an offsets array.
  const picked = [0, MARK_STRIDE + 3, 2 * MARK_STRIDE + 99, journal.length - 1];
  const bytes = await journal.records(picked);
  t.deepEqual(bytes.map((b) => readRecord(b).entry.seq), picked);
  await journal.close();
});

test('position, onWritten and a reopen from a position: only the records after it are verified', async (t) => {
  const path = join(await tempDir(t), 'journal');
  const { journal } = await Journal.open(powers(await openFsJournalFile(path)));
  const batches: WrittenBatch[] = [];
  journal.onWritten((batch) => batches.push(batch));
  t.deepEqual(journal.position(), { seq: 0, offset: 0, head: null });
  for (let i = 0; i < 50; i++) journal.append(callBody(i));
  await journal.flush();
  const middle = journal.position();
  t.is(middle.seq, journal.length);
  t.deepEqual(batches.flatMap((b) => b.entries.map((e) => e.seq)), [...Array(middle.seq).keys()], 'every record, seals included, in file order');
  t.deepEqual(batches.at(-1)!.position, middle);
  const offsets = batches.flatMap((b) => b.offsets);
  const located = await journal.recordsAt([{ seq: 7, offset: offsets[7]! }]);
  t.is(readRecord(located[0]!).entry.seq, 7);
  for (let i = 50; i < 60; i++) journal.append(callBody(i));
  await journal.close();

  // From the middle: the records before it are not read (a bad byte there is not seen), those after are.
  const { journal: reopened } = await Journal.open(powers(await openFsJournalFile(path)), { from: middle });
  t.is(reopened.length, (await journalEntries(reopened)).length);
  t.deepEqual((await journalEntries(reopened)).filter((e) => e.kind === 'call').map(argOf), [...Array(60).keys()]);
  const tail = [];
  for await (const entry of reopened.read(middle)) tail.push(entry);
  t.deepEqual(tail.filter((e) => e.kind === 'call').map(argOf), [...Array(10).keys()].map((i) => 50 + i));
  await reopened.close();
  // A position that is not this journal's is refused.
  const { journal: again } = await Journal.open(powers(await openFsJournalFile(path)));
  const wrong = { ...middle, head: (await journalEntries(again)).length > 0 ? new Uint8Array(middle.head!).fill(1) : null };
  await t.throwsAsync(async () => {
    for await (const _ of again.batches(wrong));
  }, { code: 'ERR_CORRUPT' });
  await again.close();
});

test('recent keeps only a bounded window of the latest records', async (t) => {
  const { journal } = await Journal.open(powers());
  for (let i = 0; i < 3 * RECENT_RECORDS; i++) journal.append(callBody(i));
  await journal.flush();
  const recent = journal.recent(10);
  t.deepEqual(recent.map((e) => e.seq), [...Array(10).keys()].map((i) => journal.length - 10 + i));
  t.true(journal.recent(1e9).length <= RECENT_RECORDS);
  await journal.close();
});

test('appending 200k records to a journal keeps the heap flat: no record is kept in memory', async (t) => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const file = memoryJournalFile();
  const { journal } = await Journal.open({ ...powers(file), schedule: (write: () => void) => void setImmediate(write) });
  const appendMany = async (count: number) => {
    for (let i = 0; i < count; i++) {
      journal.append(callBody(i));
      if (i % 1000 === 999) await journal.written();
    }
    await journal.flush();
  };
  await appendMany(20_000);
  gc();
  const before = process.memoryUsage().heapUsed;
  await appendMany(200_000);
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  // The file's bytes live outside the heap (ArrayBuffers); entries kept in memory cost ~800 B each (160 MB here).
  t.true(grown < 200_000 * 50, `the heap grew ${(grown / 2 ** 20).toFixed(1)} MiB for 200k records`);
  t.is(journal.length, (await journal.position()).seq);
  await journal.close();
});
