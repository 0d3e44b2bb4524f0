/**
 * Blocks in memory, behind the same interface. Bytes are copied in and out,
 * so no caller can change a stored block through an array it holds; and
 * `get` still re-hashes, so the two stores behave alike.
 */
import { RAW_CODEC, quote } from '../interface/ids.js';
import { asCid, blockCid, blockName, verifyBlock } from './hashing.js';
import { DEFAULT_MAX_BLOCK_BYTES, StoreError, checkMaxBlockBytes, type BlockStore } from './types.js';

export interface MemoryBlockStoreOptions {
  maxBlockBytes?: number;
}

export const openMemoryBlockStore = (options: MemoryBlockStoreOptions = {}): BlockStore => {
  if (options === null || typeof options !== 'object') throw new TypeError(`store: options must be an object (got ${quote(options)})`);
  for (const key of Object.keys(options)) {
    if (key !== 'maxBlockBytes') throw new TypeError(`store: unknown option ${quote(key)}`);
  }
  const maxBlockBytes = checkMaxBlockBytes(options.maxBlockBytes ?? DEFAULT_MAX_BLOCK_BYTES);
  const blocks = new Map<string, Uint8Array>();
  // `new Uint8Array(x)` always copies; `Buffer#slice` would not.
  const admit = (bytes: unknown): Uint8Array => {
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`store: block must be a Uint8Array (got ${quote(bytes)})`);
    if (bytes.length > maxBlockBytes) throw new StoreError('ERR_TOO_LARGE', `block is ${bytes.length} bytes (limit ${maxBlockBytes})`);
    return new Uint8Array(bytes);
  };
  const store: BlockStore = {
    async put(bytes, opts = {}) {
      const copy = admit(bytes);
      const cid = blockCid(copy, opts.codec ?? RAW_CODEC, opts.hash);
      blocks.set(blockName(cid), copy);
      return cid;
    },
    async putVerified(cid, bytes) {
      const checked = asCid(cid);
      const copy = admit(bytes);
      if (!verifyBlock(checked, copy)) throw new StoreError('ERR_MISMATCH', `bytes do not hash to ${checked}`);
      blocks.set(blockName(checked), copy);
    },
    async putHashed(cid, bytes) {
      blocks.set(blockName(asCid(cid)), admit(bytes));
    },
    async get(cid) {
      const checked = asCid(cid);
      const bytes = blocks.get(blockName(checked));
      if (!bytes) throw new StoreError('ERR_NOT_FOUND', `no block ${checked}`);
      if (!verifyBlock(checked, bytes)) throw new StoreError('ERR_CORRUPT', `block ${checked} does not match its hash`);
      return new Uint8Array(bytes);
    },
    async has(cid) {
      return blocks.has(blockName(cid));
    },
  };
  return Object.freeze(store);
};
