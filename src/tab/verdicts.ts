/**
 * Signatures a tab node has found good, remembered across reloads, so that
 * a start does not check again what the last page checked (or signed): the
 * first portable Ed25519 check of a page builds its tables and costs more
 * than the rest of a warm start. What is kept is a digest of each good
 * (public key, signature, message) — never a bad verdict — the latest
 * MAX_KEPT of them, in the node's IndexedDB beside its journal and snapshot.
 *
 * It trusts nothing the node did not trust already: whoever can write this
 * origin's IndexedDB can also run script in it, use the node's key and
 * replace its snapshot, which the kernel takes as verified state. Against
 * everyone else — peers, apps, other origins — a signature is good here
 * exactly when the portable check says so, once.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes } from '../identity/identity.js';

const MAX_KEPT = 1024;
const DIGEST = 32;

/** The digests kept, in a ring of MAX_KEPT (`count` of them, the oldest at `next` once full), and as text for lookups. */
const ring = new Uint8Array(MAX_KEPT * DIGEST);
let next = 0;
let count = 0;
const good = new Set<string>();
let save: ((bytes: Uint8Array) => Promise<void>) | undefined;
let saving = false;

const text = (digest: Uint8Array) => String.fromCharCode(...digest);
// Key and signature have fixed lengths: put first, they leave no two triples the same bytes.
const digestOf = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array) => sha256(concatBytes(publicKey, signature, message));

const add = (digest: Uint8Array) => {
  const key = text(digest);
  if (good.has(key)) return false;
  if (count === MAX_KEPT) good.delete(text(ring.subarray(next * DIGEST, next * DIGEST + DIGEST)));
  else count += 1;
  ring.set(digest, next * DIGEST);
  next = (next + 1) % MAX_KEPT;
  good.add(key);
  return true;
};

/** Write the digests out, once per turn however many were added in it. */
const persist = () => {
  if (!save || saving) return;
  saving = true;
  setTimeout(() => {
    saving = false;
    save?.(ring.slice(0, count * DIGEST)).catch((error: unknown) => console.warn(`verdicts: not kept (${(error as Error)?.message ?? String(error)}); the next start checks again`));
  }, 0);
};

/** Take the digests kept (`stored`, as read at open; anything else is ignored) and keep later ones with `store`. */
export const keepVerdicts = (stored: unknown, store: (bytes: Uint8Array) => Promise<void>): void => {
  if (stored instanceof Uint8Array && stored.length % DIGEST === 0) {
    for (let at = 0; at < stored.length; at += DIGEST) add(stored.slice(at, at + DIGEST));
  }
  save = store;
};

/** Whether this (public key, message, signature) was found good before. */
export const knownGood = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean => good.has(text(digestOf(publicKey, message, signature)));

/** Remember a good signature: one the portable check passed, or one this node's own key just made. */
export const rememberGood = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): void => {
  if (add(digestOf(publicKey, message, signature))) persist();
};
