/** Blocks in memory, behind the same interface; copies in and out so callers cannot alter stored blocks. */
import type { CID } from 'multiformats/cid';
import { RAW_CODEC } from '../caps/ids.js';
import { StoreError } from './errors.js';
import { blockCid, verifyBlock } from './hashing.js';
import type { BlockStore } from './types.js';

export const openMemoryBlockStore = (): BlockStore => {
  const blocks = new Map<string, Uint8Array>();
  return {
    async put(bytes, opts = {}) {
      const cid = blockCid(bytes, opts.codec ?? RAW_CODEC, opts.hash);
      blocks.set(cid.toString(), bytes.slice());
      return cid;
    },
    async putVerified(cid, bytes) {
      if (!verifyBlock(cid, bytes)) throw new StoreError('ERR_MISMATCH', `bytes do not hash to ${cid}`);
      blocks.set(cid.toString(), bytes.slice());
    },
    async get(cid: CID) {
      const bytes = blocks.get(cid.toString());
      if (!bytes) throw new StoreError('ERR_NOT_FOUND', `no block ${cid}`);
      if (!verifyBlock(cid, bytes)) throw new StoreError('ERR_CORRUPT', `block ${cid} does not match its hash`);
      return bytes.slice();
    },
    async has(cid) {
      return blocks.has(cid.toString());
    },
  };
};
