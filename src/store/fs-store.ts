/**
 * Blocks on disk: `<dir>/<shard>/<cid>`, the shard being the two characters
 * before the last of the base32 CID (IPFS flatfs `next-to-last/2`: the last
 * character carries only a few bits, the two before it are spread evenly, so
 * 1024 shard folders fill alike).
 *
 * A write goes to a temporary file created exclusively in the shard and is
 * renamed into place, so a reader sees a whole block or none; two writers of
 * the same block write the same bytes, so either rename may win. Every read
 * re-hashes what it read: a file that was edited, truncated or rotted is
 * reported `ERR_CORRUPT` and never served, and putting the block again
 * repairs it.
 *
 * Durability: by default a write is not fsynced (like `fs.writeFile`). After
 * a power cut a block may then be missing or empty, and an empty or partial
 * block fails its hash on read rather than being served. `fsync: true` makes
 * `put` return only once the block and its directory entry are on disk.
 *
 * A crash between creating a temporary file and renaming it leaves the
 * temporary file behind; `removeStaleTemps` removes them, and a home does so
 * when it opens, under its lock (one writer per home: every temporary file
 * there at open is stale).
 */
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { CID } from 'multiformats/cid';
import { RAW_CODEC, quote } from '../interface/ids.js';
import { asCid, blockCid, blockName, verifyBlock } from './hashing.js';
import { DEFAULT_MAX_BLOCK_BYTES, StoreError, checkMaxBlockBytes, type BlockStore } from './types.js';

export interface FsBlockStoreOptions {
  /** Largest block accepted by put or served by get (default 64 MiB); checked before reading or hashing. */
  maxBlockBytes?: number;
  /** fsync each block and its shard folder before put resolves (default false). */
  fsync?: boolean;
}

const KNOWN_OPTIONS = new Set(['maxBlockBytes', 'fsync']);

/** Where `cid` lives under `dir`. */
export const blockPath = (dir: string, cid: CID): string => {
  const name = blockName(cid);
  return join(dir, name.slice(-3, -1), name);
};

const errno = (error: unknown): string | undefined => (error as NodeJS.ErrnoException | null)?.code;
const absent = (error: unknown) => errno(error) === 'ENOENT' || errno(error) === 'ENOTDIR';

/** What a block's temporary file is called, in its shard, until it is renamed into place. */
const TEMP_PREFIX = '.tmp-';

/**
 * Remove the temporary files a crash left in the shards of the store at
 * `dir`; resolves with how many. Only for the store's one writer, before it
 * writes: any other would remove files being written.
 */
export const removeStaleTemps = async (dir: string): Promise<number> => {
  let shards;
  try {
    shards = (await readdir(dir, { withFileTypes: true })).filter((entry) => entry.isDirectory());
  } catch (error) {
    if (absent(error)) return 0;
    throw error;
  }
  let removed = 0;
  // Names only (no file types) for the many blocks; a few shards at a time.
  const sweep = async (shard: string) => {
    const folder = join(dir, shard);
    for (const name of await readdir(folder)) {
      if (!name.startsWith(TEMP_PREFIX)) continue;
      const path = join(folder, name);
      if (!(await lstat(path)).isFile()) continue;
      await unlink(path).then(
        () => (removed += 1),
        (error: unknown) => {
          if (!absent(error)) throw error;
        },
      );
    }
  };
  for (let i = 0; i < shards.length; i += SWEEP_CONCURRENCY) await Promise.all(shards.slice(i, i + SWEEP_CONCURRENCY).map((shard) => sweep(shard.name)));
  return removed;
};
/** Shard folders read at once by removeStaleTemps. */
const SWEEP_CONCURRENCY = 8;

/** Read flags: never block on a FIFO planted where a block should be. */
const READ_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

export const openFsBlockStore = (dir: string, options: FsBlockStoreOptions = {}): BlockStore => {
  if (typeof dir !== 'string' || dir === '') throw new TypeError(`store: directory must be a non-empty string (got ${quote(dir)})`);
  if (options === null || typeof options !== 'object') throw new TypeError(`store: options must be an object (got ${quote(options)})`);
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key)) throw new TypeError(`store: unknown option ${quote(key)}`);
  }
  const maxBlockBytes = checkMaxBlockBytes(options.maxBlockBytes ?? DEFAULT_MAX_BLOCK_BYTES);
  const durable = options.fsync ?? false;
  if (typeof durable !== 'boolean') throw new TypeError(`store: fsync must be a boolean (got ${quote(durable)})`);

  const tooLarge = (size: number, cid?: CID) =>
    new StoreError('ERR_TOO_LARGE', `${cid ? `block ${cid}` : 'block'} is ${size} bytes (limit ${maxBlockBytes})`);

  const syncDir = async (path: string) => {
    const handle = await open(path, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  };

  /** Create the temp file, making the shard folder on first use (or after someone removed it). */
  const createTemp = async (shard: string): Promise<{ temp: string; handle: FileHandle }> => {
    const temp = join(shard, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      return { temp, handle: await open(temp, 'wx', 0o600) };
    } catch (error) {
      if (errno(error) !== 'ENOENT') throw error;
    }
    await mkdir(shard, { recursive: true, mode: 0o700 });
    return { temp, handle: await open(temp, 'wx', 0o600) };
  };

  const write = async (cid: CID, bytes: Uint8Array): Promise<void> => {
    const path = blockPath(dir, cid);
    const shard = dirname(path);
    const { temp, handle } = await createTemp(shard);
    try {
      try {
        await handle.writeFile(bytes);
        if (durable) await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, path);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
    if (durable) await syncDir(shard);
  };

  const store: BlockStore = {
    async put(bytes, opts = {}) {
      if (!(bytes instanceof Uint8Array)) throw new TypeError(`store: block must be a Uint8Array (got ${quote(bytes)})`);
      if (bytes.length > maxBlockBytes) throw tooLarge(bytes.length);
      // Our own copy: the caller may reuse its buffer while the write is in flight,
      // and the file must hold exactly the bytes that were hashed.
      const copy = new Uint8Array(bytes);
      const cid = blockCid(copy, opts.codec ?? RAW_CODEC, opts.hash);
      await write(cid, copy);
      return cid;
    },
    async putVerified(cid, bytes) {
      const checked = asCid(cid);
      if (!(bytes instanceof Uint8Array)) throw new TypeError(`store: block must be a Uint8Array (got ${quote(bytes)})`);
      if (bytes.length > maxBlockBytes) throw tooLarge(bytes.length, checked);
      const copy = new Uint8Array(bytes);
      if (!verifyBlock(checked, copy)) throw new StoreError('ERR_MISMATCH', `bytes do not hash to ${checked}`);
      await write(checked, copy);
    },
    async putHashed(cid, bytes) {
      const checked = asCid(cid);
      if (!(bytes instanceof Uint8Array)) throw new TypeError(`store: block must be a Uint8Array (got ${quote(bytes)})`);
      if (bytes.length > maxBlockBytes) throw tooLarge(bytes.length, checked);
      await write(checked, new Uint8Array(bytes));
    },
    async get(cid) {
      const checked = asCid(cid);
      const path = blockPath(dir, checked);
      let handle: FileHandle;
      try {
        handle = await open(path, READ_FLAGS);
      } catch (error) {
        if (absent(error)) throw new StoreError('ERR_NOT_FOUND', `no block ${checked}`);
        throw error;
      }
      try {
        // Size from the open handle, so the limit holds for the file we read.
        const info = await handle.stat();
        if (!info.isFile()) throw new StoreError('ERR_CORRUPT', `block ${checked} on disk is not a regular file`);
        if (info.size > maxBlockBytes) throw tooLarge(info.size, checked);
        const bytes = new Uint8Array(info.size);
        let filled = 0;
        while (filled < bytes.length) {
          const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        // A file that shrank under us hashes short; one that grew hashes its first `size` bytes. Both fail.
        if (!verifyBlock(checked, bytes.subarray(0, filled))) {
          throw new StoreError('ERR_CORRUPT', `block ${checked} on disk does not match its hash (tampered or truncated)`);
        }
        return bytes;
      } finally {
        await handle.close();
      }
    },
    async has(cid) {
      try {
        return (await stat(blockPath(dir, cid))).isFile();
      } catch (error) {
        if (absent(error)) return false;
        throw error;
      }
    },
  };
  return Object.freeze(store);
};
