/**
 * Promise-graph queries on journals of 100,000 and 1,000,000 records: the
 * time to index them (once, record by record, as a node does while it
 * writes), each query's time at both sizes, and the index's memory against
 * the records' own. The target: interactive (≤ 100 ms) at a million records,
 * memory growing no faster than the journal.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal, type Entry } from '../dist/journal/journal.js';
import { followJournalFile, openFsJournalFile } from '../dist/journal/fs-file.js';
import { generateIdentity } from '../dist/identity/index.js';
import { encodeValue } from '../dist/closures/values.js';
import { blockCid } from '../dist/store/hashing.js';
import { encode } from '../dist/wire/index.js';
import { GraphIndex, renderTree } from '../dist/journal/queries.js';
import { medianOf, row, type Row } from './measure.js';

// Made once and shared, as interned strings would be: otherwise V8 deduplicates them while the index
// uses them as keys, and the index's memory comes out negative.
const PRINCIPALS = Array.from({ length: 300 }, (_, i) => `did:key:z6Mk${String(i).padStart(44, 'x')}`);
const TOKENS = new Map<number, string>();
const principal = (i: number) => PRINCIPALS[i]!;
const token = (i: number) => {
  let text = TOKENS.get(i);
  if (!text) TOKENS.set(i, (text = `bafyrei${String(i).padStart(52, 'a')}`));
  return text;
};

/**
 * A journal like a busy node's: 1,000 closures by 50 issuers, each delegated
 * to two principals, then calls by 200 callers, mostly fulfilled, some
 * revoked, a few left waiting on further promises.
 */
const journal = (size: number): Entry[] => {
  const entries: Entry[] = [];
  const add = (body: Record<string, unknown>) => entries.push(Object.freeze({ seq: entries.length, at: entries.length, ...body }) as unknown as Entry);
  for (let i = 0; i < 1000; i++) {
    add({ kind: 'issue', token: token(i), code: token(0), export: 'f', issuer: principal(i % 50) });
    for (const j of [1, 2]) add({ kind: 'wrap', token: token(10_000 + i * 2 + j), inner: token(i), delegator: principal(i % 50), audience: [principal(100 + ((i + j) % 200))], policies: [], issuer: principal(i % 50) });
  }
  for (let n = 0; entries.length < size; n++) {
    const call = entries.length;
    add({ kind: 'call', token: token(n % 1000), caller: principal(100 + (n % 200)), args: [n] });
    if (n % 100 === 7) add({ kind: 'promised', call, token: token(n % 1000) });
    else if (n % 20 === 3) add({ kind: 'revoked', call, reason: 'no' });
    else add({ kind: 'fulfilled', call, value: n, pure: true });
  }
  return entries;
};

/** Live heap, when the bench runs with --expose-gc (npm run bench does). */
const heap = () => {
  global.gc?.();
  global.gc?.();
  return process.memoryUsage().heapUsed;
};

export const benchGraph = async (): Promise<Row[]> => {
  const rows: Row[] = [];
  for (const size of [100_000, 1_000_000]) {
    const before = heap();
    const entries = journal(size);
    const recordsBytes = heap() - before;
    const started = process.hrtime.bigint();
    const index = new GraphIndex();
    for (const entry of entries) index.add(entry);
    const indexNs = Number(process.hrtime.bigint() - started);
    const indexBytes = heap() - before - recordsBytes;
    const label = size === 100_000 ? '100k' : '1M';
    rows.push({ name: `index ${label} records, per record`, median_ns: Math.round(indexNs / size), ops_per_s: Math.round(size / (indexNs / 1e9)) });
    if (global.gc) {
      rows.push({ name: `index memory (${label}): ${Math.round(indexBytes / size)} B/record; records ${Math.round(recordsBytes / size)} B`, median_ns: 0, ops_per_s: 0 });
    }
    const time = async (name: string, op: () => unknown, samples: number) => rows.push(row(`${name} (${label})`, await medianOf(op, samples, 3)));
    await time('who(token)', () => index.who(token(7) as never), 200);
    await time('show(token) as a tree', () => renderTree(index.show(token(7) as never)), 50);
    await time('pending()', () => index.pending(), 20);
    await time('calls({ token })', () => index.calls({ token: token(7) }), 20);
    await time('calls({ caller, since })', () => index.calls({ caller: principal(150), since: size * 0.9 }), 20);
    await time('broken()', () => index.broken().length, 200);
    // (Also keeps the records alive until here, as a node's journal keeps them: the memory rows count both.)
    if (index.pending().length === 0 || entries.length < size) throw new Error('bench/graph: the journal is not what it should be');
  }
  rows.push(...(await benchFollow()));
  return rows;
};

/**
 * A REPL on a home whose node is running reads the node's journal file: the
 * first look parses and verifies all of it, every later look only what was
 * appended since.
 */
const benchFollow = async (): Promise<Row[]> => {
  const rows: Row[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'grid-bench-follow-'));
  try {
    const identity = generateIdentity((n: number) => new Uint8Array(randomBytes(n)));
    const path = join(dir, 'journal');
    const { journal } = await Journal.open({ file: await openFsJournalFile(path), identity, clock: Date.now, schedule: setImmediate });
    const args = encodeValue([1, 2]);
    const tokens = Array.from({ length: 1000 }, (_, i) => blockCid(encode({ closure: i }), 0x71).toString());
    const caller = identity.principal;
    const write = async (count: number) => {
      for (let i = 0; i < count; i++) journal.append({ kind: 'call', token: tokens[i % 1000] as never, caller, args });
      await journal.flush();
    };
    await write(100_000);
    const follower = followJournalFile(path, identity.principal);
    let started = process.hrtime.bigint();
    await follower.entries();
    rows.push({ name: 'first look at a 100k-record journal file', median_ns: Number(process.hrtime.bigint() - started), ops_per_s: 0 });
    await write(1_000);
    started = process.hrtime.bigint();
    await follower.entries();
    rows.push({ name: 'next look, 1,000 records appended since', median_ns: Number(process.hrtime.bigint() - started), ops_per_s: 0 });
    rows.push(row('next look, nothing appended', await medianOf(() => follower.entries(), 200, 10)));
    await journal.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return rows;
};
