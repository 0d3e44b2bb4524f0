/**
 * `grid gc`: collect the blocks nothing needs any more, by mark and sweep
 * over a home's block store.
 *
 * What keeps a block (the roots), read from the home's state as the kernel
 * rebuilds it from the journal (a snapshot and the records after it):
 * - every closure issued here and not revoked;
 * - every document held here: its genesis, heads and current version (and
 *   through their links every version of its DAG, each version's value and
 *   change, its reducer and merge closures), its conflicts, its proposals
 *   and the tokens it syncs through;
 * - every answer in the pure-call cache: its token, and what its arguments
 *   and value name;
 * - each policy's state (the delegation layer it belongs to), calls a
 *   crash left open;
 * - every pet name of a token, module or block;
 * - what `extraRoots` names (the retention checkpoint's block);
 * - blocks no root reaches but that the kernel finds by looking in the
 *   store: a delegation made or taken here (journaled as a `wrap`) that is
 *   not revoked, and a closure adopted from a peer's replica that is not
 *   revoked;
 * - a module younger than `keepModulesMs` (30 days): published, perhaps
 *   not issued yet. Publishing it again makes it young again.
 * From the roots, the collector follows what every kept block names —
 * DAG-CBOR links, and CIDs written as text (store/links.ts) — and, for a
 * delegation kept, the closure its innermost link seals (even if that
 * closure was revoked: a call through the delegation still says why).
 *
 * What does not keep a block: the journal's history (past calls'
 * arguments and answers, revocations, reputation), module analyses (a
 * cache; the collector removes those of the modules it collects).
 *
 * Safety. The collector holds the home's lock from before it looks at the
 * state until the last block is deleted, so no other process writes the
 * home meanwhile; with a node running on the home it refuses, in one line,
 * before anything else. Belt and braces, a block whose file was written
 * since the collection began (or in the second before) is kept. A block
 * that cannot be read or does not hash to its name is reported and left in
 * place; when such a block is in use, nothing at all is collected (what it
 * names is unknown) until it is put back. Files in `blocks/` that are not
 * blocks are left alone.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readdirSync, readSync, unlinkSync } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CID } from 'multiformats/cid';
import { DAG_CBOR_CODEC, RAW_CODEC, type Token } from '../interface/ids.js';
import { describeThrown, GridError } from '../interface/errors.js';
import { blockName, DEFAULT_MAX_BLOCK_BYTES, verifyBlock } from '../store/index.js';
import { namedIn } from '../store/links.js';
import { decode, encode } from '../wire/index.js';
import { decodeTrusted } from '../wire/cbor.js';
import { isDelegationRecord, sealToken } from '../delegation/delegation.js';
import type { PartsSnapshot } from '../kernel/snapshot.js';
import type { Kernel } from '../kernel/kernel.js';
import { homePaths, type HomePaths } from './home.js';
import { PetNames } from './names.js';
import { runningNode } from './running-node.js';
import { openKernel } from './open.js';
import { checkpointRoots } from './retention.js';

/** How long an unreferenced module is kept after its file was written, unless told otherwise. */
export const DEFAULT_KEEP_MODULES_MS = 30 * 24 * 60 * 60 * 1000;
/** A block written this long before the collection began, or since, is kept (file times may be coarse). */
const FRESH_MS = 1000;
/**
 * Files are listed, read and looked at synchronously (a thread-pool round
 * trip per call costs 5–10× the call on a busy machine, measured), this
 * many between turns of the event loop, so a process that runs the
 * collector in its own event loop still gets a turn every few milliseconds.
 */
const SLICE = 256;
/**
 * Files deleted at once. Deleting waits on the file system's metadata
 * (1.5 ms a file here under load, done one by one): several at once
 * overlap in the thread pool.
 */
const DELETING = 16;
/** Read flags as the store's (store/fs-store.ts): never block on a FIFO planted where a block should be. */
const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

export type BlockKind = 'module' | 'closure' | 'delegation' | 'document' | 'version' | 'data' | 'other';

export interface GcOptions {
  readonly home: string;
  /** Say what would go; delete nothing. */
  readonly dryRun?: boolean;
  /** Keep an unreferenced module whose file is younger than this (default 30 days). */
  readonly keepModulesMs?: number;
  /** How long to wait for another process to release the home. */
  readonly lockWaitMs?: number;
  /** Blocks to keep besides those the home's state reaches (default: `extraRoots`). */
  readonly extraRoots?: (paths: HomePaths) => Promise<Iterable<string | CID>>;
  /** Called once marking is done, before anything is deleted (tests write to the store here, as a writer that ignored the lock would). */
  readonly afterMark?: () => Promise<void>;
}

export interface Tally {
  blocks: number;
  bytes: number;
}

export interface GcReport {
  readonly dryRun: boolean;
  /** Blocks in the store when the collection began. */
  readonly total: Tally;
  readonly kept: Tally;
  /** Collected (or, with dryRun, that would be), and by kind. */
  readonly collected: Tally & { readonly byKind: Readonly<Partial<Record<BlockKind, Tally>>> };
  /** With dryRun: each block that would go. */
  readonly blocks?: ReadonlyArray<{ readonly cid: string; readonly bytes: number; readonly kind: BlockKind }>;
  /**
   * Blocks that could not be read or did not hash to their name: left in
   * place. When one is in use (a root reaches it) nothing is collected:
   * what it names is unknown.
   */
  readonly damaged: ReadonlyArray<{ readonly cid: string; readonly reason: string; readonly inUse: boolean }>;
  /** Unreferenced blocks kept because their file was written as the collection ran. */
  readonly fresh: number;
  /** Files in blocks/ that are not blocks of this store (left alone). */
  readonly foreign: number;
  readonly ms: number;
}

export class GcError extends GridError<'ERR_NODE_RUNNING' | 'ERR_BAD_OPTION'> {}

/**
 * Blocks the home keeps besides what its state reaches: retention's
 * (journal segments behind a signed checkpoint), whose checkpoint stores the
 * kernel's state snapshot as a block that no state names
 * (`checkpointRoots`, home/retention.ts).
 */
export const extraRoots = async (paths: HomePaths): Promise<Iterable<string | CID>> => checkpointRoots(paths);

/** The store's name for a CID given as text, if it is one. */
const nameOf = (text: string): string | undefined => {
  try {
    const cid = CID.parse(text);
    return cid.version === 1 ? blockName(cid) : undefined;
  } catch {
    return undefined;
  }
};

const errno = (error: unknown) => (error as NodeJS.ErrnoException | null)?.code;
/** A file's lstat, or undefined if it is gone. */
const statOf = (path: string) => {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
};

/** Every block file in the store at `dir`, by name, and how many files there are not blocks. */
const listBlocks = async (dir: string): Promise<{ names: Set<string>; foreign: number }> => {
  const names = new Set<string>();
  let foreign = 0;
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (error) {
    if (errno(error) === 'ENOENT') return { names, foreign };
    throw error;
  }
  const shards = entries.filter((entry) => entry.isDirectory()).map((entry) => entry.name);
  foreign += entries.length - shards.length;
  await inSlices(shards, (shard) => {
    for (const name of readdirSync(join(dir, shard))) {
      if (name.startsWith('.tmp-')) continue; // a write under way, or a crash's leftover that the next open removes
      // Filed where the store files it, under the name it gives it: anything else is not the store's.
      if (name.slice(-3, -1) === shard && nameOf(name) === name) names.add(name);
      else foreign += 1;
    }
  }, 8);
  return { names, foreign };
};

/** Run `work` on each item, `slice` at a time between turns of the event loop. */
const inSlices = async <T>(items: Iterable<T>, work: (item: T) => void, slice = SLICE): Promise<void> => {
  let done = 0;
  for (const item of items) {
    work(item);
    if (++done % slice === 0) await new Promise((resolve) => setImmediate(resolve));
  }
};

/** Run `work` on each item, at most DELETING at once; `work` must not reject. */
const inFlight = async <T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> => {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: DELETING }, worker));
};

/**
 * A block's bytes, verified as the store verifies every read: a regular
 * file, re-hashed. Its size alone if it is larger than the store serves.
 * Throws what is wrong, in one line.
 */
const readBlock = (path: string, cid: CID): Uint8Array | { large: number } => {
  const fd = openSync(path, READ_FLAGS);
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) throw new Error(`block ${cid} on disk is not a regular file`);
    if (info.size > DEFAULT_MAX_BLOCK_BYTES) return { large: info.size };
    const bytes = new Uint8Array(info.size);
    let filled = 0;
    for (let got = 1; filled < bytes.length && got > 0; filled += got) got = readSync(fd, bytes, filled, bytes.length - filled, filled);
    // A file that shrank under the read hashes short; one that grew hashes its first `size` bytes. Both fail.
    if (!verifyBlock(cid, bytes.subarray(0, filled))) throw new Error(`block ${cid} on disk does not match its hash (tampered or truncated)`);
    return bytes.subarray(0, filled);
  } finally {
    closeSync(fd);
  }
};

/** What a block is, for the report, and its record when it is a closure or a delegation. */
const classify = (cid: CID, bytes: Uint8Array): { kind: BlockKind; record?: Record<string, unknown> } => {
  if (cid.code === RAW_CODEC) return { kind: 'module' };
  if (cid.code !== DAG_CBOR_CODEC) return { kind: 'other' };
  let record: unknown;
  try {
    record = decode(bytes);
  } catch {
    return { kind: 'data' };
  }
  if (record === null || typeof record !== 'object' || Array.isArray(record) || record instanceof Uint8Array) return { kind: 'data' };
  const fields = record as Record<string, unknown>;
  if (isDelegationRecord(fields)) return { kind: 'delegation', record: fields };
  if (['code', 'export', 'env', 'issuer', 'nonce', 'sig'].every((key) => key in fields)) return { kind: 'closure', record: fields };
  if (fields.type === 'version') return { kind: 'version' };
  if (fields.type === 'doc') return { kind: 'document' };
  return { kind: 'data' };
};

/**
 * The blocks the kernel's state names: closures issued and not revoked,
 * and whatever the other parts hold, except the tallies of history
 * (reputation, revocations, when writers' delegations were revoked) and
 * the states of revoked policy layers.
 */
const stateRoots = (kernel: Kernel): { roots: Set<string>; issued: readonly Token[] } => {
  const parts = decodeTrusted(kernel.stateSnapshot()) as PartsSnapshot;
  const revoked = (token: string) => kernel.isRevoked(token as Token);
  const { closures, reputation: _history, revocations: _revoked, docs, policies, ...rest } = parts;
  const { revokedSince: _dates, ...held } = docs;
  const roots = namedIn(encode({ ...rest, docs: held, policies: policies.filter(({ layer }) => !revoked(layer)) }));
  const issued = closures.map(([token]) => token);
  for (const token of issued) if (!revoked(token)) roots.add(nameOf(token) ?? token);
  return { roots, issued };
};

/** The blocks the home's pet names name (tokens, modules, blocks; not principals). */
const namedRoots = async (paths: HomePaths): Promise<string[]> =>
  (await PetNames.open(paths.names))
    .list()
    .flatMap(([, entry]) => (entry.kind === 'principal' ? [] : [nameOf(entry.id) ?? []].flat()));

/**
 * Collect the home's garbage (see above). Refuses while a node runs on the
 * home; otherwise holds the home's lock throughout. Never throws for a bad
 * block: the report lists it.
 */
export const collectGarbage = async (options: GcOptions): Promise<GcReport> => {
  const known = new Set(['home', 'dryRun', 'keepModulesMs', 'lockWaitMs', 'extraRoots', 'afterMark']);
  for (const key of Object.keys(options)) if (!known.has(key)) throw new GcError('ERR_BAD_OPTION', `gc: unknown option ${JSON.stringify(key)}`);
  const keepModulesMs = options.keepModulesMs ?? DEFAULT_KEEP_MODULES_MS;
  if (!Number.isSafeInteger(keepModulesMs) || keepModulesMs < 0) throw new GcError('ERR_BAD_OPTION', `gc: keepModulesMs is a whole number of milliseconds, 0 or more (got ${String(keepModulesMs)})`);
  const dryRun = options.dryRun === true;
  const paths = homePaths(options.home);
  const node = await runningNode(paths.node);
  if (node) throw new GcError('ERR_NODE_RUNNING', `a node is running on this home (${node.url}, pid ${node.pid}); stop it, then collect: gc needs the home to itself`);

  // The kernel holds the home's lock until it closes: no other process writes a block or a record meanwhile.
  const kernel = await openKernel({ home: options.home, create: false, ...(options.lockWaitMs === undefined ? {} : { lockWaitMs: options.lockWaitMs }) });
  try {
    const began = Date.now();
    /** Where the store files the block `name` (store/fs-store.ts `blockPath`), without parsing it again. */
    const pathOf = (name: string) => join(paths.blocks, name.slice(-3, -1), name);
    const { names: present, foreign } = await listBlocks(paths.blocks);
    const { roots, issued } = stateRoots(kernel);
    for (const name of await namedRoots(paths)) roots.add(name);
    for (const id of await (options.extraRoots ?? extraRoots)(paths)) roots.add(nameOf(String(id)) ?? String(id));

    const marked = new Set<string>();
    const damaged = new Map<string, string>();
    /** Named by a kept block but not in the store: among them the sealed references of closures that kept delegations wrap. */
    const absent = new Set<string>();
    /** Bytes of the blocks marked and read. */
    const kept = { bytes: 0 };
    let queue: string[] = [];
    const mark = (name: string) => {
      if (!present.has(name)) absent.add(name);
      else if (!marked.has(name)) marked.add(name), queue.push(name);
    };
    /**
     * A block's bytes, verified; undefined if damaged (noted); its size
     * alone if it is larger than the store serves (a retention checkpoint's
     * snapshot): such a block is kept while in use, its bytes not followed
     * (what a snapshot names, the live state names too), and collected when
     * not in use.
     */
    const read = (name: string, cid = CID.parse(name)): Uint8Array | { large: number } | undefined => {
      try {
        return readBlock(pathOf(name), cid);
      } catch (error) {
        damaged.set(name, describeThrown(error).replace(/^store: /, ''));
        return undefined;
      }
    };
    /** Follow what the marked blocks name until nothing new is marked. */
    const follow = async () => {
      while (queue.length > 0) {
        const batch = queue;
        queue = [];
        await inSlices(batch, (name) => {
          const bytes = read(name);
          if (!bytes) return;
          if (!(bytes instanceof Uint8Array)) return void (kept.bytes += bytes.large);
          kept.bytes += bytes.length;
          for (const named of namedIn(bytes)) mark(named);
        });
      }
    };
    for (const name of roots) mark(name);
    await follow();

    // What no root reached: each block is read once more, and kept if the kernel would find it by looking in the store.
    const candidates: Array<{ name: string; bytes: number; kind: BlockKind }> = [];
    const replicas: Token[] = [];
    await inSlices([...present].filter((name) => !marked.has(name)), (name) => {
      const cid = CID.parse(name);
      const bytes = read(name, cid);
      if (!bytes) return;
      if (!(bytes instanceof Uint8Array)) return void candidates.push({ name, bytes: bytes.large, kind: 'other' });
      const { kind, record } = classify(cid, bytes);
      const token = cid.toString() as Token;
      // A closure adopted from a peer's replica: this node answers it itself.
      const replica = kind === 'closure' && record!.replicable === true && !kernel.isRevoked(token);
      if (replica) replicas.push(token);
      const live =
        replica ||
        // A delegation made here, or taken here (its `wrap` is journaled), and not revoked: calls through it are screened here.
        (kind === 'delegation' && !kernel.isRevoked(token) && (record!.delegator === kernel.principal || kernel.records.isDelegation(token))) ||
        // A module published lately: it may be issued yet.
        (kind === 'module' && began - (statOf(pathOf(name))?.mtimeMs ?? 0) < keepModulesMs);
      if (live) mark(name);
      else candidates.push({ name, bytes: bytes.length, kind });
    });
    await follow();
    // A kept delegation's innermost link names its closure by sealed reference only: keep that closure too.
    let sealed: Map<string, Token> | undefined;
    for (let more = true; more; ) {
      more = false;
      if (absent.size === 0) break;
      sealed ??= new Map([...issued, ...replicas].map((token) => [sealToken(token), token]));
      for (const name of absent) {
        const token = sealed.get(name);
        absent.delete(name);
        if (token && present.has(token) && !marked.has(token)) (mark(token), (more = true));
      }
      await follow();
    }
    await options.afterMark?.();

    // A damaged block in use hides what it names: nothing is collected then, lest it be something the block needs.
    const inUseDamaged = [...damaged.keys()].filter((name) => marked.has(name));
    const garbage = inUseDamaged.length > 0 ? [] : candidates.filter(({ name }) => !marked.has(name));
    const collected = { blocks: 0, bytes: 0, byKind: {} as Partial<Record<BlockKind, Tally>> };
    const gone: Array<{ cid: string; bytes: number; kind: BlockKind }> = [];
    let fresh = 0;
    await inFlight(garbage, async ({ name, bytes, kind }) => {
      const path = pathOf(name);
      // Looked at again just before it goes: a block put again since it was read (a writer about to name it) stays.
      const info = statOf(path);
      if (!info) return;
      if (info.mtimeMs >= began - FRESH_MS) {
        fresh += 1;
        return;
      }
      if (!dryRun) {
        try {
          await unlink(path);
        } catch (error) {
          if (errno(error) !== 'ENOENT') damaged.set(name, `could not delete: ${describeThrown(error)}`);
          return;
        }
      }
      collected.blocks += 1;
      collected.bytes += bytes;
      const byKind = (collected.byKind[kind] ??= { blocks: 0, bytes: 0 });
      byKind.blocks += 1;
      byKind.bytes += bytes;
      gone.push({ cid: name, bytes, kind });
    });
    if (!dryRun) await forgetAnalyses(paths, gone.filter(({ kind }) => kind === 'module').map(({ cid }) => cid));

    // Bytes are those of the blocks that could be read; a damaged block counts as kept (it stays).
    const total = { blocks: present.size, bytes: kept.bytes + candidates.reduce((sum, { name, bytes }) => sum + (marked.has(name) ? 0 : bytes), 0) };
    return harden({
      dryRun,
      total,
      kept: { blocks: total.blocks - collected.blocks, bytes: total.bytes - collected.bytes },
      collected,
      ...(dryRun ? { blocks: gone.sort((a, b) => (a.cid < b.cid ? -1 : 1)) } : {}),
      damaged: [...damaged].map(([cid, reason]) => ({ cid, reason, inUse: marked.has(cid) })),
      fresh,
      foreign,
      ms: Date.now() - began,
    });
  } finally {
    await kernel.close();
  }
};

/** Remove the kept analyses of modules collected (home/analyses.ts files them by module id, one folder per analyzer). */
const forgetAnalyses = async (paths: HomePaths, modules: readonly string[]) => {
  if (modules.length === 0) return;
  let analyzers;
  try {
    analyzers = readdirSync(paths.analyses, { withFileTypes: true }).filter((entry) => entry.isDirectory());
  } catch {
    return;
  }
  for (const analyzer of analyzers) {
    await inSlices(modules, (id) => {
      try {
        unlinkSync(join(paths.analyses, analyzer.name, id));
      } catch {
        // none kept for it
      }
    });
  }
};
