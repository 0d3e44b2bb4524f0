import type { CID } from 'multiformats/cid';
import type { HashName } from './hashing.js';

/** Content-addressed blocks. Every `get` is verified against its CID. */
export interface BlockStore {
  put(bytes: Uint8Array, options?: { codec?: number; hash?: HashName }): Promise<CID>;
  /** Store bytes under a CID they must hash to. */
  putVerified(cid: CID, bytes: Uint8Array): Promise<void>;
  get(cid: CID): Promise<Uint8Array>;
  has(cid: CID): Promise<boolean>;
}
