/**
 * Retention: how much journal history a home keeps (`grid start --keep 30d`
 * or `--keep 500MB`, `openKernel({ keep })`), remembered in `<home>/keep`
 * until `--keep all` forgets it.
 *
 * Whole old segments (journal/segments.ts) that fall outside the window are
 * dropped behind a checkpoint (journal/checkpoint.ts) that the node signs:
 * it names where the kept journal starts and a block holding the kernel's
 * snapshot, so that what the dropped records said (reputation, revocations,
 * delegations, document heads, policy state, cache) is restored from it and
 * never lost. It runs each time the kernel has stored a snapshot (at most
 * every 10,000 records and 2 s, kernel.ts) and once at open, and never drops
 * the last segment nor one after the latest snapshot.
 */
import { open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CID } from 'multiformats/cid';
import { GridError } from '../interface/errors.js';
import { quote } from '../interface/ids.js';
import type { Identity } from '../identity/identity.js';
import { readRecord, type Journal } from '../journal/journal.js';
import { decode } from '../wire/index.js';
import { readCheckpoint, signCheckpoint, type Checkpoint } from '../journal/checkpoint.js';
import type { SegmentedJournalFile } from '../journal/segments.js';
import { decodeSnapshot, type Snapshot } from '../kernel/snapshot.js';
import { openFsBlockStore } from '../store/index.js';
import type { HomePaths } from './home.js';

/** How much history to keep: records younger than `ms`, or at most `bytes` of journal. */
export type Keep = { readonly ms: number } | { readonly bytes: number };

export class KeepError extends GridError<'ERR_BAD_KEEP'> {
  constructor(message: string) {
    super('ERR_BAD_KEEP', message);
  }
}

const DURATIONS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
const SIZES: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };

/** `30d`, `12h`, `2w` (s m h d w) or `500MB`, `2GiB` (B KB MB GB TB KiB MiB GiB TiB); `all` keeps everything (undefined). */
export const parseKeep = (text: unknown): Keep | undefined => {
  if (typeof text !== 'string') throw new KeepError(`keep takes a duration (30d) or a size (500MB), or all (got ${quote(text)})`);
  if (text === 'all') return undefined;
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]+)$/i.exec(text.trim());
  const amount = match ? Number(match[1]) : Number.NaN;
  const unit = match?.[2]!.toLowerCase() ?? '';
  if (unit in DURATIONS && match![2] !== 'M') {
    const ms = Math.round(amount * DURATIONS[unit]!);
    if (ms > 0 && Number.isSafeInteger(ms)) return Object.freeze({ ms });
  } else if (unit in SIZES) {
    const bytes = Math.round(amount * SIZES[unit]!);
    if (bytes > 0 && Number.isSafeInteger(bytes)) return Object.freeze({ bytes });
  }
  throw new KeepError(`keep takes a duration (30d, 12h: s m h d w) or a size (500MB, 2GiB), or all (got ${quote(text)})`);
};

const keepPath = (paths: HomePaths) => join(paths.root, 'keep');

/**
 * The keep a home uses: `given` (a string as on the command line) is
 * remembered in the home (`all` forgets it); without it, the one remembered.
 */
export const homeKeep = async (paths: HomePaths, given?: string): Promise<Keep | undefined> => {
  if (given !== undefined) {
    const keep = parseKeep(given);
    if (keep) await writeFile(keepPath(paths), `${given.trim()}\n`, { mode: 0o600 });
    else await rm(keepPath(paths), { force: true });
    return keep;
  }
  const remembered = await readFile(keepPath(paths), 'utf8').catch(() => undefined);
  return remembered === undefined ? undefined : parseKeep(remembered.trim());
};

export const checkpointPath = (paths: HomePaths): string => join(paths.journal, 'checkpoint');

/** The home's checkpoint, verified with its node's key; undefined if it has none. Refuses (ERR_CHECKPOINT) one that does not verify. */
export const loadCheckpoint = async (paths: HomePaths, identity: Pick<Identity, 'principal'>): Promise<Checkpoint | undefined> => {
  const bytes = await readFile(checkpointPath(paths)).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined;
    throw error;
  });
  return bytes && readCheckpoint(new Uint8Array(bytes), identity.principal);
};

/** The largest snapshot block retention stores and reads back (a busy node's cache can exceed the store's usual limit). */
const MAX_SNAPSHOT_BLOCK_BYTES = 2 ** 31 - 1;
const snapshotStore = (paths: HomePaths) => openFsBlockStore(paths.blocks, { fsync: true, maxBlockBytes: MAX_SNAPSHOT_BLOCK_BYTES });

/**
 * The blocks the home's checkpoint needs kept (`grid gc` roots): the block
 * holding its kernel snapshot. Empty when there is no checkpoint. Reads the
 * checkpoint file without verifying it (a collector keeps more, never less).
 */
export const checkpointRoots = async (paths: HomePaths): Promise<CID[]> => {
  const bytes = await readFile(checkpointPath(paths)).catch(() => undefined);
  if (!bytes) return [];
  try {
    const snapshot = (decode(new Uint8Array(bytes)) as { state?: { snapshot?: unknown } })?.state?.snapshot;
    return typeof snapshot === 'string' ? [CID.parse(snapshot)] : [];
  } catch {
    return [];
  }
};

/** The kernel snapshot a checkpoint names, read from the block store (verified against its CID). Refuses with one line if missing or unreadable. */
export const checkpointSnapshot = async (paths: HomePaths, checkpoint: Checkpoint): Promise<Snapshot & { bytes: Uint8Array }> => {
  const refuse = (why: string) => new GridError('ERR_CHECKPOINT', `journal: the checkpoint's snapshot block ${checkpoint.state.snapshot} ${why}; the records it summarizes are dropped: restore the block from a backup`);
  let bytes: Uint8Array;
  try {
    bytes = await snapshotStore(paths).get(CID.parse(checkpoint.state.snapshot));
  } catch (error) {
    throw refuse(`cannot be read (${(error as Error).message})`);
  }
  const snapshot = decodeSnapshot(bytes);
  if (!snapshot) throw refuse('is not a kernel snapshot of this format');
  if (snapshot.position.seq !== checkpoint.state.seq) throw refuse(`stands at record ${snapshot.position.seq}, not ${checkpoint.state.seq}`);
  return { ...snapshot, bytes };
};

/** The first record of a segment: its number, time, and the CID it links to. */
interface SegmentHead {
  readonly seq: number;
  readonly at: number;
  readonly prev: Uint8Array | null;
}

export interface RetentionReport {
  readonly dropped: number;
  readonly droppedBytes: number;
  readonly checkpoint: Checkpoint;
}

/**
 * Drop what `keep` lets go, behind a checkpoint on the snapshot `bytes`
 * (the kernel's, at a batch end already in the file). One run at a time.
 */
export const makeRetention = (options: {
  paths: HomePaths;
  keep: Keep;
  file: SegmentedJournalFile;
  journal: () => Journal | undefined;
  identity: Identity;
  clock: () => number;
  archive?: string;
  /** Told of each drop (a node logs it). */
  dropped?: (report: RetentionReport) => void;
}) => {
  const { paths, keep, file, identity, clock } = options;
  const heads = new Map<number, SegmentHead>();
  const headOf = async (start: number): Promise<SegmentHead> => {
    let head = heads.get(start);
    if (!head) {
      const header = await file.readRange(start, 4);
      const length = new DataView(header.buffer, header.byteOffset, 4).getUint32(0);
      const { entry, prev } = readRecord(await file.readRange(start + 4, length));
      heads.set(start, (head = { seq: entry.seq, at: entry.at, prev }));
    }
    return head;
  };
  /** The start of the segment the kept journal should begin with (0 or the current start: nothing to drop). */
  const cutFor = async (stateOffset: number): Promise<number> => {
    const segments = file.segments();
    // Candidate starts: every segment's but the first, up to the snapshot's position (never the last segment's end).
    const starts = segments.slice(1).filter((s) => s.size > 0 && s.start <= stateOffset).map((s) => s.start);
    if (starts.length === 0) return segments[0]?.start ?? 0;
    const end = segments.at(-1)!.start + segments.at(-1)!.size;
    let cut = segments[0]!.start;
    if ('bytes' in keep) {
      // At most `bytes` of journal, where the segments allow: drop the oldest while more is kept.
      for (const start of starts) if (end - cut > keep.bytes) cut = start;
    } else {
      // Segments wholly older than the window: the one after each began before it.
      const before = clock() - keep.ms;
      for (const start of starts) {
        if ((await headOf(start)).at > before) break;
        cut = start;
      }
    }
    return cut;
  };
  let running: Promise<RetentionReport | undefined> = Promise.resolve(undefined);
  const run = async (snapshotBytes: Uint8Array): Promise<RetentionReport | undefined> => {
    if (file.closed()) return undefined;
    const first = file.start();
    // Most runs drop nothing: whether any could is asked before the snapshot is decoded.
    if ((await cutFor(Number.POSITIVE_INFINITY)) <= first) return undefined;
    const snapshot = decodeSnapshot(snapshotBytes);
    if (!snapshot) return undefined;
    const cut = await cutFor(snapshot.position.offset);
    if (cut <= first || file.closed()) return undefined;
    const head = await headOf(cut);
    // The records up to the snapshot's position are made durable before a checkpoint names it (a power loss must not leave the journal ending before it).
    await file.sync();
    const cid = await snapshotStore(paths).put(snapshotBytes);
    const fields = { at: clock(), start: { seq: head.seq, offset: cut, head: head.prev }, state: { seq: snapshot.position.seq, snapshot: cid.toString() } };
    const bytes = await signCheckpoint(fields, identity);
    const path = checkpointPath(paths);
    const temp = `${path}.tmp`;
    const handle = await open(temp, 'w', 0o600);
    try {
      await handle.write(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    // Once renamed, the checkpoint is what an opener trusts; the segments before it go after.
    await rename(temp, path);
    options.journal()?.dropBefore({ seq: head.seq, offset: cut, head: head.prev });
    const gone = await file.dropBefore(cut, options.archive);
    for (const segment of gone) heads.delete(segment.start);
    const report: RetentionReport = { dropped: gone.length, droppedBytes: gone.reduce((n, s) => n + s.size, 0), checkpoint: readCheckpoint(bytes, identity.principal) };
    options.dropped?.(report);
    return report;
  };
  return {
    /** Run after the kernel stored a snapshot (its bytes); resolves with what was dropped, if anything. */
    after: (snapshotBytes: Uint8Array): Promise<RetentionReport | undefined> => (running = running.then(() => run(snapshotBytes), () => run(snapshotBytes))),
    /** Until the run under way (if any) is over. */
    settled: async (): Promise<void> => void (await running.catch(() => undefined)),
  };
};
