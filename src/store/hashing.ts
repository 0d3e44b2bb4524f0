/**
 * Block addresses. The hash function is chosen by the CID, never assumed: a
 * block is verified with whatever multihash its CID names, among the ones
 * this node implements (sha2-256, sha2-512, blake3), and refused with
 * `ERR_UNSUPPORTED_HASH` otherwise.
 *
 * Hashing is synchronous: sha2 through node:crypto (native, the fastest
 * available; sha2.ts), blake3 through @noble/hashes. The same functions are also
 * offered as multiformats hashers for code that builds blocks with
 * multiformats' own API.
 */
import { CID } from 'multiformats/cid';
import { varint } from 'multiformats';
import * as Digest from 'multiformats/hashes/digest';
import { from } from 'multiformats/hashes/hasher';
import type { MultihashHasher } from 'multiformats/hashes/interface';
import { sha256, sha512 } from 'multiformats/hashes/sha2';
import { blake3 as blake3Digest } from '@noble/hashes/blake3.js';
import { quote } from '../interface/ids.js';
import { StoreError, type HashName } from './types.js';
import { sha2Digest } from './sha2.js';

export type { HashName };

interface HashFunction {
  readonly name: HashName;
  readonly code: number;
  /** Digest length in bytes; a CID that names the function with another length is not verifiable here. */
  readonly size: number;
  readonly digest: (bytes: Uint8Array) => Uint8Array;
}

const HASHES: Readonly<Record<HashName, HashFunction>> = Object.freeze({
  'sha2-256': Object.freeze({ name: 'sha2-256', code: 0x12, size: 32, digest: sha2Digest('sha256') }),
  'sha2-512': Object.freeze({ name: 'sha2-512', code: 0x13, size: 64, digest: sha2Digest('sha512') }),
  blake3: Object.freeze({ name: 'blake3', code: 0x1e, size: 32, digest: (bytes: Uint8Array) => blake3Digest(bytes) }),
});

const BY_CODE: ReadonlyMap<number, HashFunction> = new Map(Object.values(HASHES).map((h) => [h.code, h]));

/** The same functions as multiformats hashers (for `Block.encode` and friends). */
export const hashers: Readonly<Record<HashName, MultihashHasher>> = Object.freeze({
  'sha2-256': sha256,
  'sha2-512': sha512,
  blake3: from({ name: 'blake3', code: 0x1e, encode: (bytes: Uint8Array) => blake3Digest(bytes) as Uint8Array<ArrayBuffer> }),
});

const hex = (n: number) => `0x${n.toString(16)}`;

const hashByName = (hash: unknown): HashFunction => {
  const fn = typeof hash === 'string' && Object.hasOwn(HASHES, hash) ? HASHES[hash as HashName] : undefined;
  if (!fn) {
    throw new StoreError('ERR_UNSUPPORTED_HASH', `unknown hash ${quote(hash)} (expected ${Object.keys(HASHES).join(', ')})`);
  }
  return fn;
};

const assertBytes = (bytes: unknown, what = 'block'): Uint8Array => {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`store: ${what} must be a Uint8Array (got ${quote(bytes)})`);
  return bytes;
};

const assertCodec = (codec: unknown): number => {
  if (typeof codec !== 'number' || !Number.isSafeInteger(codec) || codec < 0) {
    throw new TypeError(`store: codec must be a multicodec number (got ${quote(codec)})`);
  }
  return codec;
};

/**
 * A CID this module can trust: our own class, rebuilt from its bytes if it
 * came from another copy of multiformats (or was forged), so that its
 * string form, its multihash and its bytes cannot disagree.
 */
export const asCid = (value: unknown): CID => {
  if (value instanceof CID) return value;
  let cid: CID | null = null;
  try {
    const foreign = CID.asCID(value);
    cid = foreign ? CID.decode(foreign.bytes) : null;
  } catch {
    cid = null;
  }
  if (!cid) throw new TypeError(`store: expected a CID (got ${quote(value)}); parse strings with parseCid`);
  return cid;
};

/** The CIDv1 of `bytes` under `codec`, hashed with `hash` (sha2-256 by default). */
export const blockCid = (bytes: Uint8Array, codec: number, hash: HashName = 'sha2-256'): CID => {
  const fn = hashByName(hash);
  return CID.createV1(assertCodec(codec), Digest.create(fn.code, fn.digest(assertBytes(bytes))));
};

/**
 * The binary form of `blockCid` without building a CID object: for hash
 * chains that link thousands of records a second and never print them.
 */
export const blockCidBytes = (bytes: Uint8Array, codec: number, hash: HashName = 'sha2-256'): Uint8Array => {
  const fn = hashByName(hash);
  const digest = fn.digest(assertBytes(bytes));
  const header = [1, assertCodec(codec), fn.code, digest.length];
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

const BASE32_CODES = Uint8Array.from('abcdefghijklmnopqrstuvwxyz234567', (c) => c.charCodeAt(0));
/** Where base32Text writes its characters (a CID's text is ~60), read out as one flat string. */
let base32Out = Buffer.allocUnsafeSlow(128);
/** RFC 4648 base32, lowercase, unpadded, behind multibase's `b`: what multiformats' `base32.encode` gives, made in one piece. */
const base32Text = (bytes: Uint8Array): string => {
  const length = 1 + Math.ceil((bytes.length * 8) / 5);
  if (length > base32Out.length) base32Out = Buffer.allocUnsafeSlow(length);
  const out = base32Out;
  out[0] = 0x62; // 'b'
  let n = 1;
  let buffer = 0;
  let bits = 0;
  for (let i = 0; i < bytes.length; i++) {
    buffer = ((buffer << 8) | bytes[i]!) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out[n++] = BASE32_CODES[(buffer >> bits) & 31]!;
    }
  }
  if (bits > 0) out[n++] = BASE32_CODES[(buffer << (5 - bits)) & 31]!;
  return out.toString('latin1', 0, n);
};

/** CIDv1 texts made here, by CID. */
const texts = new WeakMap<CID, string>();
/**
 * `cid.toString()`, made once per CID, flat. multiformats builds a CID's
 * text a character at a time and keeps it as built — a chain of ~47 string
 * pieces (1.5 KB) that every Map key or journal field holding it kept, and
 * every garbage collection walked — in a Map of its own made for each CID.
 * A CIDv1's base32 is made here in one piece instead (a CIDv0 is left to
 * multiformats: base58btc).
 */
export const cidText = (cid: CID): string => {
  if (cid.version === 0) return cid.toString();
  let text = texts.get(cid);
  if (text === undefined) texts.set(cid, (text = base32Text(cid.bytes)));
  return text;
};

/** The name a block is filed under: its CIDv1 in base32 (a CIDv0 is filed under its v1 form; see `cidText`). */
export const blockName = (cid: CID): string => {
  const checked = asCid(cid);
  return cidText(checked.version === 0 ? checked.toV1() : checked);
};

/**
 * Whether `bytes` hash to `cid`, with the hash function `cid` names. Throws
 * `ERR_UNSUPPORTED_HASH` for a multihash (or digest length) this node cannot
 * compute, so that "cannot check" is never confused with "does not match".
 */
export const verifyBlock = (cid: CID, bytes: Uint8Array): boolean => {
  const checked = asCid(cid);
  assertBytes(bytes);
  const { code, digest: expected } = checked.multihash;
  const fn = BY_CODE.get(code);
  if (!fn) throw new StoreError('ERR_UNSUPPORTED_HASH', `${checked} uses multihash ${hex(code)}, which this node cannot verify`);
  if (expected.length !== fn.size) {
    throw new StoreError(
      'ERR_UNSUPPORTED_HASH',
      `${checked} uses ${fn.name} (${hex(code)}) with a ${expected.length}-byte digest (this node verifies ${fn.size}-byte digests only)`,
    );
  }
  const digest = fn.digest(bytes);
  let diff = 0;
  for (let i = 0; i < digest.length; i++) diff |= digest[i]! ^ expected[i]!;
  return diff === 0;
};
