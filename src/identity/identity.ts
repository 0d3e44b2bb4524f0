/**
 * Ed25519 principals, printed as `did:key:z6Mk…` (multicodec ed25519-pub
 * 0xed 0x01, base58btc). Signing and verifying go through node:crypto
 * (ed25519.ts), about ten times faster than pure JS; `verifyPortable`
 * reaches the same verdict with @noble/ed25519's point arithmetic
 * (portable.ts), and a browser tab's bundle verifies with it
 * (src/tab/ed25519.ts in place of ed25519.ts).
 * Both apply one acceptance policy (see strict.ts) and the tests hold them to
 * the same verdict on every hostile vector we know of.
 *
 * A hostile signature or key makes verify answer false; it throws only on
 * arguments of the wrong type. Nothing here touches a global or a shared
 * module object, so it works the same before and after SES lockdown.
 */
import { base58btc } from 'multiformats/bases/base58';
import { concatBytes } from '@noble/hashes/utils.js';
import { checkBatch, checkSignature, importPublicKey, MAX_CACHED_KEYS, signerFromSecret, type PublicKeyHandle } from './ed25519.js';
import { cofactorlessVerify } from './portable.js';
import { asPrincipal, quote, type Principal } from '../interface/ids.js';
import { isAcceptableKey, isAcceptableSignature } from './strict.js';
import { owned } from '../wire/cbor.js';

export interface Identity {
  readonly principal: Principal;
  /** The 32-byte public key (a fresh copy on every read). */
  readonly publicKey: Uint8Array;
  /** A signature of `message`; a promise, so a key held where only asynchronous signing reaches it (WebCrypto in a tab, a hardware token) can stand behind it. */
  sign(message: Uint8Array): Promise<Uint8Array>;
}

/** Multicodec `ed25519-pub`, as an unsigned varint. */
const ED25519_PUB_PREFIX = Uint8Array.from([0xed, 0x01]);

/** Byte strings one after another: a domain prefix and what a signature covers, a DER prefix and a key. */
export { concatBytes };

const assertBytes = (value: unknown, what: string): Uint8Array => {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array (got ${quote(value)})`);
  return value;
};

const assertLength = (bytes: Uint8Array, length: number, what: string): Uint8Array => {
  if (bytes.length !== length) throw new RangeError(`${what} must be ${length} bytes (got ${bytes.length})`);
  return bytes;
};

export const principalFromPublicKey = (publicKey: Uint8Array): Principal => {
  assertLength(assertBytes(publicKey, 'Ed25519 public key'), 32, 'an Ed25519 public key');
  return `did:key:${base58btc.encode(concatBytes(ED25519_PUB_PREFIX, publicKey))}` as Principal;
};

/** The raw key inside an Ed25519 did:key; a TypeError quoting the input if it is anything else. */
export const publicKeyFromPrincipal = (principal: string): Uint8Array => {
  const checked = asPrincipal(principal);
  let bytes: Uint8Array;
  try {
    bytes = base58btc.decode(checked.slice('did:key:'.length));
  } catch {
    throw new TypeError(`principal is not valid base58btc: ${quote(principal)}`);
  }
  if (bytes.length !== 34 || bytes[0] !== ED25519_PUB_PREFIX[0] || bytes[1] !== ED25519_PUB_PREFIX[1]) {
    throw new TypeError(`principal is not an Ed25519 did:key (multicodec 0xed01 + 32 bytes): ${quote(principal)}`);
  }
  return bytes.slice(2);
};

/** An identity from its 32-byte secret seed (RFC 8032 §5.1.5). The seed is not kept. */
export const identityFromSecret = (secret: Uint8Array): Identity => {
  assertLength(assertBytes(secret, 'Ed25519 secret key'), 32, 'an Ed25519 secret key');
  const { publicKey, sign } = signerFromSecret(secret);
  const principal = principalFromPublicKey(publicKey);
  return Object.freeze({
    principal,
    get publicKey() {
      return publicKey.slice();
    },
    sign: async (message: Uint8Array) => sign(assertBytes(message, 'message')),
  });
};

/** A fresh identity; randomness is a power handed in, not ambient. */
export const generateIdentity = (randomBytes: (length: number) => Uint8Array): Identity => {
  if (typeof randomBytes !== 'function') throw new TypeError(`randomBytes must be a function (got ${quote(randomBytes)})`);
  return identityFromSecret(randomBytes(32));
};

/**
 * Public keys, imported for checking (ed25519.ts), by principal (or by `hex:`
 * raw key), least recently used first. A key that fails the policy is
 * remembered as `null`, so a peer that repeats a bad key costs a lookup.
 * Bounded, so hostile keys only evict.
 */
const publicKeys = new Map<string, PublicKeyHandle | null>();

const keyObject = (cacheKey: string, raw: () => Uint8Array | undefined): PublicKeyHandle | null => {
  const hit = publicKeys.get(cacheKey);
  if (hit !== undefined) {
    publicKeys.delete(cacheKey);
    publicKeys.set(cacheKey, hit);
    return hit;
  }
  const bytes = raw();
  if (!bytes) return null; // not a key at all: not worth a cache slot
  const key = isAcceptableKey(bytes) ? importPublicKey(bytes) : null;
  if (publicKeys.size >= MAX_CACHED_KEYS) publicKeys.delete(publicKeys.keys().next().value!);
  publicKeys.set(cacheKey, key);
  return key;
};

type Signer = string | Uint8Array;

/** The raw public key a signer names, or undefined if it names none. Throws only on a wrong type. */
const signerKey = (signer: Signer): Uint8Array | undefined => {
  if (typeof signer === 'string') {
    try {
      return publicKeyFromPrincipal(signer);
    } catch {
      return undefined;
    }
  }
  if (!(signer instanceof Uint8Array)) throw new TypeError(`signer must be a principal or a public key (got ${quote(signer)})`);
  return signer.length === 32 ? signer : undefined;
};

const hexOf = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

/**
 * Does `signature` sign `message` for `signer` (a principal or a raw 32-byte
 * key)? False for any malformed or hostile bytes; TypeError for wrong types.
 */
export const verify = (signer: Signer, message: Uint8Array, signature: Uint8Array): boolean => {
  const key = acceptedKey(signer, message, signature);
  return key !== null && checkSignature(key, message, signature);
};

/** The key `signature` is to be checked against, or null when the policy refuses the signer or the signature outright. */
const acceptedKey = (signer: Signer, message: Uint8Array, signature: Uint8Array): PublicKeyHandle | null => {
  assertBytes(message, 'message');
  assertBytes(signature, 'signature');
  let key: PublicKeyHandle | null;
  if (typeof signer === 'string') {
    key = keyObject(signer, () => signerKey(signer));
  } else {
    if (signerKey(signer) === undefined) return null; // a TypeError for a non-key, false for a wrong length
    key = keyObject(`hex:${hexOf(signer)}`, () => signer.slice());
  }
  return key && isAcceptableSignature(signature) ? key : null;
};

/** One signature to check: a signer, the message, the signature (`verify`'s arguments). */
export type SignatureCheck = readonly [signer: Signer, message: Uint8Array, signature: Uint8Array];

/**
 * `verify`'s verdicts on many signatures at once, computed off the main
 * thread: the policy's byte checks here, OpenSSL's check in one batch on a
 * verifier thread (or, if it cannot run, here). For a bundle of versions:
 * the main thread decodes and replays while the signatures are checked.
 * Argument types are checked (TypeError) before it returns.
 */
export const verifyMany = (checks: readonly SignatureCheck[]): Promise<boolean[]> => {
  const verdicts = checks.map(() => false);
  const keys: Uint8Array[] = [];
  const messages: Uint8Array[] = [];
  const signatures: Uint8Array[] = [];
  const at: number[] = [];
  /** A bundle's versions have few authors: each principal's key is read once. */
  const raw = new Map<string, Uint8Array>();
  checks.forEach(([signer, message, signature], index) => {
    if (!acceptedKey(signer, message, signature)) return;
    if (typeof signer === 'string' && !raw.has(signer)) raw.set(signer, publicKeyFromPrincipal(signer));
    // Bytes that own their memory: a view into a whole frame would carry the frame to the thread.
    keys.push(typeof signer === 'string' ? raw.get(signer)! : owned(signer));
    messages.push(owned(message));
    signatures.push(owned(signature));
    at.push(index);
  });
  if (at.length === 0) return Promise.resolve(verdicts);
  const inLine = () => {
    at.forEach((index) => (verdicts[index] = verify(...checks[index]!)));
    return verdicts;
  };
  const batch = checkBatch(keys, messages, signatures);
  if (!batch) return Promise.resolve(inLine());
  return batch.then((answered) => {
    if (!answered || answered.length !== at.length) return inLine();
    at.forEach((index, i) => (verdicts[index] = answered[i] === 1));
    return verdicts;
  });
};

/**
 * The same verdict as `verify`, computed with @noble/ed25519's point
 * arithmetic and @noble/hashes' SHA-512: for runtimes without node:crypto,
 * and as an independent reference for the fast path. It checks RFC 8032's
 * cofactorless equation [S]B = R + [k]A itself rather than calling
 * `ed.verify`, whose strict mode is cofactored and would accept signatures
 * that OpenSSL refuses; and it needs no `ed.hashes.sha512 = …` set-up, so it
 * mutates no shared module object.
 */
export const verifyPortable = (signer: Signer, message: Uint8Array, signature: Uint8Array): boolean => {
  assertBytes(message, 'message');
  assertBytes(signature, 'signature');
  const publicKey = signerKey(signer);
  return publicKey !== undefined && isAcceptableKey(publicKey) && isAcceptableSignature(signature) && cofactorlessVerify(publicKey, message, signature);
};
