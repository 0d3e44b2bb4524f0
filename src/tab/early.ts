/**
 * What a tab node reads before it can start — its lock, its database, its
 * key, its journal, its latest snapshot and the signatures it found good
 * lately — begun as soon as the page can
 * ask, while the bundle is still fetched and evaluated. It is its own file
 * (dist/tab/early.js) with no imports, so a page loads it at once (the app
 * page's boot.js does) and the bundle imports the same module instance
 * (scripts/build-tab.mjs keeps `./early.js` external).
 *
 * It runs before lockdown and so does nothing but ask the browser: it
 * holds no secret a later script could not read from IndexedDB itself, and
 * the node (node.ts, database.ts) checks everything it takes from here
 * exactly as if it had read it. The lock is held before anything is read,
 * so a previous tab's last writes are in.
 *
 * Given `PRELOAD` (the build's list of the chunks the node's entry imports),
 * it also asks the page to fetch those at once, not once the entry has been
 * read.
 */

declare const PRELOAD: readonly string[] | undefined;

/** Object stores of a node's database (database.ts says what each holds), by the version that added them. */
const STORES: ReadonlyArray<readonly [number, string]> = [
  [1, 'blocks'],
  [1, 'journal'],
  [1, 'keys'],
  [1, 'analyses'],
  [2, 'snapshots'],
  [3, 'verdicts'],
];
export const DATABASE_VERSION = 3;
/** Names a node may have: they become IndexedDB and lock names, so nothing surprising. */
export const NODE_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** The database (and lock) of node `name`, or undefined for a name a node may not have. */
export const databaseFor = (name: string): string | undefined => (typeof name === 'string' && NODE_NAME.test(name) ? `promisegrid-${name}` : undefined);
/** The records read at start: the key and the snapshot under these names. */
export const KEY_RECORD = 'identity';
export const SNAPSHOT_RECORD = 'kernel';
export const VERDICTS_RECORD = 'recent';

export interface EarlyRead {
  /** Release the node's lock. */
  readonly release: () => void;
  readonly db: IDBDatabase;
  /** The key record as stored (undefined: none yet). */
  readonly key: unknown;
  /** The journal's chunks as stored: their keys (byte offsets) and values. */
  readonly journalKeys: readonly IDBValidKey[];
  readonly journalChunks: readonly unknown[];
  /** The kernel's latest snapshot as stored (undefined: none). */
  readonly snapshot: unknown;
  /** The signatures found good lately, as stored (verdicts.ts; undefined: none). */
  readonly verdicts: unknown;
}

/** Why a start could not begin: another tab holds the node, the browser has no Web Locks, or the database would not open (`cause`). */
export class EarlyError extends Error {
  constructor(
    readonly reason: 'busy' | 'no-locks' | 'no-storage',
    message: string,
  ) {
    super(message);
  }
}

const request = <T>(req: IDBRequest<T>): Promise<T> =>
  new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });

/** The lock named after the database, held until released; busy at once if another tab (or this one) holds it. */
const holdLock = (database: string): Promise<() => void> =>
  new Promise((resolve, reject) => {
    const locks = (globalThis.navigator as Navigator | undefined)?.locks;
    if (!locks) return reject(new EarlyError('no-locks', 'this browser has no Web Locks API, so two tabs could write one node'));
    locks
      .request(database, { ifAvailable: true }, (lock) => {
        if (!lock) return reject(new EarlyError('busy', `${database} is open in another tab (one tab at a time runs a node)`));
        return new Promise<void>((release) => resolve(() => release()));
      })
      .catch(reject);
  });

const openDatabase = (database: string): Promise<IDBDatabase> =>
  new Promise((resolve, reject) => {
    const failed = (error: unknown) => reject(new EarlyError('no-storage', `cannot open IndexedDB ${database}: ${(error as Error | null)?.message ?? String(error)}`));
    if (!globalThis.indexedDB) return reject(new EarlyError('no-storage', 'this browser offers no IndexedDB here (a private window may not)'));
    let opening: IDBOpenDBRequest;
    try {
      opening = indexedDB.open(database, DATABASE_VERSION);
    } catch (error) {
      return failed(error);
    }
    opening.onupgradeneeded = ({ oldVersion }) => {
      for (const [version, store] of STORES) if (version > oldVersion) opening.result.createObjectStore(store);
    };
    opening.onsuccess = () => resolve(opening.result);
    opening.onerror = () => failed(opening.error);
    opening.onblocked = () => failed(new Error('an older page of this origin still has it open'));
  });

const read = async (database: string): Promise<EarlyRead> => {
  const [locked, opened] = await Promise.allSettled([holdLock(database), openDatabase(database)]);
  if (locked.status === 'rejected' || opened.status === 'rejected') {
    if (locked.status === 'fulfilled') locked.value();
    if (opened.status === 'fulfilled') opened.value.close();
    throw locked.status === 'rejected' ? locked.reason : (opened as PromiseRejectedResult).reason;
  }
  const db = opened.value;
  try {
    const tx = db.transaction(['keys', 'journal', 'snapshots', 'verdicts'], 'readonly');
    const journal = tx.objectStore('journal');
    const [key, journalKeys, journalChunks, snapshot, verdicts] = await Promise.all([
      request(tx.objectStore('keys').get(KEY_RECORD)),
      request(journal.getAllKeys()),
      request(journal.getAll()),
      request(tx.objectStore('snapshots').get(SNAPSHOT_RECORD)),
      request(tx.objectStore('verdicts').get(VERDICTS_RECORD)),
    ]);
    return { release: locked.value, db, key, journalKeys, journalChunks, snapshot, verdicts };
  } catch (error) {
    db.close();
    locked.value();
    throw new EarlyError('no-storage', `cannot read IndexedDB ${database}: ${(error as Error | null)?.message ?? String(error)}`);
  }
};

const begun = new Map<string, Promise<EarlyRead>>();

/** Begin reading the database of node `name` (once: a second call is the first's). */
export const beginTabNode = (name = 'node'): Promise<EarlyRead> => {
  const database = databaseFor(name);
  if (!database) return Promise.reject(new TypeError(`not a node's name: ${JSON.stringify(String(name).slice(0, 80))}`));
  let reading = begun.get(database);
  if (!reading) {
    reading = read(database);
    // Taken (or not) later: a failure here is the start's to report.
    reading.catch(() => {});
    begun.set(database, reading);
  }
  return reading;
};

/** What was begun for node `name` (or a read begun now), handed over once: a node opened again after it closes reads afresh. */
export const takeTabNode = (name: string): Promise<EarlyRead> => {
  const reading = beginTabNode(name);
  begun.delete(databaseFor(name)!);
  return reading;
};

if (typeof PRELOAD !== 'undefined' && globalThis.document) {
  for (const href of PRELOAD) {
    const link = document.createElement('link');
    link.rel = 'modulepreload';
    link.href = new URL(href, import.meta.url).href;
    document.head.append(link);
  }
}
