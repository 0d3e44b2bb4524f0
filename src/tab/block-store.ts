/**
 * Blocks in a tab node's IndexedDB, behind the store's contract
 * (src/store/types.ts): filed under their CIDv1 text, re-hashed on every
 * read, so a block changed in the database (by hand, by a bug, by another
 * script of this origin) is refused as ERR_CORRUPT rather than returned.
 * Bytes are copied in; IndexedDB hands out a fresh structured clone on
 * every read.
 */
import { RAW_CODEC, quote } from '../interface/ids.js';
import { asCid, blockCid, blockName, verifyBlock } from '../store/hashing.js';
import { DEFAULT_MAX_BLOCK_BYTES, StoreError, checkMaxBlockBytes, type BlockStore } from '../store/types.js';
import type { TabDatabase } from './database.js';

export const openIndexedDbBlockStore = (db: TabDatabase, options: { maxBlockBytes?: number } = {}): BlockStore => {
  for (const key of Object.keys(options)) if (key !== 'maxBlockBytes') throw new TypeError(`store: unknown option ${quote(key)}`);
  const maxBlockBytes = checkMaxBlockBytes(options.maxBlockBytes ?? DEFAULT_MAX_BLOCK_BYTES);
  const admit = (bytes: unknown): Uint8Array => {
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`store: block must be a Uint8Array (got ${quote(bytes)})`);
    if (bytes.length > maxBlockBytes) throw new StoreError('ERR_TOO_LARGE', `block is ${bytes.length} bytes (limit ${maxBlockBytes})`);
    // Exactly the block's bytes: a view would store the whole buffer under it.
    return bytes.slice();
  };
  const file = (name: string, bytes: Uint8Array) => db.put('blocks', bytes, name).then(() => {});
  const store: BlockStore = {
    async put(bytes, opts = {}) {
      const copy = admit(bytes);
      const cid = blockCid(copy, opts.codec ?? RAW_CODEC, opts.hash);
      await file(blockName(cid), copy);
      return cid;
    },
    async putVerified(cid, bytes) {
      const checked = asCid(cid);
      const copy = admit(bytes);
      if (!verifyBlock(checked, copy)) throw new StoreError('ERR_MISMATCH', `bytes do not hash to ${checked}`);
      await file(blockName(checked), copy);
    },
    async putHashed(cid, bytes) {
      await file(blockName(asCid(cid)), admit(bytes));
    },
    async get(cid) {
      const checked = asCid(cid);
      const bytes: unknown = await db.get('blocks', blockName(checked));
      if (bytes === undefined) throw new StoreError('ERR_NOT_FOUND', `no block ${checked}`);
      // Whatever else is filed there (a value that is not bytes) is as corrupt as bytes that do not hash.
      if (!(bytes instanceof Uint8Array) || !verifyBlock(checked, bytes)) throw new StoreError('ERR_CORRUPT', `block ${checked} does not match its hash`);
      return bytes;
    },
    async has(cid) {
      return (await db.count('blocks', blockName(asCid(cid)))) > 0;
    },
  };
  return Object.freeze(store);
};
