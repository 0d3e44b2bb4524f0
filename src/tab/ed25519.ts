/**
 * Ed25519 in a browser tab (in place of src/identity/ed25519.ts): every
 * check is the portable cofactorless one (src/identity/portable.ts), which
 * the identity tests hold to OpenSSL's verdict on every hostile vector, so
 * a tab accepts exactly what a Node node accepts. WebCrypto's Ed25519 check
 * is not used for verdicts: it is BoringSSL's, whose edge cases nobody here
 * has held to OpenSSL's. Signing with a seed (a tab whose browser lacks
 * WebCrypto Ed25519; see identity.ts here) is @noble/ed25519's. A verdict
 * the check reached before, on this page or the last, is remembered
 * (verdicts.ts).
 */
import { Point, signAsync } from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { cofactorlessVerify, N } from '../identity/portable.js';
import { knownGood, rememberGood } from './verdicts.js';

export const MAX_CACHED_KEYS = 1024;
export type PublicKeyHandle = Uint8Array;

/** RFC 8032 §5.1.5: the public key is [a]B for the seed's clamped hash (taken mod L, as noble takes it). */
export const signerFromSecret = (secret: Uint8Array): { publicKey: Uint8Array; sign(message: Uint8Array): Promise<Uint8Array> } => {
  const head = sha512(secret).subarray(0, 32);
  head[0]! &= 248;
  head[31]! &= 127;
  head[31]! |= 64;
  let scalar = 0n;
  for (let i = 31; i >= 0; i--) scalar = (scalar << 8n) | BigInt(head[i]!);
  const seed = secret.slice();
  return { publicKey: Point.BASE.multiply(scalar % N).toBytes(), sign: (message) => signAsync(message, seed) };
};

export const importPublicKey = (raw: Uint8Array): PublicKeyHandle => raw.slice();

/** The portable check's verdict: reached now, or remembered from an earlier one (verdicts.ts). */
export const checkSignature = (key: PublicKeyHandle, message: Uint8Array, signature: Uint8Array): boolean => {
  if (knownGood(key, message, signature)) return true;
  const good = cofactorlessVerify(key, message, signature);
  if (good) rememberGood(key, message, signature);
  return good;
};

/** No verifier thread: identity.ts checks a batch in line. */
export const checkBatch = (): undefined => undefined;
