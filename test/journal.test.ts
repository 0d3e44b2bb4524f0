import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { appendFile, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Journal, memoryJournalFile, JournalError, type AppendBody, type JournalFile } from '../src/journal/journal.js';
import { followJournalFile, openFsJournalFile } from '../src/journal/fs-file.js';
import { generateIdentity } from '../src/identity/index.js';
import type { Principal, Token } from '../src/interface/ids.js';
import { encodeValue } from '../src/closures/values.js';
import { tempDir, journalEntries } from './_helpers.js';
import { encode } from '../src/wire/index.js';

const identity = generateIdentity((n: number) => new Uint8Array(randomBytes(n)));
const token = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' as Token;
const powers = (file: JournalFile = memoryJournalFile()) => ({ file, identity, clock: () => 1_700_000_000_000, schedule: setImmediate });
const callBody = (n: number): AppendBody => ({ kind: 'call', token, caller: identity.principal as Principal, args: encodeValue([n, 'x']) });

const fill = async (path: string, count: number) => {
  const { journal } = await Journal.open(powers(await openFsJournalFile(path)));
  for (let i = 0; i < count; i++) journal.append(callBody(i));
  await journal.close();
};

test('entries survive a restart, in order, with seals', async (t) => {
  const path = join(await tempDir(t), 'journal');
  await fill(path, 5);
  const { journal, droppedBytes } = await Journal.open(powers(await openFsJournalFile(path)));
  t.is(droppedBytes, 0);
  const calls = (await journalEntries(journal)).filter((e) => e.kind === 'call');
  t.deepEqual(calls.map((e) => (e.kind === 'call' ? e.args[0] : -1)), [0, 1, 2, 3, 4]);
  t.is((await journalEntries(journal)).at(-1)?.kind, 'seal');
  t.deepEqual((await journalEntries(journal)).map((e) => e.seq), [...(await journalEntries(journal)).keys()]);
  await journal.close();
  t.is((await stat(path)).mode & 0o777, 0o600);
});

test('appends are batched: many appends, few seals', async (t) => {
  const { journal } = await Journal.open(powers());
  for (let i = 0; i < 3000; i++) journal.append(callBody(i));
  await journal.flush();
  const seals = (await journalEntries(journal)).filter((e) => e.kind === 'seal').length;
  t.true(seals >= 1 && seals <= 4, `${seals} seals for 3000 records`);
});

test('a torn tail is cut off and everything before it is intact', async (t) => {
  const path = join(await tempDir(t), 'journal');
  await fill(path, 3);
  const whole = await readFile(path);
  for (const cut of [1, 3, 7, 20]) {
    await writeFile(path, whole.subarray(0, whole.length - cut));
    const { journal, droppedBytes } = await Journal.open(powers(await openFsJournalFile(path)));
    t.true(droppedBytes > 0, `cut ${cut}`);
    const calls = (await journalEntries(journal)).filter((e) => e.kind === 'call').length;
    t.is(calls, 3, 'the torn record was the seal; the calls before it are kept');
    journal.append(callBody(99));
    await journal.close();
    // It is a valid journal again.
    const reopened = await Journal.open(powers(await openFsJournalFile(path)));
    t.is(reopened.droppedBytes, 0);
    t.is((await journalEntries(reopened.journal)).filter((e) => e.kind === 'call').length, 4);
    await reopened.journal.close();
    await writeFile(path, whole);
  }
});

test('a whole record that does not decode is tampering, not a torn tail', async (t) => {
  const path = join(await tempDir(t), 'journal');
  await fill(path, 2);
  const raw = await readFile(path);
  raw[raw.length - 1] = 0xff; // the last byte of the last whole frame
  await writeFile(path, raw);
  const error = await t.throwsAsync(Journal.open(powers(await openFsJournalFile(path))), { instanceOf: JournalError });
  t.is(error?.code, 'ERR_CORRUPT');
});

test('a crash that leaves zeros at the end is a torn tail too', async (t) => {
  const path = join(await tempDir(t), 'journal');
  await fill(path, 2);
  await writeFile(path, Buffer.concat([await readFile(path), Buffer.alloc(64)]));
  const { journal, droppedBytes } = await Journal.open(powers(await openFsJournalFile(path)));
  t.is(droppedBytes, 64);
  t.is((await journalEntries(journal)).filter((e) => e.kind === 'call').length, 2);
  await journal.close();
});

test('tampering before the tail refuses to open instead of dropping history', async (t) => {
  const path = join(await tempDir(t), 'journal');
  await fill(path, 4);
  const whole = await readFile(path);
  // Change one byte of the first record's argument (a CBOR small int: 0x00 -> 0x01).
  const tampered = Buffer.from(whole);
  const at = tampered.indexOf(Buffer.from([0x82, 0x00, 0x61, 0x78])); // args [0, "x"]
  t.true(at > 0);
  tampered[at + 1] = 0x05;
  await writeFile(path, tampered);
  const error = await t.throwsAsync(Journal.open(powers(await openFsJournalFile(path))), { instanceOf: JournalError });
  t.is(error?.code, 'ERR_CORRUPT');
  t.regex(error!.message, /does not link to the record before it/);
  t.deepEqual(await readFile(path), tampered, 'nothing was truncated');
});

test('a key that signs slowly (a tab\'s, through WebCrypto): records appended while a seal is signed follow it, and the chain verifies', async (t) => {
  const path = join(await tempDir(t), 'journal');
  let signing = 0;
  const slow = { principal: identity.principal, publicKey: identity.publicKey, sign: async (message: Uint8Array) => {
    signing += 1;
    await new Promise((resolve) => setTimeout(resolve, 20));
    return identity.sign(message);
  } };
  const { journal } = await Journal.open({ ...powers(await openFsJournalFile(path)), identity: slow });
  journal.append(callBody(0));
  const sealed = journal.flush();
  // While the seal is being signed: more records, and a write that must wait for it.
  for (let i = 1; i <= 3; i++) journal.append(callBody(i));
  const written = journal.written();
  // A reader meanwhile waits for what is cut, not for records still pending behind the seal.
  const reading = journalEntries(journal);
  t.is(signing, 1);
  await Promise.all([sealed, written]);
  t.deepEqual((await reading).map((e) => e.seq), [0, 1, 2, 3, 4, 5]);
  t.deepEqual(journal.recent(6).map((e) => e.seq), [0, 1, 2, 3, 4, 5], 'the recent records in order, the seal in its place');
  await journal.close();
  const reopened = await Journal.open(powers(await openFsJournalFile(path)));
  const entries = await journalEntries(reopened.journal);
  t.deepEqual(entries.map((e) => e.kind), ['call', 'seal', 'call', 'call', 'call', 'seal'], 'each seal right after the records it signs');
  t.deepEqual(entries.map((e) => e.seq), [0, 1, 2, 3, 4, 5]);
  await reopened.journal.close();
});

const failingKey = { principal: identity.principal, publicKey: identity.publicKey, sign: async (): Promise<Uint8Array> => {
  throw new Error('the key is gone');
} };

test('a seal that cannot be signed fails the write in one line, and nothing after it is written', async (t) => {
  const file = memoryJournalFile();
  const { journal } = await Journal.open({ ...powers(file), identity: failingKey });
  journal.append(callBody(0));
  await t.throwsAsync(journal.flush(), { instanceOf: JournalError, message: 'journal: could not seal: the key is gone' });
  journal.append(callBody(1));
  await t.throwsAsync(journal.written(), { message: 'journal: could not seal: the key is gone' });
  t.is(file.bytes().length, 0);
});

test('a seal whose signature does not verify is refused', async (t) => {
  const path = join(await tempDir(t), 'journal');
  await fill(path, 1);
  const raw = await readFile(path);
  // The last frame is the seal, [7, seq, at, prev, signer, sig]: its signature is the file's last 64 bytes.
  t.deepEqual([...raw.subarray(raw.length - 66, raw.length - 64)], [0x58, 0x40]);
  raw[raw.length - 10]! ^= 0xff;
  await writeFile(path, raw);
  const error = await t.throwsAsync(Journal.open(powers(await openFsJournalFile(path))), { instanceOf: JournalError });
  t.is(error?.code, 'ERR_CORRUPT');
  t.regex(error!.message, /seal \d+ at byte \d+ has a bad signature/);
});

test('records written after the last seal are sealed on open', async (t) => {
  const path = join(await tempDir(t), 'journal');
  await fill(path, 2);
  const raw = await readFile(path);
  // Drop the final seal frame exactly (a crash between the records and their seal).
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  let offset = 0;
  const frames: number[] = [];
  while (offset < raw.length) {
    frames.push(offset);
    offset += 4 + view.getUint32(offset);
  }
  await writeFile(path, raw.subarray(0, frames.at(-1)));
  const { journal, droppedBytes } = await Journal.open(powers(await openFsJournalFile(path)));
  t.is(droppedBytes, 0);
  t.is((await journalEntries(journal)).at(-1)?.kind, 'seal');
  t.is((await journalEntries(journal)).filter((e) => e.kind === 'call').length, 2);
  await journal.close();
});

test('property: a journal cut at any byte opens with every whole record before the cut', async (t) => {
  const { default: fc } = await import('fast-check');
  const file = memoryJournalFile();
  const { journal } = await Journal.open(powers(file));
  for (let i = 0; i < 6; i++) {
    journal.append(callBody(i));
    await journal.flush();
  }
  const expected = (await journalEntries(journal)).map((e) => e.seq);
  await journal.close();
  const whole = file.bytes();
  const ends: number[] = [];
  const view = new DataView(whole.buffer, whole.byteOffset, whole.byteLength);
  for (let offset = 0; offset < whole.length; ) ends.push((offset += 4 + view.getUint32(offset)));
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: whole.length }), async (cut) => {
      const opened = await Journal.open(powers(memoryJournalFile(whole.subarray(0, cut))));
      const entries = (await journalEntries(opened.journal));
      const wholeFrames = ends.filter((end) => end <= cut).length;
      t.deepEqual(entries.slice(0, wholeFrames).map((e) => e.seq), expected.slice(0, wholeFrames));
      t.is(opened.droppedBytes, cut - (ends[wholeFrames - 1] ?? 0));
      // Whole records after the last seal get a new seal, and nothing else is added.
      const lastKept = entries[wholeFrames - 1];
      t.is(entries.length, wholeFrames + (lastKept && lastKept.kind !== 'seal' ? 1 : 0));
      if (entries.length > wholeFrames) t.is(entries.at(-1)?.kind, 'seal');
      await opened.journal.close();
    }),
    { numRuns: 300 },
  );
});

test("a journal sealed by another key is not this node's journal", async (t) => {
  const file = memoryJournalFile();
  const stranger = generateIdentity((n: number) => new Uint8Array(randomBytes(n)));
  const { journal } = await Journal.open({ ...powers(file), identity: stranger });
  journal.append(callBody(1));
  await journal.close();
  const error = await t.throwsAsync(Journal.open(powers(memoryJournalFile(file.bytes()))), { instanceOf: JournalError });
  t.regex(error!.message, new RegExp(`seal 1 at byte \\d+ is signed by ${stranger.principal}, not by this node`));
});

test('a reader follows a journal another writer is growing: each look reads only what was appended', async (t) => {
  const path = join(await tempDir(t), 'journal');
  const { journal } = await Journal.open(powers(await openFsJournalFile(path)));
  const follower = followJournalFile(path, identity.principal);
  for (let i = 0; i < 10; i++) journal.append(callBody(i));
  await journal.flush();
  const first = await follower.entries();
  t.deepEqual(first.map((e) => e.seq), (await journalEntries(journal)).map((e) => e.seq));
  for (let i = 10; i < 20; i++) journal.append(callBody(i));
  await journal.flush();
  const [a, b] = await Promise.all([follower.entries(), follower.entries()]);
  t.is(a, b, 'looks at once share one read');
  t.deepEqual(b.map((e) => e.seq), (await journalEntries(journal)).map((e) => e.seq));
  t.deepEqual(b.filter((e) => e.kind === 'call').map((e) => (e.kind === 'call' ? e.args[0] : -1)), [...Array(20).keys()]);
  await journal.close();
  // Half a record (a writer caught mid-write) waits for the next look; a record that does not link is refused.
  const frame = new Uint8Array(4 + 50).fill(0x07);
  new DataView(frame.buffer).setUint32(0, 50);
  await appendFile(path, frame.subarray(0, 10));
  t.is((await follower.entries()).length, journal.length);
  await appendFile(path, frame.subarray(10));
  await t.throwsAsync(follower.entries(), { instanceOf: JournalError, message: /does not decode/ });
});

test('a journal is read a window at a time: records across windows', async (t) => {
  const path = join(await tempDir(t), 'journal');
  const { journal } = await Journal.open(powers(await openFsJournalFile(path)));
  // 1 MB records (the largest arguments) cross the edges of the 16 MiB read windows.
  const sizes = Array.from({ length: 40 }, (_, i) => 1_000_000 - i);
  sizes.forEach((size, i) => journal.append({ kind: 'call', token, caller: identity.principal, args: encodeValue([i, new Uint8Array(size)]) }));
  await journal.close();
  t.true((await stat(path)).size > 2 * 16 * 1024 * 1024);
  const reopened = await Journal.open(powers(await openFsJournalFile(path)));
  t.is(reopened.droppedBytes, 0);
  const calls = (await journalEntries(reopened.journal)).filter((e) => e.kind === 'call');
  t.deepEqual(calls.map((e) => (e.kind === 'call' ? [e.args[0], (e.args[1] as Uint8Array).length] : [])), sizes.map((size, i) => [i, size]));
  await reopened.journal.close();
});

const PAST_2_GIB = 2_150_000_000; // bytes; 2 GiB is 2_147_483_648

test('a journal file past 2 GiB opens: zeros a crash left at its end are cut off like any torn tail', async (t) => {
  const path = join(await tempDir(t), 'journal');
  await fill(path, 3);
  const whole = (await stat(path)).size;
  // A sparse file: 2.1 GiB long, holding almost no disk. readFile refuses files past 2 GiB.
  await truncate(path, PAST_2_GIB);
  const { journal, droppedBytes } = await Journal.open(powers(await openFsJournalFile(path)));
  t.is(droppedBytes, PAST_2_GIB - whole);
  t.is((await journalEntries(journal)).filter((e) => e.kind === 'call').length, 3);
  await journal.close();
  t.is((await stat(path)).size, whole);
});

test('zeros followed by data before the end are tampering, not a torn tail', async (t) => {
  const path = join(await tempDir(t), 'journal');
  await fill(path, 3);
  // Zeros longer than a read window, then a stray byte.
  await appendFile(path, new Uint8Array(17 * 1024 * 1024));
  await appendFile(path, new Uint8Array([1]));
  const error = await t.throwsAsync(Journal.open(powers(await openFsJournalFile(path))), { instanceOf: JournalError });
  t.is(error?.code, 'ERR_CORRUPT');
});

test("a revoked record keeps its code across a reopen; one written before codes were kept reads as the fallback", async (t) => {
  const path = join(await tempDir(t), 'journal');
  const first = (await Journal.open(powers(await openFsJournalFile(path)))).journal;
  const call = first.append(callBody(1));
  first.append({ kind: 'revoked', call: call.seq, reason: 'time limit', cause: 'limit', code: 'time-limit' });
  await first.close();
  const reopened = (await Journal.open(powers(await openFsJournalFile(path)))).journal;
  t.like((await journalEntries(reopened)).find((e) => e.kind === 'revoked'), { reason: 'time limit', cause: 'limit', code: 'time-limit' });
  t.like(JSON.parse(JSON.stringify((await journalEntries(reopened)).find((e) => e.kind === 'revoked'))), { code: 'time-limit' }, 'grid log --json shows it');
  await reopened.close();

  // Records as older versions wrote them: [kind, seq, at, prev, call, reason] and [..., reason, cause].
  const REVOKED = 3;
  const old = (seq: number, ...fields: unknown[]) => {
    const bytes = encode([REVOKED, seq, 1_700_000_000_000, null, ...fields]);
    const frame = new Uint8Array(4 + bytes.length);
    new DataView(frame.buffer).setUint32(0, bytes.length);
    frame.set(bytes, 4);
    return frame;
  };
  for (const fields of [[0, 'boom'], [0, 'boom', 'crash']]) {
    const { journal } = await Journal.open(powers(memoryJournalFile(old(0, ...fields))));
    t.like((await journalEntries(journal))[0], { kind: 'revoked', reason: 'boom', code: 'other' }, JSON.stringify(fields));
    await journal.close();
  }
});
