/**
 * A tab node's journal file in IndexedDB, for the Journal class as it is
 * (src/journal/journal.ts): each append is one record in the `journal`
 * store, keyed by the byte offset it starts at, written in one transaction
 * (IndexedDB has no torn writes). Reads are served from a copy in memory,
 * loaded at open: a tab's journal is read whole when its node opens anyway,
 * and this keeps every later read off the database.
 *
 * At open the chunks must follow one another without gap or overlap, as
 * only a hand in the database can make them: such a journal is refused
 * (ERR_CORRUPT, naming the byte) and left as it is, never cut. What the
 * chunks hold, the Journal verifies as it would a file's bytes. Many small
 * chunks are joined into one at open, so a long-lived node's next open reads
 * few.
 */
import { concatBytes } from '../identity/identity.js';
import { JournalError, type JournalFile } from '../journal/journal.js';
import type { TabDatabase } from './database.js';

/** More chunks than this at open are rewritten as one. */
const JOIN_CHUNKS_OVER = 64;

/** The journal file over `db`, whose chunks as stored at open (early.ts reads them) are `stored`. */
export const openIndexedDbJournalFile = (db: TabDatabase, stored: { readonly keys: readonly IDBValidKey[]; readonly chunks: readonly unknown[] }): JournalFile => {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (const [index, key] of stored.keys.entries()) {
    const chunk = stored.chunks[index];
    if (key !== length) throw new JournalError('ERR_CORRUPT', `the journal kept in IndexedDB has ${typeof key === 'number' && key > length ? 'a gap' : 'an overlap'} at byte ${length}; it is left as it is`);
    if (!(chunk instanceof Uint8Array)) throw new JournalError('ERR_CORRUPT', `the journal kept in IndexedDB holds something other than bytes at byte ${length}; it is left as it is`);
    chunks.push(chunk);
    length += chunk.length;
  }
  let bytes = concatBytes(...chunks);
  if (chunks.length > JOIN_CHUNKS_OVER) {
    // Not waited for: IndexedDB runs transactions on one store in the order they were made, so every later write comes after this one.
    const tx = db.transaction('journal', 'readwrite', { durability: 'strict' });
    Promise.all([tx.store.clear(), length > 0 && tx.store.put(bytes, 0), tx.done]).catch((error: unknown) =>
      console.warn(`journal: its chunks were not joined (${(error as Error)?.message ?? String(error)}); they stay as they are`),
    );
  }
  /** Appended bytes not yet joined into `bytes`. */
  let tail: Uint8Array[] = [];
  const joined = () => {
    if (tail.length > 0) {
      bytes = concatBytes(bytes, ...tail);
      tail = [];
    }
    return bytes;
  };
  return {
    size: async () => length,
    readRange: async (offset, count, into) => {
      if (offset + count > length) throw new Error(`journal file ends before byte ${offset + count}`);
      const range = joined().subarray(offset, offset + count);
      if (!into) return range.slice();
      into.set(range);
      return into.subarray(0, count);
    },
    append: async (more, at) => {
      if (at !== length) throw new JournalError('ERR_NOT_AT_END', `the journal ends at byte ${length}, not ${at}`);
      const copy = more.slice();
      await db.put('journal', copy, at);
      tail.push(copy);
      length += copy.length;
    },
    truncate: async (to) => {
      const kept = joined().slice(0, to);
      const tx = db.transaction('journal', 'readwrite', { durability: 'strict' });
      await tx.store.clear();
      if (kept.length > 0) await tx.store.put(kept, 0);
      await tx.done;
      bytes = kept;
      length = kept.length;
    },
    // Appends commit relaxed; a strict write to the same store commits after them, and is flushed to disk with them.
    sync: async () => {
      const tx = db.transaction('journal', 'readwrite', { durability: 'strict' });
      await tx.store.delete(-1);
      await tx.done;
    },
    close: async () => {},
  };
};
