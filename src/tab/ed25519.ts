/**
 * Ed25519 in a browser tab (in place of src/identity/ed25519.ts). A check
 * of one signature (`verify`) is the portable cofactorless one
 * (src/identity/portable.ts), which the identity tests hold to OpenSSL's
 * verdict on every hostile vector. A batch (`verifyMany`: the versions a
 * sync or a push brings) is checked by WebCrypto (native code): in
 * Chromium that is BoringSSL's cofactorless check, which
 * test/tab-verify.test.ts holds to OpenSSL's verdicts behind the same byte
 * policy (src/identity/strict.ts) on the same vectors; a browser without
 * WebCrypto Ed25519 falls back to the portable check. So a tab accepts
 * exactly what a Node node accepts. Signing with a seed (a tab whose
 * browser lacks WebCrypto Ed25519; see identity.ts here) is @noble/ed25519's.
 * A single check's good verdict, reached on this page or the last, is
 * remembered (verdicts.ts).
 */
import { Point, signAsync } from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
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

/** WebCrypto's handles of the keys seen, by their bytes (hex), at most MAX_CACHED_KEYS. */
const subtleKeys = new Map<string, Promise<CryptoKey>>();
const subtleKey = (subtle: SubtleCrypto, raw: Uint8Array): Promise<CryptoKey> => {
  const hex = bytesToHex(raw);
  let key = subtleKeys.get(hex);
  if (!key) {
    if (subtleKeys.size >= MAX_CACHED_KEYS) subtleKeys.delete(subtleKeys.keys().next().value!);
    subtleKeys.set(hex, (key = subtle.importKey('raw', raw as Uint8Array<ArrayBuffer>, { name: 'Ed25519' }, false, ['verify'])));
  }
  return key;
};

/**
 * WebCrypto's verdicts (1 or 0) on raw keys the policy accepted; a promise
 * of undefined where WebCrypto has no Ed25519 (identity.ts then checks them
 * in line, portably).
 */
export const checkBatch = (keys: Uint8Array[], messages: Uint8Array[], signatures: Uint8Array[]): Promise<Uint8Array | undefined> | undefined => {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) return undefined;
  return Promise.all(
    keys.map(async (raw, i) => ((await subtle.verify('Ed25519', await subtleKey(subtle, raw), signatures[i] as Uint8Array<ArrayBuffer>, messages[i] as Uint8Array<ArrayBuffer>)) ? 1 : 0)),
  ).then(
    (verdicts) => Uint8Array.from(verdicts),
    () => undefined,
  );
};
