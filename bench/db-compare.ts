/**
 * `npm run bench -- db`: lmdb (what a home's database is, db/database.ts)
 * against SQLite (better-sqlite3 12.x) on the kernel's own access pattern,
 * side by side in one process (issue 16, item 1).
 *
 * The same code runs above both engines: the record index of db/records.ts
 * (`RecordIndex.add`, `lmdbListStore`) is handed lmdb's table, or the same
 * five table operations (get, put, remove, getRange, transaction) done on a
 * SQLite table `records(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID` — so both
 * hold the same keys (list name, a zero byte, the seq as 8 bytes) and values
 * (the journal offset, then the item's value). Beside it, in the same
 * transaction, two tables the issue asks about that the kernel keeps in
 * memory today (in its snapshot): the pure-call cache (token, a zero byte,
 * the call's argument bytes → the answering record and the value's bytes)
 * and revocations (token → reason).
 *
 * DB_RECORDS synthetic journal records (default 1,000,000: calls on 1,000
 * closures by 200 callers, hits, settlements, a few pending, delegations,
 * revocations, a seal per write batch of 1–200 records, ~20 on average) are
 * indexed first in transactions of 50,000 (as a rebuild does), then
 * measured, the engines in turns:
 *   - group commits: one transaction per write batch with the journal
 *     position in it, awaited one after another (as RecordIndex.add), at the
 *     durability the index needs (it may lag the journal: a commit visible,
 *     flushed later — lmdb's default, SQLite WAL + synchronous NORMAL) and
 *     flushed before the next (lmdb `flushed`, SQLite WAL + FULL): commits/s,
 *     the median commit, and the node's main thread busy per commit (event
 *     loop utilization: lmdb commits on a thread of its own);
 *   - a cache get (hit, miss), a revocation check (revoked, not), the latest
 *     100 calls on a token (`calls`/`grid graph`), a page of 100 pending calls;
 *   - bytes on disk per journal record; open time of the existing database,
 *     in this process and in a fresh one (import, open, read its position).
 *
 * better-sqlite3 is not a dependency: it is loaded with require, so
 * NODE_PATH=/path/to/node_modules finds one installed elsewhere; without it
 * the suite says so and measures lmdb alone.
 */
import { createRequire } from 'node:module';
import { mkdtemp, rm, stat, readdir } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { openDatabase, tableOf, type Database, type Table } from '../dist/db/database.js';
import { RecordIndex, lmdbListStore, type ListStore } from '../dist/db/records.js';
import type { Entry, Journal, ScanStart } from '../dist/journal/journal.js';
import { blockCid } from '../dist/store/hashing.js';
import { encode } from '../dist/wire/index.js';
import { mediansInTurns, row, type Row } from './measure.js';

// ---- SQLite, if it can be loaded ----

interface SqliteStatement {
  run(...params: unknown[]): unknown;
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  pluck(on?: boolean): SqliteStatement;
  raw(on?: boolean): SqliteStatement;
}
interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  exec(sql: string): void;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  transaction(fn: () => void): () => void;
  close(): void;
}
type SqliteOpen = new (file: string) => SqliteDatabase;

const INSTALL = 'npm_config_build_from_source=true npm i --no-save better-sqlite3@12.11.1';
const require = createRequire(import.meta.url);
/** The version of the package `name` that `require` finds. */
const versionOf = (name: string) => {
  const main = require.resolve(name);
  const dir = main.slice(0, main.lastIndexOf(`/node_modules/${name}/`) + `/node_modules/${name}`.length);
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
};
const loadSqlite = (): { Sqlite: SqliteOpen; path: string; version: string } | { missing: string } => {
  try {
    const path = require.resolve('better-sqlite3');
    const version = versionOf('better-sqlite3');
    return { Sqlite: require(path) as SqliteOpen, path, version };
  } catch (error) {
    return { missing: (error as Error).message.split('\n')[0]! };
  }
};

/** better-sqlite3 binds Buffers, not plain Uint8Arrays: the same bytes, no copy. */
const blob = (bytes: Uint8Array) => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

/** The table operations db/records.ts uses, on a SQLite table (lmdb's `end` is exclusive, both ways). */
const sqliteTable = (db: SqliteDatabase, name: string) => {
  db.exec(`CREATE TABLE IF NOT EXISTS ${name}(k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID`);
  const get = db.prepare(`SELECT v FROM ${name} WHERE k = ?`).pluck();
  const put = db.prepare(`INSERT OR REPLACE INTO ${name}(k, v) VALUES (?, ?)`);
  const remove = db.prepare(`DELETE FROM ${name} WHERE k = ?`);
  const up = db.prepare(`SELECT k, v FROM ${name} WHERE k >= ? AND k < ? ORDER BY k LIMIT ?`).raw();
  const down = db.prepare(`SELECT k, v FROM ${name} WHERE k <= ? AND k > ? ORDER BY k DESC LIMIT ?`).raw();
  return {
    get: (key: Uint8Array) => get.get(blob(key)) as Buffer | undefined,
    put: (key: Uint8Array, value: Uint8Array) => (put.run(blob(key), blob(value)), true),
    remove: (key: Uint8Array) => (remove.run(blob(key)), true),
    getRange: ({ start, end, reverse, limit }: { start: Uint8Array; end: Uint8Array; reverse?: boolean; limit?: number }) =>
      ((reverse ? down : up).all(blob(start), blob(end), limit ?? -1) as Array<[Buffer, Buffer]>).map(([key, value]) => ({ key, value })),
    transaction: (writes: () => void) => {
      db.transaction(writes)();
      return Promise.resolve();
    },
    clearAsync: async () => void db.exec(`DELETE FROM ${name}`),
  };
};

// ---- the workload ----

const CLOSURES = 1_000;
const CALLERS = 200;
/** Records per transaction while loading (RecordIndex.open's CATCH_UP_RECORDS). */
const LOAD_RECORDS = 50_000;
const COMMITS_PER_TURN = 100;
const TURNS = 5;

const utf8 = new TextEncoder();
const concat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let at = 0;
  for (const part of parts) (out.set(part, at), (at += part.length));
  return out;
};
const u64 = (n: number) => {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
};
const xorshift = (seed: number) => {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
};
/** What one write batch puts beside the index: cache answers and revocations. */
interface Side {
  cache: Array<[Uint8Array, Uint8Array]>;
  revoked: Array<[Uint8Array, Uint8Array]>;
}
interface Batch {
  entries: Entry[];
  offsets: number[];
  position: ScanStart;
  side: Side;
}

/** Cache keys kept to look up. */
const SAMPLED = 100_000;

/** The synthetic journal: write batches, and what they name (to look up). */
const workload = () => {
  const random = xorshift(42);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const POOL = Uint8Array.from({ length: 1 << 20 }, () => Math.floor(random() * 256));
  const slice = (length: number) => {
    const at = Math.floor(random() * (POOL.length - length));
    return POOL.subarray(at, at + length);
  };

  const closures = Array.from({ length: CLOSURES }, (_, i) => blockCid(encode({ closure: i }), 0x71).toString());
  /** A tenth of the calls go to ten hot closures. */
  const callee = () => (random() < 0.1 ? closures[Math.floor(random() * 10)]! : pick(closures));
  const callers = Array.from({ length: CALLERS }, (_, i) => `did:key:z6Mk${String(i).padStart(44, 'x')}`);
  const wraps: string[] = [];
  const revoked: string[] = [];
  const cacheKeys: Uint8Array[] = [];
  const cacheKey = (token: string, args: Uint8Array) => concat(utf8.encode(token), new Uint8Array([0]), args);

  let seq = 0;
  let offset = 0;
  let fulfilled = 0;
  const lastCall = new Map<string, number>();
  const record = (batch: Batch, body: Record<string, unknown>) => {
    const entry = { seq: ++seq, at: 1_700_000_000_000 + seq, ...body } as unknown as Entry;
    batch.entries.push(entry);
    batch.offsets.push(offset);
    offset += 90 + Math.floor(random() * 80);
    return seq;
  };
  /** One journal write batch: 1–200 records (about 20 on average), then its seal. */
  const writeBatch = (): Batch => {
    const batch: Batch = { entries: [], offsets: [], position: { seq: 0, head: null }, side: { cache: [], revoked: [] } };
    if (seq === 0) for (const token of closures) record(batch, { kind: 'issue', token, code: 'bafkmodule', export: 'f', issuer: callers[0] });
    const size = Math.min(200, Math.max(1, Math.round(-Math.log(1 - random()) * 20)));
    while (batch.entries.length < size) {
      const token = callee();
      const caller = pick(callers);
      if (random() < 0.2) {
        record(batch, { kind: 'hit', token, caller, from: lastCall.get(token) ?? 1 });
        continue;
      }
      const args = slice(8 + Math.floor(random() * 56));
      const call = record(batch, { kind: 'call', token, caller, args, ...(random() < 0.1 && seq > 1000 ? { parent: seq - 1 - Math.floor(random() * 500) } : {}) });
      lastCall.set(token, call);
      const outcome = random();
      if (outcome < 0.005) {
        // left pending: running, or waiting for an approval
      } else if (outcome < 0.015) record(batch, { kind: 'promised', call, token: callee() });
      else if (outcome < 0.065) record(batch, { kind: 'revoked', call, reason: 'no', code: 'other' });
      else {
        const value = slice(16 + Math.floor(random() * 240));
        record(batch, { kind: 'fulfilled', call, value, pure: true });
        const key = cacheKey(token, args);
        // A uniform sample of the keys, to look up.
        if (cacheKeys.length < SAMPLED) cacheKeys.push(key);
        else if (random() < SAMPLED / ++fulfilled) cacheKeys[Math.floor(random() * SAMPLED)] = key;
        batch.side.cache.push([key, concat(u64(call), value)]);
      }
      if (random() < 0.002) {
        const token = blockCid(encode({ wrap: seq }), 0x71).toString();
        wraps.push(token);
        record(batch, { kind: 'wrap', token, inner: callee(), delegator: caller, audience: [pick(callers)], policies: [], issuer: caller });
      }
      if (random() < 0.0005 && wraps.length > 0) {
        const token = pick(wraps);
        revoked.push(token);
        record(batch, { kind: 'revoke', token, reason: 'revoked by owner', by: callers[0] });
        batch.side.revoked.push([utf8.encode(token), utf8.encode('revoked by owner')]);
      }
    }
    record(batch, { kind: 'seal', signer: callers[0] });
    batch.position = { seq, offset, head: slice(32).slice() };
    return batch;
  };
  return { writeBatch, closures, callers, wraps, revoked, cacheKeys, cacheKey, callee, slice, seq: () => seq };
};
/** Write batches put together, to index in one transaction (as a rebuild does). */
const joined = (batches: Batch[]): Batch => ({
  entries: batches.flatMap((batch) => batch.entries),
  offsets: batches.flatMap((batch) => batch.offsets),
  position: batches.at(-1)!.position,
  side: { cache: batches.flatMap((batch) => batch.side.cache), revoked: batches.flatMap((batch) => batch.side.revoked) },
});

// ---- the engines ----

interface Engine {
  readonly name: string;
  readonly index: RecordIndex;
  readonly store: ListStore;
  /** The side tables, for reads. */
  cacheGet(key: Uint8Array): Uint8Array | undefined;
  isRevoked(token: Uint8Array): boolean;
  /** Commit one batch (index and side tables, one transaction); `flushed`: and wait until it is on disk. */
  commit(batch: Batch, flushed: boolean): Promise<void>;
  setDurable?(flushed: boolean): void;
  keys(): number;
  /** Where the file's pages go: each table's, and those free. */
  space(): string;
  close(): Promise<void>;
}

/** The index over `store`, with the batch's side writes in its transaction. */
const indexOver = async (base: ListStore, sideWrite: (side: Side) => void) => {
  const queue: Side[] = [];
  const store: ListStore = { ...base, transact: (writes, at) => base.transact((tx) => (writes(tx), sideWrite(queue.shift()!)), at) };
  // An empty journal: nothing to catch up; RecordIndex.add does the rest.
  const journal = { position: () => ({ seq: 0, offset: 0, head: null }), onWritten: () => {}, locateWith: () => {} } as unknown as Journal;
  const { index } = await RecordIndex.open(journal, store);
  const add = async (batch: Batch) => {
    queue.push(batch.side);
    await index.add(batch);
    if (index.failure) throw index.failure;
  };
  return { index, store, add };
};

const openLmdb = async (dir: string): Promise<Engine & { database: Database }> => {
  const database = openDatabase(dir);
  const cache = tableOf(database, 'cache');
  const revokedTable = tableOf(database, 'revoked');
  const records = tableOf(database, 'records');
  const { index, store, add } = await indexOver(lmdbListStore(records), (side) => {
    for (const [key, value] of side.cache) void cache.put(key, value);
    for (const [key, value] of side.revoked) void revokedTable.put(key, value);
  });
  return {
    name: 'lmdb',
    database,
    index,
    store,
    cacheGet: (key) => cache.get(key),
    isRevoked: (token) => revokedTable.get(token) !== undefined,
    commit: async (batch, flushed) => {
      await add(batch);
      if (flushed) await database.flushed;
    },
    keys: () => (records.getStats() as { entryCount: number }).entryCount,
    space: () => {
      type Stats = { treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number; lastPageNumber: number; pageSize: number };
      const pages = (table: Table) => {
        const stats = table.getStats() as Stats;
        return stats.treeBranchPageCount + stats.treeLeafPageCount + stats.overflowPages;
      };
      const { lastPageNumber, pageSize } = database.getStats() as Stats;
      const mib = (count: number) => `${((count * pageSize) / 2 ** 20).toFixed(0)} MiB`;
      const used = { records: pages(records), cache: pages(cache), revoked: pages(revokedTable) };
      return `records ${mib(used.records)}, cache ${mib(used.cache)}, revoked ${mib(used.revoked)}, of ${mib(lastPageNumber + 1)} in the file (the rest free pages and lmdb's own)`;
    },
    close: () => database.close(),
  };
};

const SQLITE_PRAGMAS = ['journal_mode = WAL', 'synchronous = NORMAL', 'cache_size = -65536'];
const openSqlite = async (Sqlite: SqliteOpen, file: string): Promise<Engine & { db: SqliteDatabase }> => {
  const db = new Sqlite(file);
  for (const pragma of SQLITE_PRAGMAS) db.pragma(pragma);
  const records = sqliteTable(db, 'records');
  const cache = sqliteTable(db, 'cache');
  const revokedTable = sqliteTable(db, 'revoked');
  const { index, store, add } = await indexOver(lmdbListStore(records as unknown as Table), (side) => {
    for (const [key, value] of side.cache) cache.put(key, value);
    for (const [key, value] of side.revoked) revokedTable.put(key, value);
  });
  const count = db.prepare('SELECT count(*) FROM records').pluck();
  return {
    name: 'SQLite',
    db,
    index,
    store,
    cacheGet: (key) => cache.get(key),
    isRevoked: (token) => revokedTable.get(token) !== undefined,
    commit: (batch) => add(batch),
    setDurable: (flushed) => void db.pragma(`synchronous = ${flushed ? 'FULL' : 'NORMAL'}`),
    keys: () => count.get() as number,
    space: () => {
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      const mib = (count: number) => `${((count * pageSize) / 2 ** 20).toFixed(0)} MiB`;
      let tables = '';
      try {
        const rows = db.prepare("SELECT name, count(*) AS pages, sum(unused) AS unused FROM dbstat WHERE name IN ('records', 'cache', 'revoked') GROUP BY name").all() as Array<{ name: string; pages: number; unused: number }>;
        tables = `${rows.map((row) => `${row.name} ${mib(row.pages)} (${Math.round((100 * row.unused) / (row.pages * pageSize))}% unused)`).join(', ')}, of `;
      } catch {
        // dbstat not compiled in: the file's pages only
      }
      return `${tables}${mib(db.pragma('page_count', { simple: true }) as number)} in the file, ${mib(db.pragma('freelist_count', { simple: true }) as number)} free`;
    },
    close: async () => {
      db.pragma('wal_checkpoint(TRUNCATE)');
      db.close();
    },
  };
};

/** Bytes the files under `path` (a file, or a directory's files) take on disk. */
const onDisk = async (...paths: string[]): Promise<number> => {
  let total = 0;
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (!info) continue;
    if (info.isDirectory()) total += await onDisk(...(await readdir(path)).map((name) => join(path, name)));
    else total += info.blocks * 512;
  }
  return total;
};

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[values.length >> 1] ?? 0;
/** `value` with `digits` decimals and thousands separated by commas (lockdown tames toLocaleString). */
const fmt = (value: number, digits = 0) => {
  const [whole, fraction] = value.toFixed(digits).split('.');
  return whole!.replace(/\B(?=(\d{3})+(?!\d))/g, ',') + (fraction ? `.${fraction}` : '');
};

export const benchDbCompare = async (): Promise<Row[]> => {
  const RECORDS = Number(process.env.DB_RECORDS ?? 1_000_000);
  if (!Number.isSafeInteger(RECORDS) || RECORDS < 10_000) throw new TypeError(`DB_RECORDS is a whole number of journal records, at least 10,000 (got ${JSON.stringify(process.env.DB_RECORDS)})`);
  const sqlite = loadSqlite();
  if ('missing' in sqlite) console.log(`SQLite skipped: better-sqlite3 cannot be loaded (${sqlite.missing}); to compare, install it beside the project (${INSTALL}) or point NODE_PATH at a node_modules that has it`);
  else console.log(`lmdb ${versionOf('lmdb')} and better-sqlite3 ${sqlite.version} (${sqlite.path}); ${fmt(RECORDS)} records; load average ${loadavg().map((n) => n.toFixed(2)).join(' ')}`);
  const dir = await mkdtemp(join(tmpdir(), 'grid-bench-db-'));
  const lmdbDir = join(dir, 'lmdb');
  const sqliteFile = join(dir, 'index.sqlite');
  const table: Array<[string, string, string, string]> = [];
  const rows: Row[] = [];
  /** One figure per engine: a row each, and a line of the summary table (SQLite / lmdb as the ratio). */
  const figure = (what: string, lmdb: number, other: number | undefined, unit: string, digits = 1) => {
    table.push([what, `${fmt(lmdb, digits)} ${unit}`, other === undefined ? '—' : `${fmt(other, digits)} ${unit}`, other === undefined ? '' : `${(other / lmdb).toFixed(2)}×`]);
  };
  try {
    const engines: Engine[] = [await openLmdb(lmdbDir)];
    if (!('missing' in sqlite)) engines.push(await openSqlite(sqlite.Sqlite, sqliteFile));
    const [lmdb, other] = engines as [Engine, Engine | undefined];
    const { writeBatch, closures, callers, wraps, revoked, cacheKeys, cacheKey, callee, slice, seq } = workload();

    // Load: transactions of 50,000 records, the engines in turns on the same batches.
    const loadMs = new Map<Engine, number>(engines.map((engine) => [engine, 0]));
    while (seq() < RECORDS) {
      const batches: Batch[] = [];
      for (let n = 0; n < LOAD_RECORDS && seq() < RECORDS; ) {
        const batch = writeBatch();
        batches.push(batch);
        n += batch.entries.length;
      }
      const batch = joined(batches);
      for (const engine of engines) {
        const started = performance.now();
        await engine.commit(batch, false);
        loadMs.set(engine, loadMs.get(engine)! + performance.now() - started);
      }
    }
    const loaded = seq();
    figure('load (a rebuild: 50,000 records a transaction), µs a record', (loadMs.get(lmdb)! * 1e3) / loaded, other && (loadMs.get(other)! * 1e3) / loaded, 'µs', 2);

    // Group commits: one transaction per write batch, awaited, in turns.
    const modes = [false, true];
    const spent = new Map<string, { ms: number; busy: number; commits: number; records: number; each: number[] }>();
    for (let turn = 0; turn < TURNS; turn++) {
      for (const flushed of modes) {
        const batches = Array.from({ length: COMMITS_PER_TURN }, writeBatch);
        for (const engine of engines) {
          engine.setDurable?.(flushed);
          const key = `${engine.name} ${flushed}`;
          const into = spent.get(key) ?? { ms: 0, busy: 0, commits: 0, records: 0, each: [] };
          spent.set(key, into);
          const loop = performance.eventLoopUtilization();
          const started = performance.now();
          for (const batch of batches) {
            const one = performance.now();
            await engine.commit(batch, flushed);
            into.each.push(performance.now() - one);
            into.records += batch.entries.length;
          }
          into.ms += performance.now() - started;
          into.busy += performance.eventLoopUtilization(loop).active;
          into.commits += batches.length;
        }
      }
    }
    for (const flushed of modes) {
      const of = (engine: Engine | undefined) => engine && spent.get(`${engine.name} ${flushed}`)!;
      const [l, s] = [of(lmdb)!, of(other)];
      const label = flushed ? 'flushed before the next (lmdb `flushed`; SQLite WAL, FULL)' : 'visible, flushed later (lmdb default; SQLite WAL, NORMAL)';
      figure(`group commit, ${label}: commits/s`, (l.commits / l.ms) * 1e3, s && (s.commits / s.ms) * 1e3, '/s', 0);
      figure(`… median commit (a batch of ~${Math.round(l.records / l.commits)} records)`, median(l.each) * 1e3, s && median(s.each) * 1e3, 'µs', 0);
      figure('… main thread busy per commit', (l.busy / l.commits) * 1e3, s && (s.busy / s.commits) * 1e3, 'µs', 0);
    }
    const total = seq();

    // Both engines hold the same index: a check that the comparison compares like with like.
    if (other) {
      if (lmdb.keys() !== other.keys()) throw new Error(`the engines' indexes differ: ${lmdb.keys()} keys in lmdb, ${other.keys()} in SQLite`);
      for (const name of ['O', 'X', `K${closures[0]}`, `B${callers[1]}`, `T${wraps[0]}`]) {
        if (JSON.stringify(lmdb.store.list(name)) !== JSON.stringify(other.store.list(name))) throw new Error(`the engines' list ${name} differs`);
      }
    }

    // Reads, in turns.
    // Arguments of 64 bytes or more: never cached (the workload's are 8–63).
    const misses = Array.from({ length: 10_000 }, (_, i) => cacheKey(callee(), slice(64 + (i % 64))));
    const notRevoked = closures.concat(wraps.filter((token) => !revoked.includes(token))).map((token) => utf8.encode(token));
    const isRevoked = revoked.map((token) => utf8.encode(token));
    const pendingCount = lmdb.store.list('O').length;
    const reads = (engine: Engine): Record<string, (i: number) => unknown> => {
      let after = 0;
      return {
        [`${engine.name} cache hit`]: (i) => engine.cacheGet(cacheKeys[i % cacheKeys.length]!) ?? fail('cache miss'),
        [`${engine.name} cache miss`]: (i) => (engine.cacheGet(misses[i % misses.length]!) ? fail('cache hit') : 0),
        [`${engine.name} revocation check, not revoked`]: (i) => engine.isRevoked(notRevoked[i % notRevoked.length]!),
        [`${engine.name} revocation check, revoked`]: (i) => engine.isRevoked(isRevoked[i % isRevoked.length]!),
        [`${engine.name} latest 100 calls on a token`]: (i) => engine.store.list(`K${closures[(i * 7919) % CLOSURES]}`, { reverse: true, limit: 100 }),
        [`${engine.name} a page of 100 pending calls`]: () => {
          const page = engine.store.list('O', { after, limit: 100 });
          after = page.length === 100 ? page[99]!.seq : 0;
          return page;
        },
      };
    };
    const fail = (what: string) => {
      throw new Error(`unexpected ${what}`);
    };
    const timed = await mediansInTurns(Object.assign({}, ...engines.map(reads)), { rounds: 10, perRound: 500, warmup: 1_000 });
    for (const what of ['cache hit', 'cache miss', 'revocation check, not revoked', 'revocation check, revoked', 'latest 100 calls on a token', 'a page of 100 pending calls']) {
      const l = timed[`lmdb ${what}`]!;
      const s = other && timed[`SQLite ${what}`];
      figure(what, l / 1e3, s && s / 1e3, 'µs', 2);
      rows.push(row(`db: lmdb ${what}`, l));
      if (s !== undefined) rows.push(row(`db: SQLite ${what}`, s, { name: `lmdb ${what}`, median_ns: l }));
    }

    for (const engine of engines) console.log(`${engine.name}: ${engine.space()}`);
    for (const engine of engines) await engine.close();
    const lmdbBytes = await onDisk(lmdbDir);
    const sqliteBytes = other ? await onDisk(sqliteFile, `${sqliteFile}-wal`, `${sqliteFile}-shm`) : undefined;
    figure(`bytes on disk per journal record (${fmt(total)} records, ${(lmdbBytes / 2 ** 20).toFixed(0)} MiB in lmdb)`, lmdbBytes / total, sqliteBytes && sqliteBytes / total, 'B', 0);

    // Open the existing database and read its position: here (files in the page cache) and in a fresh process.
    const positionKey = '[0, 0x70]';
    const openHere = { lmdb: [] as number[], SQLite: [] as number[] };
    for (let i = 0; i < 5; i++) {
      let started = performance.now();
      const database = openDatabase(lmdbDir);
      if (!lmdbListStore(tableOf(database, 'records')).position()) fail('lmdb position missing');
      openHere.lmdb.push(performance.now() - started);
      await database.close();
      if ('missing' in sqlite) continue;
      started = performance.now();
      const db = new sqlite.Sqlite(sqliteFile);
      for (const pragma of SQLITE_PRAGMAS) db.pragma(pragma);
      if (!lmdbListStore(sqliteTable(db, 'records') as unknown as Table).position()) fail('SQLite position missing');
      openHere.SQLite.push(performance.now() - started);
      db.close();
    }
    figure('open the database and read its position, in process', median(openHere.lmdb), other && median(openHere.SQLite), 'ms', 2);
    const databaseModule = fileURLToPath(new URL('../dist/db/database.js', import.meta.url));
    const fresh = (script: string) => JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })) as { load: number; open: number; total: number };
    const lmdbScript = `let t = performance.now(); const { openDatabase, tableOf } = await import(${JSON.stringify(databaseModule)}); const load = performance.now() - t; t = performance.now();
      const db = openDatabase(${JSON.stringify(lmdbDir)}); if (!tableOf(db, 'records').get(new Uint8Array(${positionKey}))) throw new Error('no position');
      console.log(JSON.stringify({ load, open: performance.now() - t, total: performance.now() })); await db.close();`;
    const sqliteScript =
      'missing' in sqlite
        ? ''
        : `import { createRequire } from 'node:module'; let t = performance.now(); const Sqlite = createRequire(import.meta.url)(${JSON.stringify(sqlite.path)}); const load = performance.now() - t; t = performance.now();
      const db = new Sqlite(${JSON.stringify(sqliteFile)}); for (const p of ${JSON.stringify(SQLITE_PRAGMAS)}) db.pragma(p);
      if (!db.prepare('SELECT v FROM records WHERE k = ?').get(Buffer.from(${positionKey}))) throw new Error('no position');
      console.log(JSON.stringify({ load, open: performance.now() - t, total: performance.now() })); db.close();`;
    const freshRuns = { lmdb: [] as Array<{ load: number; open: number; total: number }>, SQLite: [] as Array<{ load: number; open: number; total: number }> };
    for (let i = 0; i < 5; i++) {
      freshRuns.lmdb.push(fresh(lmdbScript));
      if (sqliteScript) freshRuns.SQLite.push(fresh(sqliteScript));
    }
    for (const part of ['load', 'open', 'total'] as const) {
      const what = { load: 'fresh process: import the engine', open: 'fresh process: open and read the position', total: 'fresh process: start to position read' }[part];
      figure(what, median(freshRuns.lmdb.map((run) => run[part])), other && median(freshRuns.SQLite.map((run) => run[part])), 'ms', 1);
    }

    console.log(`\n${fmt(total)} journal records (${pendingCount} calls pending, ${revoked.length} tokens revoked, ${fmt(cacheKeys.length)} cache keys sampled); load average after: ${loadavg().map((n) => n.toFixed(2)).join(' ')}\n`);
    console.log('| what | lmdb | SQLite | SQLite / lmdb |\n|---|---|---|---|');
    for (const line of table) console.log(`| ${line.join(' | ')} |`);
    console.log('');
    return rows;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
};
