/**
 * A tab node's IndexedDB database: what a home directory is to a Node node.
 * One database per node name, with an object store each for blocks (by
 * their CIDv1 text), the journal's chunks (by the byte offset each starts
 * at), the node's key and its module analyses. One tab at a time may hold a node's database: the
 * Web Locks API gives the first tab the node and refuses the others, as a
 * home's lock file refuses a second process.
 */
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import { GridError } from '../interface/errors.js';

export interface TabSchema extends DBSchema {
  blocks: { key: string; value: Uint8Array };
  journal: { key: number; value: Uint8Array };
  keys: { key: string; value: unknown };
  /** Module analyses (closures/modules.ts), by analyzer and module id. */
  analyses: { key: string; value: unknown };
}
export type TabDatabase = IDBPDatabase<TabSchema>;

const VERSION = 1;
/** Names a node's database may have: they become IndexedDB and lock names, so nothing surprising. */
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export type TabErrorCode = 'ERR_BUSY' | 'ERR_NO_STORAGE' | 'ERR_BAD_NAME';

/** A refusal to open a tab node, one line, prefixed `tab: `. */
export class TabError extends GridError<TabErrorCode> {
  constructor(code: TabErrorCode, message: string) {
    super(code, `tab: ${message}`);
  }
}

export const databaseName = (name: string) => {
  if (typeof name !== 'string' || !NAME.test(name)) throw new TabError('ERR_BAD_NAME', `a node's name is 1-64 of a-z 0-9 . _ - (got ${JSON.stringify(String(name).slice(0, 80))})`);
  return `promisegrid-${name}`;
};

/**
 * Hold the lock named after the database for as long as the node is open;
 * resolves with its release, or rejects with ERR_BUSY at once if another tab
 * (or this one) holds it.
 */
export const lockNode = (database: string): Promise<() => void> =>
  new Promise((resolve, reject) => {
    const locks = (globalThis.navigator as Navigator | undefined)?.locks;
    if (!locks) return reject(new TabError('ERR_NO_STORAGE', 'this browser has no Web Locks API, so two tabs could write one node'));
    locks
      .request(database, { ifAvailable: true }, (lock) => {
        if (!lock) return reject(new TabError('ERR_BUSY', `${database} is open in another tab (one tab at a time runs a node)`));
        return new Promise<void>((release) => resolve(() => release()));
      })
      .catch(reject);
  });

export const openTabDatabase = async (database: string): Promise<TabDatabase> => {
  if (!globalThis.indexedDB) throw new TabError('ERR_NO_STORAGE', 'this browser offers no IndexedDB here (a private window may not)');
  try {
    return await openDB<TabSchema>(database, VERSION, {
      upgrade(db) {
        db.createObjectStore('blocks');
        db.createObjectStore('journal');
        db.createObjectStore('keys');
        db.createObjectStore('analyses');
      },
    });
  } catch (error) {
    throw new TabError('ERR_NO_STORAGE', `cannot open IndexedDB ${database}: ${(error as Error)?.message ?? String(error)}`);
  }
};
