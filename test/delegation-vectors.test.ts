/**
 * The signature edge cases of RFC 8032 and Wycheproof-style vectors, as they
 * reach delegation records and revocation notices: a record whose signature
 * was made non-canonical (S + L), or that claims a small-order key with the
 * signature that verifies any message under it, is refused — by the record
 * reader and by the portable verifier alike.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { CID } from 'multiformats/cid';
import { generateIdentity, principalFromPublicKey, verifyPortable } from '../src/identity/index.js';
import { makeDelegation, readDelegation } from '../src/delegation/delegation.js';
import { isSignedRevocation, signRevocation } from '../src/kernel/revocations.js';
import { blockCid } from '../src/store/hashing.js';
import { decode, encode } from '../src/wire/index.js';
import type { Token } from '../src/interface/ids.js';

const random = (n: number) => new Uint8Array(randomBytes(n));
const L = 2n ** 252n + 27742317777372353535851937790883648493n;
const inner = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku';
const DOMAIN = new TextEncoder().encode('promisegrid:delegation:v1\n');

const withS = (signature: Uint8Array, s: bigint) => {
  const out = signature.slice();
  for (let i = 0; i < 32; i++) out[32 + i] = Number((s >> BigInt(8 * i)) & 0xffn);
  return out;
};
const sOf = (signature: Uint8Array) => signature.slice(32).reduceRight((n, byte) => (n << 8n) | BigInt(byte), 0n);

/** A record with these fields and this signature, and the token it would be called by. */
const record = (fields: Record<string, unknown>, sig: Uint8Array) => {
  const bytes = encode({ ...fields, sig });
  return { token: blockCid(bytes, 0x71).toString() as Token, bytes };
};

test('delegation records: non-canonical S and small-order keys are refused, as the portable verifier does', async (t) => {
  const alice = generateIdentity(random);
  const bob = generateIdentity(random);
  const { bytes } = await makeDelegation({ inner, audience: [bob.principal] }, alice, random(16));
  const { sig, ...fields } = decode(bytes) as Record<string, unknown> & { sig: Uint8Array };
  const message = new Uint8Array([...DOMAIN, ...encode(fields)]);
  t.true(verifyPortable(alice.principal, message, sig), 'the signed bytes are what this test thinks they are');

  const good = record(fields, sig);
  t.is(readDelegation(good.token, good.bytes).delegator, alice.principal);

  const malleable = withS(sig, sOf(sig) + L);
  const bad = record(fields, malleable);
  t.throws(() => readDelegation(bad.token, bad.bytes), { message: /signature does not verify/ });
  t.false(verifyPortable(alice.principal, message, malleable));

  // A small-order "key" and R = identity, S = 0: the cofactorless equation holds for any message.
  const identityPoint = new Uint8Array(32);
  identityPoint[0] = 1;
  for (const key of [identityPoint, new Uint8Array(32)]) {
    const forger = principalFromPublicKey(key);
    const forged = { ...fields, delegator: forger };
    const forgery = new Uint8Array(64);
    forgery.set(identityPoint);
    const attempt = record(forged, forgery);
    t.throws(() => readDelegation(attempt.token, attempt.bytes), { message: /signature does not verify/ });
    t.false(verifyPortable(forger, new Uint8Array([...DOMAIN, ...encode(forged)]), forgery));
  }
  // And the record's inner must be a link: the reader refuses anything else, whatever the signature.
  const notALink = record({ ...fields, inner: CID.parse(inner).toV1().toString() }, sig);
  t.throws(() => readDelegation(notALink.token, notALink.bytes), { message: /inner is neither a token link nor a sealed reference/ });
});

test('revocation notices: non-canonical S is refused', async (t) => {
  const alice = generateIdentity(random);
  const notice = await signRevocation(inner as Token, 'done', alice);
  t.true(isSignedRevocation(notice));
  t.false(isSignedRevocation({ ...notice, signature: withS(notice.signature, sOf(notice.signature) + L) }));
  t.false(isSignedRevocation({ ...notice, reason: 'other' }));
});
