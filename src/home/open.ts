/**
 * Node wiring for the kernel core: real files, the real clock, real
 * randomness, real timers and WebSockets for a home directory, or memory
 * for tests. It lives above both the kernel and net/, which the kernel core
 * never imports (test/import-graph.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { openFsBlockStore, openMemoryBlockStore, removeStaleTemps } from '../store/index.js';
import type { BlockStore } from '../store/types.js';
import { generateIdentity, loadOrCreateIdentity, loadIdentity, type Identity } from '../identity/index.js';
import { Journal, JournalError, memoryJournalFile, type ScanStart } from '../journal/journal.js';
import { databaseSnapshots } from '../db/snapshots.js';
import { snapshotMatching, type Snapshot, type SnapshotStore } from '../kernel/snapshot.js';
import { rm } from 'node:fs/promises';
import { repairJournalFile, type RepairReport } from '../journal/repair.js';
import { migrateJournalFile, openSegmentedJournal, segmentBytesFromEnv } from '../journal/segments.js';
import { checkStartRecord, startOf } from '../journal/checkpoint.js';
import { checkpointSnapshot, homeKeep, loadCheckpoint, makeRetention } from './retention.js';
import { acquireHomeLock } from './lock.js';
import { openDatabase, tableOf } from '../db/database.js';
import { lmdbListStore, type ListStore } from '../db/records.js';
import { openModuleAnalyses } from './analyses.js';
import type { ModuleAnalyses } from '../closures/modules.js';
import { createHomeDirs, homeExists, homePaths, NoHomeError } from './home.js';
import { Kernel, type Forwarder, type KernelLimits, type Network } from '../kernel/kernel.js';
// The network stack (ws, CapTP: ~0.3 s to load) is imported when a kernel first listens or reaches a node.
import type { NodeSessions } from '../net/node.js';
import type { RemoteNode } from '../net/client.js';
import type { Token } from '../interface/ids.js';
import { revoked } from '../interface/outcome.js';

interface CommonOptions {
  limits?: Partial<KernelLimits>;
  /** Where lines that closures log (grid.log) go. */
  log?: (token: Token, line: string) => void;
  /** Peers to ask about tokens this node holds no closure for. */
  forward?: Forwarder;
  /** The kernel's clock (ms since the epoch): policies such as expiry and rate read it. Tests set it. */
  clock?: () => number;
}

/** Only for a home. */
interface HomeOptions {
  /**
   * How much journal history to keep: a duration (`30d`) or a size
   * (`500MB`), remembered in the home; `all` keeps everything (and forgets
   * it). Absent: what the home remembers, else everything. README: Retention.
   */
  keep?: string;
  /** Move dropped segments into this directory instead of deleting them. */
  archive?: string;
}

/** The modules shipped in one of the package's folders (`policies/`, `merges/`), by name. */
const shippedIn = (folderName: string): Readonly<Record<string, string>> => {
  const folder = new URL(`../../${folderName}/`, import.meta.url);
  const sources: Record<string, string> = {};
  for (const file of readdirSync(folder).filter((name) => name.endsWith('.js')).sort()) {
    sources[file.slice(0, -'.js'.length)] = readFileSync(new URL(file, folder), 'utf8');
  }
  return Object.freeze(sources);
};
export const SHIPPED_POLICIES = shippedIn('policies');
export const SHIPPED_MERGES = shippedIn('merges');
export type OpenKernelOptions =
  | (CommonOptions & HomeOptions & {
      home: string;
      create?: boolean;
      /** How long to wait for another process to release the home (default 10 s). */
      lockWaitMs?: number;
      /** Stop waiting for the home's lock (the CLI does when a node starts serving the home); rejects with its reason. */
      lockSignal?: AbortSignal;
    })
  | (CommonOptions & { memory: true; identity?: Identity });

/**
 * Records appended within this long go to disk in one write (group commit).
 * Writing every turn instead costs a thread-pool round trip per call — a
 * quarter of the node's CPU for a cache hit, measured — and this widens
 * what a crash can lose by at most this much.
 */
const JOURNAL_WRITE_DELAY_MS = 2;
/**
 * The delay this process uses: GRID_JOURNAL_WRITE_DELAY_MS (whole ms, up to
 * 10 s) widens it, so a test can show that what is acknowledged as durable
 * waits for the file and a crash in the window takes back nothing else.
 */
const journalWriteDelayMs = (() => {
  const given = process.env.GRID_JOURNAL_WRITE_DELAY_MS;
  if (given === undefined || given === '') return JOURNAL_WRITE_DELAY_MS;
  const ms = Number(given);
  if (!Number.isSafeInteger(ms) || ms < 0 || ms > 10_000) throw new TypeError(`GRID_JOURNAL_WRITE_DELAY_MS is whole milliseconds from 0 to 10000 (got ${JSON.stringify(given)})`);
  return ms;
})();

const nodeRandomBytes = (length: number) => new Uint8Array(randomBytes(length));
const setTimer = (ms: number, callback: () => void) => {
  const timer = setTimeout(callback, ms);
  return () => clearTimeout(timer);
};
/** The journal's seal timer: it must not keep a process alive (close seals anyway). */
const setBackgroundTimer = (ms: number, callback: () => void) => {
  const timer = setTimeout(callback, ms);
  timer.unref();
  return () => clearTimeout(timer);
};

/**
 * WebSockets for a kernel opened here: `kernel.listen()` serves it (with the
 * same sessions as a `grid start` node), `kernel.call(…, { via })` reaches
 * another node, one connection per URL, kept until the kernel closes.
 */
const webSocketNetwork = (identity: Identity): Network => {
  const connections = new Map<string, Promise<RemoteNode>>();
  let sessions: NodeSessions | undefined;
  const reach = (url: string) => {
    let connection = connections.get(url);
    if (!connection) {
      connection = import('../net/client.js').then(({ connectNode }) => connectNode(url, { identity, random: nodeRandomBytes }));
      connections.set(url, connection);
      connection.then(
        (remote) => void remote.session.closed.then(() => connections.delete(url)),
        () => connections.delete(url),
      );
    }
    return connection;
  };
  return {
    listen: async (kernel, { host, port }) => {
      const { NodeSessions, serveNode } = await import('../net/node.js');
      sessions ??= new NodeSessions(kernel);
      return serveNode(kernel, { identity, random: nodeRandomBytes, host, port, sessions });
    },
    call: async (url, token, args, { follow, timeoutMs, signal }) => {
      let remote: RemoteNode;
      try {
        remote = await reach(url);
      } catch {
        return revoked('unreachable', 'unreachable');
      }
      return remote.call(token, args, { follow, timeoutMs, ...(signal ? { signal } : {}) });
    },
    close: async () => {
      sessions?.close();
      for (const connection of connections.values()) await connection.then((remote) => remote.close(), () => {});
    },
  };
};

export const openKernel = async (options: OpenKernelOptions): Promise<Kernel> => {
  const known = new Set(['home', 'memory', 'identity', 'create', 'lockWaitMs', 'lockSignal', 'limits', 'log', 'forward', 'clock', 'keep', 'archive']);
  const clock = options.clock ?? Date.now;
  for (const key of Object.keys(options)) if (!known.has(key)) throw new TypeError(`openKernel: unknown option ${JSON.stringify(key)}`);
  /** The powers every Node kernel gets: real clock, randomness, timers and WebSockets. */
  const kernelOn = (store: BlockStore, identity: Identity, journal: Journal, home?: { analyses: ModuleAnalyses; onClose: () => Promise<void>; recordStore: ListStore; snapshots: SnapshotStore; snapshot?: Snapshot }) =>
    Kernel.open({
      store,
      identity,
      journal,
      clock,
      randomBytes: nodeRandomBytes,
      policies: SHIPPED_POLICIES,
      merges: SHIPPED_MERGES,
      setTimer,
      limits: options.limits,
      log: options.log,
      forward: options.forward,
      network: webSocketNetwork(identity),
      ...home,
    });
  const journalPowers = { clock, schedule: (write: () => void) => void setTimeout(write, journalWriteDelayMs), setTimer: setBackgroundTimer };
  if ('memory' in options) {
    const identity: Identity = options.identity ?? generateIdentity(nodeRandomBytes);
    const { journal } = await Journal.open({ file: memoryJournalFile(), identity, ...journalPowers });
    return kernelOn(openMemoryBlockStore(), identity, journal);
  }
  if (typeof options.home !== 'string' || options.home.length === 0) throw new TypeError('openKernel: home must be a directory path');
  const paths = homePaths(options.home);
  if (!(await homeExists(paths))) {
    if (options.create === false) throw new NoHomeError(paths.root);
    await createHomeDirs(paths);
    await loadOrCreateIdentity(paths.identity, nodeRandomBytes);
  }
  // The journal is read only once the lock is held, so the journal in
  // memory is the file's whole content, and no other process appends to it
  // while this kernel lives (each append checks the file still ends there).
  const release = await acquireHomeLock(paths.root, paths.lock, { waitMs: options.lockWaitMs, signal: options.lockSignal });
  try {
    const identity = await loadIdentity(paths.identity);
    // The lock makes this process the home's one writer: every temporary block file there now is a crash's leftover.
    await removeStaleTemps(paths.blocks);
    const keep = await homeKeep(paths, options.keep);
    if (options.archive !== undefined && (typeof options.archive !== 'string' || options.archive.length === 0)) throw new TypeError('openKernel: archive must be a directory path');
    const database = openDatabase(paths.db);
    let retention: ReturnType<typeof makeRetention> | undefined;
    const onClose = async () => {
      try {
        await retention?.settled();
        await database.close();
      } finally {
        await release();
      }
    };
    try {
      await migrateJournalFile(paths.journal);
      const checkpoint = await loadCheckpoint(paths, identity);
      const floor = checkpoint && startOf(checkpoint);
      const file = await openSegmentedJournal(paths.journal, { write: true, segmentBytes: segmentBytesFromEnv(), ...(floor ? { from: floor.offset } : {}) });
      const dbSnapshots = databaseSnapshots(database);
      let snapshot: Snapshot | undefined;
      let from: ScanStart | undefined;
      let fromCheckpoint: Uint8Array | undefined;
      try {
        if (checkpoint) await checkStartRecord(file, checkpoint.start);
        snapshot = await snapshotMatching(dbSnapshots.load(), file, file.start());
        // With a snapshot that matches, only the records after it are read (and verified): what it stands for was verified when it was taken.
        from = snapshot?.position;
        if (checkpoint && (!snapshot || snapshot.position.seq < checkpoint.state.seq)) {
          // No database, or one older than the checkpoint: its snapshot stands for the dropped records, and the kept journal is verified whole.
          const { bytes, ...restored } = await checkpointSnapshot(paths, checkpoint);
          snapshot = restored;
          from = floor;
          fromCheckpoint = bytes;
        }
      } catch (error) {
        await file.close();
        throw error;
      }
      const { journal, droppedBytes } = await Journal.open({ file, identity, ...journalPowers }, { ...(from ? { from } : {}), ...(floor ? { floor } : {}) }).catch(suggestRepair);
      if (droppedBytes > 0) process.emitWarning(`journal: cut off a torn tail of ${droppedBytes} bytes left by a crash`);
      // The kept journal verified from the checkpoint on: its snapshot is the database's too, and the next open starts from it.
      if (fromCheckpoint) await dbSnapshots.save(fromCheckpoint);
      const recordStore = lmdbListStore(tableOf(database, 'records'));
      let snapshots: SnapshotStore = dbSnapshots;
      if (keep) {
        const running = makeRetention({ paths, keep, file, journal: () => journal, identity, clock, ...(options.archive ? { archive: options.archive } : {}) });
        retention = running;
        // Each snapshot the kernel stores may let old segments go.
        snapshots = { load: dbSnapshots.load, save: async (bytes) => (await dbSnapshots.save(bytes), void (await running.after(bytes).catch(warnRetention))) };
      }
      const kernel = await kernelOn(openFsBlockStore(paths.blocks), identity, journal, { analyses: openModuleAnalyses(paths.analyses), onClose, recordStore, snapshots, ...(snapshot ? { snapshot } : {}) });
      // And once at open, on the latest snapshot stored (a node that has been idle since may have segments to let go).
      const stored = retention && dbSnapshots.load();
      if (retention && stored) await retention.after(stored).catch(warnRetention);
      return kernel;
    } catch (error) {
      await database.close();
      throw error;
    }
  } catch (error) {
    await release();
    throw error;
  }
};

const warnRetention = (error: Error) => process.emitWarning(`retention: ${error.message}`);

/** A journal that breaks part way does not open; `grid repair` is the way out, and the one line says so. */
const suggestRepair = (error: unknown): never => {
  if (error instanceof JournalError && error.code === 'ERR_CORRUPT') {
    throw new JournalError('ERR_CORRUPT', `${error.message.replace(/^journal: /, '')}; run \`grid repair\` to keep the records before it and move the rest aside`);
  }
  throw error;
};

export interface HomeRepairReport extends RepairReport {
  /** Records at the end of the kept prefix that no seal covered, sealed now by this home. */
  readonly sealed: number;
}

/**
 * `grid repair`: with the home's lock held, keep the journal's verified
 * prefix and move the rest aside (see repairJournalFile), then open the
 * journal as a kernel would — which cuts a torn tail and seals records
 * written after the last seal — and close it.
 */
export const repairHome = async (options: { home: string; lockWaitMs?: number; clock?: () => number }): Promise<HomeRepairReport> => {
  const clock = options.clock ?? Date.now;
  const paths = homePaths(options.home);
  if (!(await homeExists(paths))) throw new NoHomeError(paths.root);
  const release = await acquireHomeLock(paths.root, paths.lock, { waitMs: options.lockWaitMs });
  try {
    const identity = await loadIdentity(paths.identity);
    await migrateJournalFile(paths.journal);
    const checkpoint = await loadCheckpoint(paths, identity);
    const floor = checkpoint && startOf(checkpoint);
    const file = await openSegmentedJournal(paths.journal, { write: true, segmentBytes: segmentBytesFromEnv(), ...(floor ? { from: floor.offset } : {}) });
    let report: RepairReport;
    let unsealed: number;
    try {
      if (checkpoint) await checkStartRecord(file, checkpoint.start);
      report = await repairJournalFile(file, paths.journal, identity.principal, clock(), floor);
      ({ unsealed } = await Journal.scanFile(file, identity.principal, floor));
    } catch (error) {
      await file.close();
      throw error;
    }
    const { journal, droppedBytes } = await Journal.open({ file, identity, clock, schedule: (write) => void setImmediate(write) }, floor ? { floor } : {});
    await journal.close();
    // What the database derived may stand on records moved aside: the next open rebuilds it from the journal.
    await rm(paths.db, { recursive: true, force: true });
    return { ...report, tornBytes: report.tornBytes || droppedBytes, sealed: unsealed };
  } finally {
    await release();
  }
};
