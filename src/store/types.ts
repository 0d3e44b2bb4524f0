/**
 * The block store's contract. A block is bytes named by a CIDv1 whose
 * multihash they must hash to; a store never hands out bytes it has not just
 * re-hashed, so a disk that rots or a hand that edits a file shows up as
 * `ERR_CORRUPT`, never as wrong data.
 */
import type { CID } from 'multiformats/cid';
import { GridError } from '../interface/errors.js';
import { quote } from '../interface/ids.js';

/** The multihash functions a block may be named with (hashing.ts). */
export type HashName = 'sha2-256' | 'sha2-512' | 'blake3';

export interface PutOptions {
  /** Multicodec of the content: raw 0x55 (the default) or dag-cbor 0x71. */
  codec?: number;
  /** Multihash to name it with; sha2-256 by default. */
  hash?: HashName;
}

/** Content-addressed blocks. Every `get` is verified against its CID. */
export interface BlockStore {
  /** Store bytes and return their CID. Storing the same bytes twice is harmless (and repairs a damaged copy). */
  put(bytes: Uint8Array, options?: PutOptions): Promise<CID>;
  /** Store bytes under a CID they must hash to (`ERR_MISMATCH` if they do not), e.g. a block fetched from a peer. */
  putVerified(cid: CID, bytes: Uint8Array): Promise<void>;
  /**
   * As `putVerified` for bytes the caller has itself just hashed to `cid`
   * (`blockCid`) and holds unchanged since — a peer's bundle, checked block
   * by block as it arrived: stored without hashing them again.
   */
  putHashed(cid: CID, bytes: Uint8Array): Promise<void>;
  /** The bytes of a block, re-hashed on every read; a fresh copy the caller may keep or change. */
  get(cid: CID): Promise<Uint8Array>;
  /** Whether a block is present (not whether it is intact: only `get` verifies). */
  has(cid: CID): Promise<boolean>;
}

export type StoreErrorCode = 'ERR_NOT_FOUND' | 'ERR_CORRUPT' | 'ERR_UNSUPPORTED_HASH' | 'ERR_MISMATCH' | 'ERR_TOO_LARGE';

/** A refusal from the block store: one line, prefixed `store: `, quoting the CID. */
export class StoreError extends GridError<StoreErrorCode> {
  constructor(code: StoreErrorCode, message: string) {
    super(code, `store: ${message}`);
  }
}

/** The largest block a store accepts or serves unless told otherwise. */
export const DEFAULT_MAX_BLOCK_BYTES = 64 * 1024 * 1024;

export const checkMaxBlockBytes = (value: unknown): number => {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`store: maxBlockBytes must be a non-negative integer (got ${quote(value)})`);
  }
  return value;
};
