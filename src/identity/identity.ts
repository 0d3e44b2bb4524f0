/**
 * Ed25519 principals, printed as `did:key:z6Mk…` (multicodec ed25519-pub
 * 0xed 0x01, base58btc). Signing and verifying go through node:crypto, about
 * ten times faster than pure JS; `verifyPortable` reaches the same verdict
 * with @noble/ed25519's point arithmetic for runtimes without node:crypto.
 * Both apply one acceptance policy (see strict.ts) and the tests hold them to
 * the same verdict on every hostile vector we know of.
 *
 * A hostile signature or key makes verify answer false; it throws only on
 * arguments of the wrong type. Nothing here touches a global or a shared
 * module object, so it works the same before and after SES lockdown.
 */
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { base58btc } from 'multiformats/bases/base58';
import { Point } from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { concatBytes } from '@noble/hashes/utils.js';
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
/** DER wrappers around a raw 32-byte key (RFC 8410): PKCS#8 for a seed, SPKI for a public key. */
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

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
  const privateKey = createPrivateKey({ key: Buffer.from(concatBytes(PKCS8_PREFIX, secret)), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const publicKey = new Uint8Array(spki.subarray(spki.length - 32));
  const principal = principalFromPublicKey(publicKey);
  return Object.freeze({
    principal,
    get publicKey() {
      return publicKey.slice();
    },
    sign: async (message: Uint8Array) => new Uint8Array(nodeSign(null, assertBytes(message, 'message'), privateKey)),
  });
};

/** A fresh identity; randomness is a power handed in, not ambient. */
export const generateIdentity = (randomBytes: (length: number) => Uint8Array): Identity => {
  if (typeof randomBytes !== 'function') throw new TypeError(`randomBytes must be a function (got ${quote(randomBytes)})`);
  return identityFromSecret(randomBytes(32));
};

/**
 * Public KeyObjects by principal (or by `hex:` raw key), least recently used
 * first. A key that fails the policy is remembered as `null`, so a peer that
 * repeats a bad key costs a lookup. Bounded, so hostile keys only evict.
 */
const MAX_CACHED_KEYS = 1024;
const publicKeys = new Map<string, KeyObject | null>();

const keyObject = (cacheKey: string, raw: () => Uint8Array | undefined): KeyObject | null => {
  const hit = publicKeys.get(cacheKey);
  if (hit !== undefined) {
    publicKeys.delete(cacheKey);
    publicKeys.set(cacheKey, hit);
    return hit;
  }
  const bytes = raw();
  if (!bytes) return null; // not a key at all: not worth a cache slot
  let key: KeyObject | null = null;
  if (isAcceptableKey(bytes)) {
    try {
      key = createPublicKey({ key: Buffer.from(concatBytes(SPKI_PREFIX, bytes)), format: 'der', type: 'spki' });
    } catch {
      key = null;
    }
  }
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
  if (!key) return false;
  try {
    return nodeVerify(null, message, key, signature);
  } catch {
    return false;
  }
};

/** The key `signature` is to be checked against, or null when the policy refuses the signer or the signature outright. */
const acceptedKey = (signer: Signer, message: Uint8Array, signature: Uint8Array): KeyObject | null => {
  assertBytes(message, 'message');
  assertBytes(signature, 'signature');
  let key: KeyObject | null;
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
 * The verifier thread: OpenSSL's check (node:crypto, as `verify` makes it)
 * on raw keys that already passed the policy on the main thread, a batch per
 * message. Plain script, no imports of ours: it holds nothing but keys.
 */
const VERIFIER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createPublicKey, verify } = require('node:crypto');
const SPKI = Buffer.from('${Buffer.from(SPKI_PREFIX).toString('hex')}', 'hex');
const keys = new Map();
parentPort.on('message', ({ id, keys: raw, messages, signatures }) => {
  const verdicts = new Uint8Array(messages.length);
  for (let i = 0; i < messages.length; i++) {
    const hex = Buffer.from(raw[i]).toString('hex');
    let key = keys.get(hex);
    if (!key) {
      if (keys.size >= ${MAX_CACHED_KEYS}) keys.delete(keys.keys().next().value);
      key = createPublicKey({ key: Buffer.concat([SPKI, raw[i]]), format: 'der', type: 'spki' });
      keys.set(hex, key);
    }
    try {
      verdicts[i] = verify(null, messages[i], key, signatures[i]) ? 1 : 0;
    } catch {
      verdicts[i] = 0;
    }
  }
  parentPort.postMessage({ id, verdicts });
});`;

let verifier: { worker: Worker; waiting: Map<number, (verdicts: Uint8Array | undefined) => void>; next: number } | undefined;

/** The verifier thread, started on first use; it never keeps the process alive. Undefined if threads cannot start here. */
const verifierThread = () => {
  if (verifier) return verifier;
  let worker: Worker;
  try {
    worker = new Worker(VERIFIER_SOURCE, { eval: true, execArgv: [], env: {} });
  } catch {
    return undefined;
  }
  worker.unref();
  const started = { worker, waiting: new Map<number, (verdicts: Uint8Array | undefined) => void>(), next: 0 };
  const fail = () => {
    if (verifier === started) verifier = undefined;
    for (const resolve of started.waiting.values()) resolve(undefined);
    started.waiting.clear();
  };
  worker.on('message', ({ id, verdicts }: { id: number; verdicts: Uint8Array }) => {
    started.waiting.get(id)?.(verdicts);
    started.waiting.delete(id);
  });
  worker.on('error', fail);
  worker.on('exit', fail);
  return (verifier = started);
};

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
  const thread = verifierThread();
  if (!thread) return Promise.resolve(inLine());
  const id = thread.next++;
  return new Promise((resolve) => {
    thread.waiting.set(id, (answered) => {
      if (!answered || answered.length !== at.length) return resolve(inLine());
      at.forEach((index, i) => (verdicts[index] = answered[i] === 1));
      resolve(verdicts);
    });
    thread.worker.ref();
    thread.worker.postMessage({ id, keys, messages, signatures });
  }).finally(() => {
    if (thread.waiting.size === 0) thread.worker.unref();
  }) as Promise<boolean[]>;
};

/** L, the order of the prime subgroup. */
const N = 2n ** 252n + 27742317777372353535851937790883648493n;

const numberLE = (bytes: Uint8Array): bigint => {
  let n = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
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
  if (!publicKey || !isAcceptableKey(publicKey) || !isAcceptableSignature(signature)) return false;
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
