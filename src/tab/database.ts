/**
 * A tab node's IndexedDB database: what a home directory is to a Node node.
 * One database per node name, with an object store each for blocks (by
 * their CIDv1 text), the journal's chunks (by the byte offset each starts
 * at), the node's key, its module analyses, the kernel's latest snapshot
 * and the signatures it found good lately.
 * One tab at a time may hold a node's database: the Web Locks API gives the
 * first tab the node and refuses the others, as a home's lock file refuses a
 * second process. The lock, the opening and the first reads are early.ts's,
 * begun before the bundle runs; here they become the node's.
 */
import { wrap, type DBSchema, type IDBPDatabase } from 'idb';
import { GridError } from '../interface/errors.js';
import { databaseFor, EarlyError, takeTabNode, type EarlyRead } from './early.js';

export interface TabSchema extends DBSchema {
  blocks: { key: string; value: Uint8Array };
  journal: { key: number; value: Uint8Array };
  keys: { key: string; value: unknown };
  /** Module analyses (closures/modules.ts), by analyzer and module id. */
  analyses: { key: string; value: unknown };
  /** The kernel's latest snapshot (kernel/snapshot.ts), under one key. */
  snapshots: { key: string; value: Uint8Array };
  /** The signatures found good lately (verdicts.ts), under one key. */
  verdicts: { key: string; value: Uint8Array };
}
export type TabDatabase = IDBPDatabase<TabSchema>;

export type TabErrorCode = 'ERR_BUSY' | 'ERR_NO_STORAGE' | 'ERR_BAD_NAME';

/** A refusal to open a tab node, one line, prefixed `tab: `. */
export class TabError extends GridError<TabErrorCode> {
  constructor(code: TabErrorCode, message: string) {
    super(code, `tab: ${message}`);
  }
}

export const databaseName = (name: string) => {
  const database = databaseFor(name);
  if (!database) throw new TabError('ERR_BAD_NAME', `a node's name is 1-64 of a-z 0-9 . _ - (got ${JSON.stringify(String(name).slice(0, 80))})`);
  return database;
};

export interface TabStorage extends Omit<EarlyRead, 'db'> {
  readonly db: TabDatabase;
}

/** Node `name`'s lock held and its database open, with what start reads first; refused with ERR_BUSY at once if another tab (or this one) holds it. */
export const openTabStorage = async (name: string): Promise<TabStorage> => {
  databaseName(name);
  let read: EarlyRead;
  try {
    read = await takeTabNode(name);
  } catch (error) {
    const reason = error instanceof EarlyError ? error.reason : 'no-storage';
    throw new TabError(reason === 'busy' ? 'ERR_BUSY' : 'ERR_NO_STORAGE', (error as Error)?.message ?? String(error));
  }
  return { ...read, db: wrap(read.db) as unknown as TabDatabase };
};
