/**
 * The grid messages sessions carry after the handshake: each round-trips,
 * is canonical CBOR in the grid envelope, is named by `grid inspect`, and
 * anything of the wrong shape is refused with a FrameError or WireError.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { decodeMessage, encodeMessage } from '../src/wire/index.js';
import { decodeCall, decodeFetch, decodeReply, decodeRevocation, encodeCall, encodeFetch, encodeReply, encodeRevocation, REPLY_PROTOCOL } from '../src/net/frames.js';
import { generateIdentity } from '../src/identity/index.js';
import { isSignedRevocation, signRevocation } from '../src/kernel/revocations.js';
import { inspectBytes } from '../src/cli/inspect.js';
import type { Principal, Token } from '../src/caps/ids.js';

const token = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' as Token;
const principal = generateIdentity((n) => new Uint8Array(randomBytes(n))).principal;

/** Canonical: decoding and encoding again gives the same bytes. */
const reencoded = (bytes: Uint8Array) => {
  const { cid, slots } = decodeMessage(bytes);
  return encodeMessage(cid, ...slots);
};

test('a call is a message addressed to its token', (t) => {
  const bytes = encodeCall(7, token, [1, 'two', { '/': token }, new Uint8Array([3])], { follow: true, path: [principal as Principal] });
  t.deepEqual(reencoded(bytes), bytes);
  const message = decodeMessage(bytes);
  t.is(message.cid.toString(), token);
  const call = decodeCall(message, 8);
  t.is(call.id, 7);
  t.is(call.token, token);
  t.deepEqual(call.args, [1, 'two', { '/': token }, new Uint8Array([3])]);
  t.deepEqual(call.options, { follow: true, path: [principal] });
  t.regex(inspectBytes(bytes).text, new RegExp(`^grid message \\(\\d+ bytes\\): call to token ${token}`));
  t.throws(() => decodeCall(message, 0), { message: /at most 0 principals/ });
});

test('replies carry each kind of outcome and whether it may be cached or replicated', (t) => {
  const answers = [
    { outcome: { status: 'fulfilled', value: { a: [2n ** 63n, null] } }, cacheable: true, replicable: true },
    { outcome: { status: 'fulfilled', value: 'x' }, cacheable: false },
    { outcome: { status: 'revoked', reason: 'unreachable' }, cacheable: false },
    { outcome: { status: 'promised', token }, cacheable: false },
  ] as const;
  for (const answer of answers) {
    const bytes = encodeReply(3, answer as never);
    t.deepEqual(reencoded(bytes), bytes);
    t.deepEqual(decodeReply(decodeMessage(bytes)), { id: 3, answer: answer as never });
  }
  t.regex(inspectBytes(encodeReply(0, answers[2] as never)).text, /: reply \(bafy/);
  // A revoked answer never claims to be cacheable, whatever the sender says.
  const lying = encodeMessage(REPLY_PROTOCOL, 1, { status: 'revoked', reason: 'no', cacheable: true });
  t.false(decodeReply(decodeMessage(lying)).answer.cacheable);
  for (const body of [{ status: 'maybe' }, { status: 'fulfilled' }, { status: 'revoked', reason: 5 }, { status: 'promised', token: 'nope' }]) {
    t.throws(() => decodeReply(decodeMessage(encodeMessage(REPLY_PROTOCOL, 1, body))), undefined, JSON.stringify(body));
  }
  t.throws(() => decodeReply(decodeMessage(encodeMessage(REPLY_PROTOCOL, -1, { status: 'revoked', reason: 'x' }))), { message: /request id/ });
});

test('revocation notices and fetches round-trip; a notice verifies only as signed', (t) => {
  const issuer = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  const notice = signRevocation(token, 'withdrawn', issuer);
  t.true(isSignedRevocation(notice));
  const bytes = encodeRevocation(9, notice);
  t.deepEqual(reencoded(bytes), bytes);
  const { id, notice: decoded } = decodeRevocation(decodeMessage(bytes));
  t.is(id, 9);
  t.deepEqual(decoded, notice);
  t.true(isSignedRevocation(decoded));
  t.false(isSignedRevocation({ ...decoded, reason: 'other' }));
  t.false(isSignedRevocation({ ...decoded, signature: new Uint8Array(64) }));
  t.false(isSignedRevocation({ ...decoded, signature: new Uint8Array(3) }), 'a wrong-length signature is a no, not a throw');
  t.regex(inspectBytes(bytes).text, /: revocation notice/);
  const fetch = encodeFetch(2, token);
  t.deepEqual(decodeFetch(decodeMessage(fetch)), { id: 2, token });
  t.regex(inspectBytes(fetch).text, /: replica fetch/);
});
