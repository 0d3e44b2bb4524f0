/**
 * A tab node's principal. Its Ed25519 key is made in the tab by WebCrypto
 * as non-extractable — no script, this one included, can read the private
 * key's bytes; it can only ask the browser to sign — and the CryptoKey
 * itself is kept in IndexedDB (a CryptoKey is structured-cloneable), so a
 * reload signs with the same key: the same principal. Where the browser has
 * no WebCrypto Ed25519, a seed from `crypto.getRandomValues` is kept
 * instead and @noble/ed25519 signs with it: that seed is readable by any
 * script of the origin, which `kind` says.
 *
 * At open the key must sign a challenge that its stored public key verifies:
 * a key record changed by hand is refused, never used as someone else.
 */
import { identityFromSecret, principalFromPublicKey, verify, type Identity } from '../identity/identity.js';
import { GridError } from '../interface/errors.js';
import type { TabDatabase } from './database.js';
import { KEY_RECORD } from './early.js';
import { rememberGood } from './verdicts.js';

export type TabKeyKind = 'webcrypto' | 'seed';
export interface TabIdentity extends Identity {
  /** Where the private key lives: a non-extractable WebCrypto key, or a seed in IndexedDB. */
  readonly kind: TabKeyKind;
}

type StoredKey = { kind: 'webcrypto'; privateKey: CryptoKey; publicKey: Uint8Array } | { kind: 'seed'; seed: Uint8Array };

const ED25519 = { name: 'Ed25519' } as const;
const CHALLENGE = new TextEncoder().encode('promisegrid tab key check');

export class TabKeyError extends GridError<'ERR_BAD_KEY'> {
  constructor(message: string) {
    super('ERR_BAD_KEY', `tab key: ${message}`);
  }
}

const webCryptoIdentity = (privateKey: CryptoKey, publicKey: Uint8Array): TabIdentity => {
  const principal = principalFromPublicKey(publicKey);
  const kept = publicKey.slice();
  return Object.freeze({
    kind: 'webcrypto' as const,
    principal,
    get publicKey() {
      return kept.slice();
    },
    sign: async (message: Uint8Array) => {
      if (!(message instanceof Uint8Array)) throw new TypeError('message must be a Uint8Array');
      const signature = new Uint8Array(await crypto.subtle.sign(ED25519, privateKey, message as Uint8Array<ArrayBuffer>));
      // The key checked at open makes only good signatures: a later check of this one (a seal, at the next open) need not be done.
      rememberGood(kept, message, signature);
      return signature;
    },
  });
};

/** A new key: WebCrypto's where it has Ed25519, else a random seed. */
const freshKey = async (): Promise<StoredKey> => {
  let pair: CryptoKeyPair;
  try {
    pair = (await crypto.subtle.generateKey(ED25519, false, ['sign', 'verify'])) as CryptoKeyPair;
  } catch {
    return { kind: 'seed', seed: crypto.getRandomValues(new Uint8Array(32)) };
  }
  return { kind: 'webcrypto', privateKey: pair.privateKey, publicKey: new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey)) };
};

const identityOf = (stored: unknown): TabIdentity => {
  const key = stored as Partial<Record<string, unknown>> | null;
  if (key?.kind === 'webcrypto' && key.privateKey instanceof CryptoKey && key.publicKey instanceof Uint8Array && key.publicKey.length === 32) {
    return webCryptoIdentity(key.privateKey, key.publicKey);
  }
  if (key?.kind === 'seed' && key.seed instanceof Uint8Array && key.seed.length === 32) {
    const seeded = identityFromSecret(key.seed);
    return Object.freeze({
      kind: 'seed' as const,
      principal: seeded.principal,
      get publicKey() {
        return seeded.publicKey;
      },
      sign: (message: Uint8Array) => seeded.sign(message),
    });
  }
  throw new TabKeyError('the key kept in IndexedDB is not a key this node made');
};

/**
 * Whether `signature`, the key's own on CHALLENGE, verifies under the kept
 * public key: whether the record's two halves belong together. A WebCrypto
 * key is checked by WebCrypto, natively, at once (as a batch is, ed25519.ts)
 * — only this node's own signature on a fixed message is judged here, so no
 * hostile edge case arises — and the portable check's first use, which
 * builds its tables, is not paid at every start.
 */
const signsFor = async (identity: TabIdentity, signature: Uint8Array): Promise<boolean> => {
  if (identity.kind !== 'webcrypto') return verify(identity.principal, CHALLENGE, signature);
  const publicKey = await crypto.subtle.importKey('raw', identity.publicKey as Uint8Array<ArrayBuffer>, ED25519, false, ['verify']);
  return crypto.subtle.verify(ED25519, publicKey, signature as Uint8Array<ArrayBuffer>, CHALLENGE);
};

/** The node's identity from its database, whose key record as read at open (early.ts) is `stored`: made and kept there on first use. */
export const loadOrCreateTabIdentity = async (db: TabDatabase, stored: unknown): Promise<TabIdentity> => {
  if (stored === undefined) {
    const fresh = await freshKey();
    // `add`, not `put`: a key already there (another open that got there first) is never replaced.
    await db.add('keys', fresh, KEY_RECORD);
    stored = fresh;
  }
  const identity = identityOf(stored);
  // Signed past `identity.sign`, which takes what it signs as good (verdicts.ts): this is the signature that decides whether to.
  const signature = identity.kind === 'webcrypto' ? new Uint8Array(await crypto.subtle.sign(ED25519, (stored as { privateKey: CryptoKey }).privateKey, CHALLENGE)) : await identity.sign(CHALLENGE);
  if (!(await signsFor(identity, signature))) throw new TabKeyError(`the kept private key does not sign for ${identity.principal}`);
  return identity;
};
