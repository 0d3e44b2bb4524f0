/**
 * The tab's remembered verdicts (src/tab/verdicts.ts) through its Ed25519
 * check (src/tab/ed25519.ts): only a signature the portable check passed is
 * remembered, as a digest of key, signature and message; the kept digests
 * are written out for the next page and taken back from what was stored;
 * and a remembered signature makes no other signature, message or key
 * good.
 */
import test from 'ava';
import { sha256 } from '@noble/hashes/sha2.js';
import { identityFromSecret } from '../src/identity/index.js';
import { concatBytes } from '../src/identity/identity.js';
import { checkSignature } from '../src/tab/ed25519.js';
import { keepVerdicts, knownGood } from '../src/tab/verdicts.js';

const digest = (key: Uint8Array, message: Uint8Array, signature: Uint8Array) => sha256(concatBytes(key, signature, message));
const turn = () => new Promise((resolve) => setTimeout(resolve, 5));

test('only good signatures are remembered, kept for the next page, and taken back from what was stored', async (t) => {
  const saved: Uint8Array[] = [];
  const before = identityFromSecret(new Uint8Array(32).fill(7));
  const earlier = new TextEncoder().encode('checked by the last page');
  const earlierSignature = await before.sign(earlier);
  // What the last page stored.
  keepVerdicts(digest(before.publicKey, earlier, earlierSignature), async (bytes) => void saved.push(bytes));
  t.true(knownGood(before.publicKey, earlier, earlierSignature), 'a stored verdict is taken back');

  const signer = identityFromSecret(new Uint8Array(32).fill(9));
  const message = new TextEncoder().encode('a seal');
  const signature = await signer.sign(message);
  const altered = signature.slice();
  altered[40]! ^= 1;
  t.false(checkSignature(signer.publicKey, message, altered));
  t.false(knownGood(signer.publicKey, message, altered), 'a bad verdict is not remembered');
  t.false(knownGood(signer.publicKey, message, signature), 'nothing is remembered before it is checked');
  t.true(checkSignature(signer.publicKey, message, signature));
  t.true(knownGood(signer.publicKey, message, signature), 'a good one is');

  // A remembered signature vouches for itself only.
  t.false(checkSignature(signer.publicKey, message, altered), 'the same message with a changed signature');
  t.false(checkSignature(signer.publicKey, new TextEncoder().encode('another seal'), signature), 'the same signature on another message');
  t.false(checkSignature(before.publicKey, message, signature), 'the same signature under another key');

  await turn();
  const written = saved.at(-1)!;
  t.is(written.length % 32, 0);
  const digests = Array.from({ length: written.length / 32 }, (_, i) => Buffer.from(written.subarray(i * 32, i * 32 + 32)).toString('hex'));
  t.true(digests.includes(Buffer.from(digest(signer.publicKey, message, signature)).toString('hex')), 'written out for the next page');
  t.true(digests.includes(Buffer.from(digest(before.publicKey, earlier, earlierSignature)).toString('hex')), 'with those taken back');
  t.false(digests.includes(Buffer.from(digest(signer.publicKey, message, altered)).toString('hex')));

  keepVerdicts(new Uint8Array(33).fill(1), async (bytes) => void saved.push(bytes));
  t.true(knownGood(signer.publicKey, message, signature), 'a stored record that is not whole digests adds nothing and drops nothing');
});
