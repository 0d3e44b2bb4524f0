/**
 * The one acceptance policy for Ed25519 signatures, shared by the fast
 * (node:crypto) and the portable (@noble/ed25519) verifiers so that they give
 * the same verdict on every input — a journal entry or a closure record that
 * one node accepts must not be refused by a browser, or the other way round.
 *
 * Ed25519 implementations disagree on edge cases that honest signers never
 * produce (C2SP/CCTV `ed25519vectors.json` enumerates them). OpenSSL, Go and
 * the rest of the ref10 family use the cofactorless equation [S]B = R + [k]A,
 * reject a non-canonical R (they compare R's bytes with a re-encoding) and
 * accept low-order and non-canonical keys; @noble/ed25519 in strict mode uses
 * the cofactored equation and rejects low-order keys. We take the
 * intersection and tighten it a little, at the byte level, before either
 * library sees the input:
 *
 *  - S must be canonical (S < L), or a signature would have many encodings;
 *  - A and R must be canonical encodings (y < p), as RFC 8032 §5.1.3 demands;
 *  - A and R must not be one of the eight low-order points (in any of their
 *    fourteen encodings): a low-order key lets one signature verify for many
 *    messages, and a low-order R only comes from a forger. libsodium rejects
 *    both for the same reasons.
 *
 * Then both verifiers check the cofactorless equation (OpenSSL's, and ours on
 * noble's point arithmetic). Points with both a prime-order and a low-order
 * component cannot be caught by a blocklist; they are accepted exactly when
 * the cofactorless equation holds, as in OpenSSL, Go and dalek's `verify`.
 */
import { bytesToHex } from '@noble/hashes/utils.js';

/** The order of the prime subgroup, 2^252 + 27742317777372353535851937790883648493, little-endian. */
const L_BYTES = Uint8Array.from([
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
]);

/** Is the 32-byte little-endian scalar below L? */
export const isCanonicalScalar = (s: Uint8Array): boolean => {
  for (let i = 31; i >= 0; i--) {
    if (s[i]! !== L_BYTES[i]!) return s[i]! < L_BYTES[i]!;
  }
  return false; // S = L
};

/** Is y (the encoding without its sign bit) below p = 2^255 - 19? */
export const isCanonicalPoint = (point: Uint8Array): boolean => {
  if ((point[31]! & 0x7f) !== 0x7f) return true;
  for (let i = 30; i >= 1; i--) if (point[i] !== 0xff) return true;
  return point[0]! < 0xed;
};

/**
 * Every encoding of every point of order 1, 2, 4 or 8, canonical or not
 * (the list in C2SP/CCTV `ed25519/README.md`). Keyed by hex for a cheap
 * lookup; the first-byte filter keeps the common case at one comparison.
 */
const LOW_ORDER = new Set([
  '0000000000000000000000000000000000000000000000000000000000000000',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000080',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000080',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
]);
const LOW_ORDER_FIRST_BYTES = new Set([0x00, 0x01, 0x26, 0xc7, 0xec, 0xed, 0xee]);

export const isLowOrder = (point: Uint8Array): boolean => LOW_ORDER_FIRST_BYTES.has(point[0]!) && LOW_ORDER.has(bytesToHex(point));

/** May this 32-byte string serve as a public key? */
export const isAcceptableKey = (publicKey: Uint8Array): boolean =>
  publicKey.length === 32 && isCanonicalPoint(publicKey) && !isLowOrder(publicKey);

/** Does this signature pass the byte-level checks (length, canonical S and R, R not low-order)? */
export const isAcceptableSignature = (signature: Uint8Array): boolean => {
  if (signature.length !== 64) return false;
  const r = signature.subarray(0, 32);
  return isCanonicalScalar(signature.subarray(32)) && isCanonicalPoint(r) && !isLowOrder(r);
};
