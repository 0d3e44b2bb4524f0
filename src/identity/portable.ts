/**
 * RFC 8032's cofactorless check [S]B = R + [k]A on @noble/ed25519's point
 * arithmetic and @noble/hashes' SHA-512, for keys and signatures that
 * already passed the acceptance policy (strict.ts): `verifyPortable`'s
 * arithmetic, and how a browser tab checks every signature. Not `ed.verify`,
 * whose strict mode is cofactored and would accept signatures that OpenSSL
 * refuses; and it needs no `ed.hashes.sha512 = …` set-up, so it mutates no
 * shared module object.
 */
import { Point } from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { concatBytes } from '@noble/hashes/utils.js';

/** L, the order of the prime subgroup. */
export const N = 2n ** 252n + 27742317777372353535851937790883648493n;

const numberLE = (bytes: Uint8Array): bigint => {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
};

/** Whether the equation holds; false for bytes that are not a point. */
export const cofactorlessVerify = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean => {
  try {
    const r = signature.subarray(0, 32);
    const A = Point.fromBytes(publicKey, false);
    const R = Point.fromBytes(r, false);
    const s = numberLE(signature.subarray(32));
    const k = numberLE(sha512(concatBytes(r, publicKey, message))) % N;
    return Point.BASE.multiply(s, false).equals(R.add(A.multiply(k, false)));
  } catch {
    return false; // a byte string that is not a point
  }
};
