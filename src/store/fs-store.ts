/**
 * Blocks on disk: `blocks/<shard>/<cid>`, the shard being the two characters
 * before the last of the CID (spreads evenly; the flatfs layout). A write
 * goes to a temporary file in the shard and is renamed into place, so a
 * reader sees a whole block or none; two writers of the same block write the
 * same bytes, so either rename may win. Every read re-hashes.
 */
import { mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { CID } from 'multiformats/cid';
import { RAW_CODEC } from '../caps/ids.js';
import { StoreError } from './errors.js';
import { blockCid, verifyBlock } from './hashing.js';
import type { BlockStore } from './types.js';

export const DEFAULT_MAX_BLOCK_BYTES = 64 * 1024 * 1024;

export const blockPath = (dir: string, cid: CID): string => {
  const name = cid.toString();
  return join(dir, name.slice(-3, -1), name);
};

export const openFsBlockStore = (dir: string, options: { maxBlockBytes?: number } = {}): BlockStore => {
  const maxBlockBytes = options.maxBlockBytes ?? DEFAULT_MAX_BLOCK_BYTES;
  /** Shard folders known to exist: there are at most 32² of them. */
  const shards = new Set<string>();
  const write = async (cid: CID, bytes: Uint8Array) => {
    if (bytes.length > maxBlockBytes) throw new StoreError('ERR_TOO_LARGE', `block of ${bytes.length} bytes (limit ${maxBlockBytes})`);
    const path = blockPath(dir, cid);
    const shard = join(path, '..');
    if (!shards.has(shard)) {
      await mkdir(shard, { recursive: true, mode: 0o700 });
      shards.add(shard);
    }
    const temp = join(shard, `.tmp-${randomBytes(8).toString('hex')}`);
    await writeFile(temp, bytes, { flag: 'wx', mode: 0o600 });
    try {
      await rename(temp, path);
    } catch (error) {
      await unlink(temp).catch(() => {});
      throw error;
    }
  };
  return {
    async put(bytes, opts = {}) {
      const cid = blockCid(bytes, opts.codec ?? RAW_CODEC, opts.hash);
      await write(cid, bytes);
      return cid;
    },
    async putVerified(cid, bytes) {
      if (!verifyBlock(cid, bytes)) throw new StoreError('ERR_MISMATCH', `bytes do not hash to ${cid}`);
      await write(cid, bytes);
    },
    async get(cid) {
      const path = blockPath(dir, cid);
      let size: number;
      try {
        size = (await stat(path)).size;
      } catch {
        throw new StoreError('ERR_NOT_FOUND', `no block ${cid}`);
      }
      if (size > maxBlockBytes) throw new StoreError('ERR_TOO_LARGE', `block ${cid} is ${size} bytes (limit ${maxBlockBytes})`);
      const bytes = new Uint8Array(await readFile(path));
      if (!verifyBlock(cid, bytes)) throw new StoreError('ERR_CORRUPT', `block ${cid} on disk does not match its hash (tampered or truncated)`);
      return bytes;
    },
    async has(cid) {
      return stat(blockPath(dir, cid)).then(
        () => true,
        () => false,
      );
    },
  };
};
