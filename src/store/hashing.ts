/**
 * Block addresses. The hash function is chosen by the CID, never assumed:
 * a block is verified with whatever multihash its CID names, among the ones
 * this node implements.
 */
import { createHash } from 'node:crypto';
import { CID } from 'multiformats/cid';
import { varint } from 'multiformats';
import * as Digest from 'multiformats/hashes/digest';
import { blake3 } from '@noble/hashes/blake3.js';
import { StoreError } from './errors.js';

export type HashName = 'sha2-256' | 'sha2-512' | 'blake3';

interface HashFunction {
  readonly code: number;
  readonly digest: (bytes: Uint8Array) => Uint8Array;
}

const nodeHash = (algorithm: string) => (bytes: Uint8Array) => new Uint8Array(createHash(algorithm).update(bytes).digest());

const HASHES: Readonly<Record<HashName, HashFunction>> = Object.freeze({
  'sha2-256': { code: 0x12, digest: nodeHash('sha256') },
  'sha2-512': { code: 0x13, digest: nodeHash('sha512') },
  blake3: { code: 0x1e, digest: (bytes: Uint8Array) => blake3(bytes) },
});

const BY_CODE = new Map<number, HashFunction>(Object.values(HASHES).map((h) => [h.code, h]));

/** The CIDv1 of `bytes` under `codec`, hashed with `hash` (sha2-256 by default). */
export const blockCid = (bytes: Uint8Array, codec: number, hash: HashName = 'sha2-256'): CID => {
  const fn = HASHES[hash];
  if (!fn) throw new StoreError('ERR_UNSUPPORTED_HASH', `unknown hash ${JSON.stringify(hash)}`);
  return CID.createV1(codec, Digest.create(fn.code, fn.digest(bytes)));
};

/**
 * The binary form of `blockCid` without building a CID object: for hash
 * chains that link thousands of records a second and never print them.
 */
export const blockCidBytes = (bytes: Uint8Array, codec: number, hash: HashName = 'sha2-256'): Uint8Array => {
  const fn = HASHES[hash];
  const digest = fn.digest(bytes);
  const header = [1, codec, fn.code, digest.length];
  const size = header.reduce((n, v) => n + varint.encodingLength(v), 0);
  const out = new Uint8Array(size + digest.length);
  let offset = 0;
  for (const value of header) {
    varint.encodeTo(value, out, offset);
    offset += varint.encodingLength(value);
  }
  out.set(digest, offset);
  return out;
};

/** Whether `bytes` hash to `cid`, with the hash function `cid` names. */
export const verifyBlock = (cid: CID, bytes: Uint8Array): boolean => {
  const fn = BY_CODE.get(cid.multihash.code);
  if (!fn) {
    throw new StoreError('ERR_UNSUPPORTED_HASH', `${cid} uses multihash 0x${cid.multihash.code.toString(16)}, which this node cannot verify`);
  }
  const digest = fn.digest(bytes);
  const expected = cid.multihash.digest;
  if (digest.length !== expected.length) return false;
  let diff = 0;
  for (let i = 0; i < digest.length; i++) diff |= digest[i]! ^ expected[i]!;
  return diff === 0;
};
