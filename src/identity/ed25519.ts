/**
 * Ed25519 through node:crypto (OpenSSL): signing with a seed, checking one
 * signature, and checking a batch on a verifier thread. identity.ts applies
 * the acceptance policy (strict.ts) before anything here sees a key or a
 * signature. This is identity's one platform module: a browser tab's bundle
 * puts src/tab/ed25519.ts in its place (scripts/build-tab.mjs).
 */
import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { concatBytes } from '@noble/hashes/utils.js';

/** DER wrappers around a raw 32-byte key (RFC 8410): PKCS#8 for a seed, SPKI for a public key. */
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

/** Public keys kept imported, here and on the verifier thread. */
export const MAX_CACHED_KEYS = 1024;

/** A public key ready for `checkSignature`. */
export type PublicKeyHandle = KeyObject;

/** The public key of a 32-byte seed (RFC 8032 §5.1.5), and signing with it; the seed is not kept. */
export const signerFromSecret = (secret: Uint8Array): { publicKey: Uint8Array; sign(message: Uint8Array): Promise<Uint8Array> } => {
  const privateKey = createPrivateKey({ key: Buffer.from(concatBytes(PKCS8_PREFIX, secret)), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return {
    publicKey: new Uint8Array(spki.subarray(spki.length - 32)),
    sign: async (message) => new Uint8Array(nodeSign(null, message, privateKey)),
  };
};

/** A raw key the policy accepted, imported; null if OpenSSL will not take it. */
export const importPublicKey = (raw: Uint8Array): PublicKeyHandle | null => {
  try {
    return createPublicKey({ key: Buffer.from(concatBytes(SPKI_PREFIX, raw)), format: 'der', type: 'spki' });
  } catch {
    return null;
  }
};

export const checkSignature = (key: PublicKeyHandle, message: Uint8Array, signature: Uint8Array): boolean => {
  try {
    return nodeVerify(null, message, key, signature);
  } catch {
    return false;
  }
};

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
 * Up to this many signatures are checked on the calling thread: a round trip
 * to the verifier thread (two wake-ups, each 18–50 µs here and far more on a
 * busy machine) costs more than checking a few (~55 µs each), and a live
 * edit carries one.
 */
const CHECKED_HERE = 4;

/**
 * OpenSSL's verdicts (1 or 0) on raw keys the policy accepted, computed in
 * one batch on the verifier thread; undefined for a few (CHECKED_HERE) or if
 * the thread cannot start here (the caller then checks them itself), and a
 * promise of undefined if it failed on the way.
 */
export const checkBatch = (keys: Uint8Array[], messages: Uint8Array[], signatures: Uint8Array[]): Promise<Uint8Array | undefined> | undefined => {
  if (keys.length <= CHECKED_HERE) return undefined;
  const thread = verifierThread();
  if (!thread) return undefined;
  const id = thread.next++;
  return new Promise<Uint8Array | undefined>((resolve) => {
    thread.waiting.set(id, resolve);
    thread.worker.ref();
    thread.worker.postMessage({ id, keys, messages, signatures });
  }).finally(() => {
    if (thread.waiting.size === 0) thread.worker.unref();
  });
};
