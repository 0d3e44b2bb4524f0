/**
 * A grid node in a browser tab: the same kernel core as `grid start`'s
 * (src/kernel/kernel.ts), given browser powers in place of Node's — blocks,
 * journal, key and module analyses in IndexedDB (database.ts), vats as Web
 * Workers (vat-thread.ts), the page's clock, `crypto.getRandomValues` and
 * timers. The realm is locked down (SES) before any of the kernel's code
 * runs, as every Node entry point does; only early.ts, which asks the browser
 * for what the node keeps, may have run before. This is the bundle's entry
 * (dist/tab/node.js).
 *
 * It has no network of its own: it reaches the grid through the node that
 * served it (src/net/join.ts), given here as `forward`.
 */
import '../perimeter/lockdown.js';
import { POLICIES, MERGES, PARSER_VERSION } from 'promisegrid:shipped';
import { Kernel, type Forwarder, type KernelLimits } from '../kernel/kernel.js';
import { snapshotMatching, type SnapshotStore } from '../kernel/snapshot.js';
import { Journal } from '../journal/journal.js';
import { ANALYSIS_FORMAT, type ModuleAnalyses } from '../closures/modules.js';
import type { Token } from '../interface/ids.js';
import type { BlockStore } from '../store/types.js';
import { databaseName, openTabStorage, type TabDatabase } from './database.js';
import { SNAPSHOT_RECORD, VERDICTS_RECORD } from './early.js';
import { keepVerdicts } from './verdicts.js';
import { openIndexedDbBlockStore } from './block-store.js';
import { openIndexedDbJournalFile } from './journal-file.js';
import { loadOrCreateTabIdentity, type TabIdentity } from './identity.js';

export { TabError } from './database.js';
export { TabKeyError, type TabIdentity } from './identity.js';

export interface TabNodeOptions {
  /** Which of this origin's tab nodes (one database each); `node` by default. */
  readonly name?: string;
  readonly limits?: Partial<KernelLimits>;
  /** Where lines that closures log (grid.log) go. */
  readonly log?: (token: Token, line: string) => void;
  /** Where calls on tokens this node does not hold go (the node that served the tab, once joined: src/net/join.ts). */
  readonly forward?: Forwarder;
}

export interface TabNode {
  readonly kernel: Kernel;
  readonly identity: TabIdentity;
  readonly store: BlockStore;
  /** The IndexedDB database it keeps everything in. */
  readonly database: string;
  /** The journal's records replayed at open: those after the kept snapshot (all of them without one). */
  readonly replayed: number;
  /** Close the kernel (its vats, its journal), then the database, and let another tab have the node. */
  close(): Promise<void>;
}

/** As a home's journal (src/home/open.ts): records appended within this long are written together. */
const JOURNAL_WRITE_DELAY_MS = 2;
/** `crypto.getRandomValues` fills at most this many bytes a call. */
const RANDOM_CHUNK = 65_536;

export const randomBytes = (length: number): Uint8Array => {
  const bytes = new Uint8Array(length);
  for (let at = 0; at < length; at += RANDOM_CHUNK) crypto.getRandomValues(bytes.subarray(at, Math.min(length, at + RANDOM_CHUNK)));
  return bytes;
};
export const setTimer = (ms: number, callback: () => void) => {
  const timer = setTimeout(callback, ms);
  return () => clearTimeout(timer);
};

/** Kept analyses, under the parser and format that made them (as a home keeps them: src/home/analyses.ts). */
const indexedDbAnalyses = (db: TabDatabase): ModuleAnalyses => {
  const analyzer = `module-source-${PARSER_VERSION}-format-${ANALYSIS_FORMAT}`;
  return {
    get: (id) => db.get('analyses', `${analyzer}/${id}`),
    put: async (id, record) => void (await db.put('analyses', record, `${analyzer}/${id}`)),
  };
};

/**
 * When the kernel keeps a snapshot of its state (kernel/snapshot.ts): a tab
 * is ended by a reload, never closed, so rather than after a home's 10,000
 * records it keeps one at open when it replayed any, and at most once a
 * second while records come: the next open reads and checks (signatures and
 * all) only the records the last page wrote since. Measured with the app
 * page's reloads (bench/browser.ts), a snapshot at every open costs less
 * than checking a longer tail's seals.
 */
const SNAPSHOT_EVERY = Object.freeze({ records: 1, ms: 1_000 });

/** The kernel's snapshots, in the database's `snapshots` store (`stored`: the one read at open). */
const indexedDbSnapshots = (db: TabDatabase, stored: unknown): SnapshotStore => ({
  load: () => (stored instanceof Uint8Array ? stored : undefined),
  save: async (bytes) => void (await db.put('snapshots', bytes, SNAPSHOT_RECORD)),
});

const KNOWN_OPTIONS = new Set(['name', 'limits', 'log', 'forward']);

/** Open (or make) this origin's tab node `options.name`; refused with ERR_BUSY while another tab has it open. */
export const startTabNode = async (options: TabNodeOptions = {}): Promise<TabNode> => {
  for (const key of Object.keys(options)) if (!KNOWN_OPTIONS.has(key)) throw new TypeError(`startTabNode: unknown option ${JSON.stringify(key)}`);
  const name = options.name ?? 'node';
  const database = databaseName(name);
  performance.mark('tab:start');
  const storage = await openTabStorage(name);
  performance.mark('tab:read');
  const { db, release } = storage;
  keepVerdicts(storage.verdicts, async (bytes) => void (await db.put('verdicts', bytes, VERDICTS_RECORD)));
  try {
    const identity = await loadOrCreateTabIdentity(db, storage.key);
    performance.mark('tab:identity');
    const store = openIndexedDbBlockStore(db);
    const file = openIndexedDbJournalFile(db, { keys: storage.journalKeys, chunks: storage.journalChunks });
    const snapshots = indexedDbSnapshots(db, storage.snapshot);
    // A snapshot that no longer matches the journal (a torn tail cut, the journal changed by hand) is ignored: the whole journal is replayed.
    const snapshot = await snapshotMatching(snapshots.load(), file);
    const clock = () => Date.now();
    const { journal, droppedBytes } = await Journal.open({ file, identity, clock, schedule: (write) => void setTimeout(write, JOURNAL_WRITE_DELAY_MS), setTimer }, snapshot ? { from: snapshot.position } : {});
    performance.mark('tab:journal');
    const replayed = journal.length - (snapshot?.position.seq ?? 0);
    if (droppedBytes > 0) console.warn(`journal: cut off a torn tail of ${droppedBytes} bytes`);
    const kernel = await Kernel.open({
      store,
      identity,
      journal,
      clock,
      randomBytes,
      setTimer,
      policies: POLICIES,
      merges: MERGES,
      analyses: indexedDbAnalyses(db),
      snapshots,
      snapshotEvery: SNAPSHOT_EVERY,
      ...(snapshot ? { snapshot } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.log ? { log: options.log } : {}),
      ...(options.forward ? { forward: options.forward } : {}),
      onClose: async () => {
        db.close();
        release();
      },
    });
    performance.mark('tab:kernel');
    return harden({ kernel, identity, store, database, replayed, close: () => kernel.close() });
  } catch (error) {
    db.close();
    release();
    throw error;
  }
};
