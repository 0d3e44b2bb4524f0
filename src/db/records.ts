/**
 * The record index: which journal records are about what, so that the
 * queries (`show/who/calls/pending/broken`, `grid graph TOKEN`, a
 * disclosure) read only the records they answer with, never the journal.
 *
 * It is derived state. Every batch the journal writes is indexed in one
 * transaction that also records the journal position it reflects; at open,
 * an index behind the journal is caught up by reading the journal from that
 * position (the same `#index` as live), and one that is missing, ahead, or
 * whose position does not match the journal's records is rebuilt from it.
 *
 * Lists, each in record order, each item a record's number and where it
 * starts in the journal file (so that reading it is one read):
 *
 *   T id      records about a token or document, other than calls on it:
 *             issue, revoke/revocation(s), wraps of it (as inner), doc records
 *   Q id      a token's policy state and replications (only `graph` reads them)
 *   W token   the delegation that made `token` (its wrap record)
 *   K token   calls on `token`            H token   cache hits on `token`
 *   B caller  calls `caller` made         P call    calls made within `call`
 *   S call    records that settle `call` (fulfilled, revoked, promised, forwarded, screened)
 *   O         calls not settled yet (with their token)
 *   V token   calls waiting on `token`, a further promise
 *   X         broken: calls that ended revoked, and revocations
 *   Z         seals
 *   M         every MARK_STRIDE-th record (the journal finds any other from the nearest)
 *
 * Two implementations hold the lists: lmdb tables in the home's database
 * (db/database.ts), and memory for memory kernels (a small journal).
 */
import type { Table } from './database.js';
import { encode, decode } from '../wire/index.js';
import { equals } from 'multiformats/bytes';
import { MARK_STRIDE, readRecord, type Entry, type Journal, type ScanStart, type WrittenBatch } from '../journal/journal.js';

/** One item of a list: a record's number and the byte where its frame starts. */
export interface Located {
  readonly seq: number;
  readonly offset: number;
}

/** How much of a list to read: the `limit` first (or last, `reverse`) after `after` (before it, `reverse`). */
export interface Page {
  readonly limit?: number;
  readonly reverse?: boolean;
  /** Exclusive: items with a larger seq (a smaller one, `reverse`). */
  readonly after?: number;
}

/** What the index keeps besides its lists: counts per token and the last seal. */
export interface TokenCounts {
  readonly calls: number;
  readonly hits: number;
  /** The seq and offset of the last cache hit on the token. */
  readonly lastHit?: Located;
}

/** Where lists are kept: the same operations in lmdb and in memory. */
export interface ListStore {
  /** The position the store reflects, as the last transaction wrote it. */
  position(): ScanStart | undefined;
  /** Run `writes` as one transaction ending with `position` recorded; resolves once committed. */
  transact(writes: (tx: ListWriter) => void, position: ScanStart): Promise<void>;
  list(name: string, page?: Page): Located[];
  /** An item of a list, if there. */
  item(name: string, seq: number): (Located & { value?: Uint8Array }) | undefined;
  counts(token: string): TokenCounts;
  lastSeal(): Located | undefined;
  /** Drop everything (before a rebuild). */
  clear(): Promise<void>;
}

export interface ListWriter {
  push(name: string, at: Located, value?: Uint8Array): void;
  remove(name: string, seq: number): void;
  item(name: string, seq: number): (Located & { value?: Uint8Array }) | undefined;
  list(name: string): Located[];
  count(token: string, field: 'calls' | 'hits', at: Located): void;
  seal(at: Located): void;
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/**
 * Index one record: the lists it joins, and what it settles. The one
 * function both live indexing and a catch-up or rebuild run.
 */
const indexEntry = (tx: ListWriter, entry: Entry, offset: number) => {
  const at: Located = { seq: entry.seq, offset };
  // Where every MARK_STRIDE-th record starts, for the journal to find any record from (Journal.locateWith).
  if (entry.seq % MARK_STRIDE === 0) tx.push('M', at);
  switch (entry.kind) {
    case 'issue':
    case 'revocation-early':
    case 'revoked-at':
      tx.push(`T${entry.token}`, at);
      break;
    case 'revoke':
    case 'revocation':
      tx.push(`T${entry.token}`, at);
      tx.push('X', at);
      break;
    case 'policy-state':
    case 'replicated':
      tx.push(`Q${entry.token}`, at);
      break;
    case 'wrap':
      tx.push(`T${entry.inner}`, at);
      tx.push(`W${entry.token}`, at);
      break;
    case 'call':
      tx.push(`K${entry.token}`, at);
      tx.push(`B${entry.caller}`, at);
      if (entry.parent !== undefined) tx.push(`P${entry.parent}`, at);
      tx.push('O', at, utf8.encode(entry.token));
      tx.count(entry.token, 'calls', at);
      break;
    case 'hit':
      tx.push(`H${entry.token}`, at);
      if (entry.parent !== undefined) tx.push(`P${entry.parent}`, at);
      tx.count(entry.token, 'hits', at);
      break;
    case 'fulfilled':
    case 'revoked':
    case 'promised':
    case 'forwarded':
    case 'screened': {
      tx.push(`S${entry.call}`, at);
      if (entry.kind === 'promised') tx.push(`V${entry.token}`, { seq: entry.call, offset: 0 });
      else if (entry.kind === 'fulfilled' || entry.kind === 'revoked') {
        // A settled call is no longer pending, nor are the calls that waited on a promise of its token.
        const open = tx.item('O', entry.call);
        // A broken call keeps where its call starts, if known (the call is read with it).
        if (entry.kind === 'revoked') tx.push('X', at, open ? offsetBytes(open.offset) : undefined);
        if (open) {
          tx.remove('O', entry.call);
          const token = fromUtf8.decode(open.value);
          for (const waiting of tx.list(`V${token}`)) {
            tx.remove('O', waiting.seq);
            tx.remove(`V${token}`, waiting.seq);
          }
        }
      }
      break;
    }
    case 'doc':
    case 'doc-head':
    case 'doc-rules':
    case 'doc-conflict':
    case 'proposal':
      tx.push(`T${entry.doc}`, at);
      break;
    case 'doc-settled':
      tx.push(`T${entry.conflict}`, at);
      break;
    case 'vote':
    case 'proposal-ended':
      tx.push(`T${entry.proposal}`, at);
      break;
    case 'seal':
      tx.push('Z', at);
      tx.seal(at);
      break;
    case 'doc-token':
      break;
  }
};

const offsetBytes = (offset: number) => {
  const out = new Uint8Array(8);
  u64(offset, out, 0);
  return out;
};

/** Records indexed per transaction when catching up or rebuilding. */
const CATCH_UP_RECORDS = 50_000;

export class RecordIndex {
  readonly #store: ListStore;
  #committing: Promise<void> = Promise.resolve();
  /** Batches waiting for the transaction that commits now, and the promise of theirs. */
  #gathered: WrittenBatch[] = [];
  #gathering: Promise<void> | undefined;
  #failure: Error | undefined;

  private constructor(store: ListStore) {
    this.#store = store;
  }

  /**
   * The index of `journal` kept in `store`: caught up from the store's
   * position if it is behind, rebuilt if it is missing, ahead, or does not
   * match; then kept by every batch the journal writes.
   * `rebuilt` says whether it was rebuilt (and why), `caughtUp` how many records it read.
   */
  static async open(journal: Journal, store: ListStore): Promise<{ index: RecordIndex; rebuilt?: string; caughtUp: number }> {
    const index = new RecordIndex(store);
    const end = journal.position();
    let from = store.position();
    let rebuilt: string | undefined;
    if (!from) rebuilt = end.seq === 0 ? undefined : 'missing';
    else if (from.seq > end.seq) rebuilt = `ahead of the journal (${from.seq} > ${end.seq})`;
    else if (from.seq === end.seq && !sameHead(from.head, end.head)) rebuilt = 'its position does not match the journal';
    let caughtUp = 0;
    const run = async (start: ScanStart) => {
      let pending: { entries: Entry[]; offsets: number[] } = { entries: [], offsets: [] };
      for await (const batch of journal.batches(start)) {
        for (let i = 0; i < batch.entries.length; i++) {
          pending.entries.push(batch.entries[i]!);
          pending.offsets.push(batch.offsets[i]!);
        }
        caughtUp += batch.entries.length;
        if (pending.entries.length >= CATCH_UP_RECORDS) {
          await index.add({ ...pending, position: batch.position });
          pending = { entries: [], offsets: [] };
        } else if (batch.position.seq === journal.position().seq) {
          await index.add({ ...pending, position: batch.position });
          pending = { entries: [], offsets: [] };
        }
      }
      if (pending.entries.length > 0) throw new Error('journal ended between batches');
    };
    if (rebuilt === undefined && from && from.seq < end.seq) {
      try {
        await run(from);
      } catch {
        // The record at the index's position does not link to the head it recorded: not this journal's index.
        rebuilt = 'its position does not match the journal';
        caughtUp = 0;
      }
    }
    if (rebuilt !== undefined) {
      await store.clear();
      from = undefined;
      // From the first record kept (records dropped behind a checkpoint are not indexed again).
      await run(journal.floor());
    }
    journal.onWritten((batch) => void index.add(batch));
    journal.locateWith((seq) => store.list('M', { reverse: true, after: seq + 1, limit: 1 })[0]);
    return { index, ...(rebuilt !== undefined ? { rebuilt } : {}), caughtUp };
  }

  /**
   * Index written batches, in one transaction with the position after the
   * last. Batches written while a transaction commits wait for it and then
   * go in together, in one transaction: however fast the journal writes,
   * at most one transaction is committing and one gathering, and a busy
   * node pays the database's commit once per backlog, not once per batch.
   */
  add(batch: WrittenBatch): Promise<void> {
    this.#gathered.push(batch);
    if (this.#gathering) return this.#gathering;
    this.#committing = this.#gathering = this.#committing.then(() => {
      const batches = this.#gathered;
      this.#gathered = [];
      this.#gathering = undefined;
      return this.#store
        .transact((tx) => {
          for (const { entries, offsets } of batches) for (let i = 0; i < entries.length; i++) indexEntry(tx, entries[i]!, offsets[i]!);
        }, batches[batches.length - 1]!.position)
        .catch((error: Error) => {
          // The journal has the records; the next open catches the index up.
          this.#failure ??= error;
        });
    });
    return this.#gathering;
  }

  /** Resolves once every batch handed to `add` so far is committed. */
  async settled(): Promise<void> {
    await this.#committing;
  }

  get failure(): Error | undefined {
    return this.#failure;
  }

  position(): ScanStart | undefined {
    return this.#store.position();
  }

  list(name: string, page?: Page): Located[] {
    return this.#store.list(name, page);
  }
  item(name: string, seq: number): (Located & { value?: Uint8Array }) | undefined {
    return this.#store.item(name, seq);
  }
  counts(token: string): TokenCounts {
    return this.#store.counts(token);
  }
  lastSeal(): Located | undefined {
    return this.#store.lastSeal();
  }
}

const sameHead = (a: Uint8Array | null, b: Uint8Array | null) => a === b || (a !== null && b !== null && equals(a, b));

/** Read the records at `locations` (in the order given), checking each is the record numbered as the index says. */
export const entriesAt = async (journal: Journal, locations: readonly Located[]): Promise<Entry[]> => {
  const bytes = await journal.recordsAt(locations);
  return bytes.map((record, i) => {
    const { entry } = readRecord(record);
    if (entry.seq !== locations[i]!.seq) throw new Error(`record index: byte ${locations[i]!.offset} holds record ${entry.seq}, not ${locations[i]!.seq}`);
    return entry;
  });
};

// ---- memory ----

/** Lists in memory, for memory kernels: the same index over a small journal. */
export const memoryListStore = (): ListStore => {
  let lists = new Map<string, Map<number, { offset: number; value?: Uint8Array }>>();
  let counts = new Map<string, { calls: number; hits: number; lastHit?: Located }>();
  let lastSeal: Located | undefined;
  let position: ScanStart | undefined;
  const items = (name: string) => [...(lists.get(name) ?? new Map()).entries()].map(([seq, item]) => ({ seq, offset: item.offset, ...(item.value ? { value: item.value } : {}) }));
  const store: ListStore = {
    position: () => position,
    transact: async (writes, at) => {
      const tx: ListWriter = {
        push: (name, { seq, offset }, value) => {
          let list = lists.get(name);
          if (!list) lists.set(name, (list = new Map()));
          list.set(seq, { offset, ...(value ? { value } : {}) });
        },
        remove: (name, seq) => {
          const list = lists.get(name);
          list?.delete(seq);
          if (list?.size === 0) lists.delete(name);
        },
        item: (name, seq) => store.item(name, seq),
        list: (name) => items(name),
        count: (token, field, located) => {
          const now = counts.get(token) ?? { calls: 0, hits: 0 };
          now[field] += 1;
          if (field === 'hits') now.lastHit = located;
          counts.set(token, now);
        },
        seal: (located) => (lastSeal = located),
      };
      writes(tx);
      position = at;
    },
    list: (name, page = {}) => pageOf(items(name), page),
    item: (name, seq) => {
      const item = lists.get(name)?.get(seq);
      return item ? { seq, offset: item.offset, ...(item.value ? { value: item.value } : {}) } : undefined;
    },
    counts: (token) => counts.get(token) ?? { calls: 0, hits: 0 },
    lastSeal: () => lastSeal,
    clear: async () => {
      lists = new Map();
      counts = new Map();
      lastSeal = undefined;
      position = undefined;
    },
  };
  return store;
};

const pageOf = (all: Located[], { limit, reverse, after }: Page): Located[] => {
  let items = reverse ? all.reverse() : all;
  if (after !== undefined) items = items.filter((item) => (reverse ? item.seq < after : item.seq > after));
  return limit === undefined ? items : items.slice(0, limit);
};

// ---- lmdb ----

/*
 * Keys: the list's name (UTF-8), a zero byte, then the item's seq as 8 bytes
 * big-endian (so a list's items sort in record order). Values: the offset as
 * 8 bytes, then the item's value if it has one. Names never hold a zero byte
 * (tokens, principals, numbers). Apart from the lists, under names that begin
 * with a zero byte: the position, the last seal, per-token counts.
 */
const POSITION_KEY = new Uint8Array([0, 0x70]);
const SEAL_KEY = new Uint8Array([0, 0x73]);
const countsKey = (token: string) => concat(new Uint8Array([0, 0x6e]), utf8.encode(token));

const concat = (a: Uint8Array, b: Uint8Array) => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
};

function u64(n: number, into: Uint8Array, at: number) {
  const view = new DataView(into.buffer, into.byteOffset, into.byteLength);
  view.setUint32(at, Math.floor(n / 2 ** 32));
  view.setUint32(at + 4, n >>> 0);
}
export const readU64 = (bytes: Uint8Array, at: number) => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4);
};

const itemKey = (prefix: Uint8Array, seq: number) => {
  const key = new Uint8Array(prefix.length + 8);
  key.set(prefix);
  u64(seq, key, prefix.length);
  return key;
};
const prefixOf = (name: string) => concat(utf8.encode(name), new Uint8Array([0]));
const itemValue = (offset: number, value?: Uint8Array) => {
  const out = new Uint8Array(8 + (value?.length ?? 0));
  u64(offset, out, 0);
  if (value) out.set(value, 8);
  return out;
};
const locatedOf = (seq: number, value: Uint8Array) => ({ seq, offset: readU64(value, 0), ...(value.length > 8 ? { value: value.slice(8) } : {}) });

const encodeLocated = (at: Located | undefined) => (at ? [at.seq, at.offset] : null);
const decodeLocated = (value: unknown): Located | undefined => (Array.isArray(value) ? { seq: value[0] as number, offset: value[1] as number } : undefined);

/** Lists in an lmdb table of the home's database (`tableOf(database, 'records')`). */
export const lmdbListStore = (table: Table): ListStore => {
  const readPosition = (): ScanStart | undefined => {
    const bytes = table.get(POSITION_KEY);
    if (!bytes) return undefined;
    const [seq, offset, head] = decode(bytes) as [number, number, Uint8Array | null];
    return { seq, offset, head };
  };
  const item = (name: string, seq: number) => {
    const value = table.get(itemKey(prefixOf(name), seq));
    return value ? locatedOf(seq, value) : undefined;
  };
  const list = (name: string, { limit, reverse, after }: Page = {}): Located[] => {
    const prefix = prefixOf(name);
    if (reverse && after !== undefined && after <= 0) return [];
    const low = after !== undefined && !reverse ? itemKey(prefix, after + 1) : itemKey(prefix, 0);
    const high = after !== undefined && reverse ? itemKey(prefix, after - 1) : concat(prefix, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    const out: Located[] = [];
    for (const { key, value } of table.getRange({ start: reverse ? high : low, end: reverse ? low : high, reverse: reverse === true, ...(limit !== undefined ? { limit } : {}) })) {
      out.push(locatedOf(readU64(key, prefix.length), value));
    }
    return out;
  };
  const countsOf = (token: string): TokenCounts => {
    const bytes = table.get(countsKey(token));
    if (!bytes) return { calls: 0, hits: 0 };
    const [calls, hits, lastHit] = decode(bytes) as [number, number, unknown];
    const last = decodeLocated(lastHit);
    return { calls, hits, ...(last ? { lastHit: last } : {}) };
  };
  return {
    position: readPosition,
    transact: async (writes, at) => {
      await table.transaction(() => {
        // Counts change many times in a batch: kept here and written once.
        const counted = new Map<string, { calls: number; hits: number; lastHit?: Located }>();
        let seal: Located | undefined;
        const tx: ListWriter = {
          push: (name, located, value) => void table.put(itemKey(prefixOf(name), located.seq), itemValue(located.offset, value)),
          remove: (name, seq) => void table.remove(itemKey(prefixOf(name), seq)),
          item,
          list: (name) => list(name),
          count: (token, field, located) => {
            let now = counted.get(token);
            if (!now) counted.set(token, (now = { ...countsOf(token) }));
            now[field] += 1;
            if (field === 'hits') now.lastHit = located;
          },
          seal: (located) => (seal = located),
        };
        writes(tx);
        for (const [token, now] of counted) void table.put(countsKey(token), encode([now.calls, now.hits, encodeLocated(now.lastHit)]));
        if (seal) void table.put(SEAL_KEY, encode(encodeLocated(seal)));
        void table.put(POSITION_KEY, encode([at.seq, at.offset ?? 0, at.head]));
      });
    },
    list,
    item,
    counts: countsOf,
    lastSeal: () => {
      const bytes = table.get(SEAL_KEY);
      return bytes ? decodeLocated(decode(bytes)) : undefined;
    },
    clear: () => table.clearAsync(),
  };
};
