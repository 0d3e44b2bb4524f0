/**
 * The grid messages sessions carry after the handshake: each round-trips,
 * is canonical CBOR in the grid envelope, is named by `grid inspect`, and
 * anything of the wrong shape is refused with a FrameError or WireError.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { decodeMessage, encodeMessage } from '../src/wire/index.js';
import { CANCEL_PROTOCOL, decodeCall, decodeCancel, decodeReply, decodeRevocation, decodeTokenRequest, encodeCall, encodeCancel, encodeReply, encodeRevocation, encodeTokenRequest, FETCH_PROTOCOL, REPLY_PROTOCOL } from '../src/net/frames.js';
import { generateIdentity } from '../src/identity/index.js';
import { isSignedRevocation, signRevocation } from '../src/kernel/revocations.js';
import { inspectBytes } from '../src/cli/inspect.js';
import type { Principal, Token } from '../src/interface/ids.js';

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
  t.throws(() => decodeCall(message, 0), { message: /1 to 0 principals/ });
  t.deepEqual(decodeCall(decodeMessage(encodeCall(1, token, [], {})), 8).options, { follow: false }, 'a call that is not forwarded names no path');
  t.throws(() => decodeCall(decodeMessage(encodeMessage(token, 1, new Uint8Array([0x80]), 0, [])), 8), { message: /path/ }, 'an empty path is refused');
});

test('a call through a delegation carries its chain, with or without a path; a malformed chain is refused', (t) => {
  const chain = { links: [new Uint8Array([1, 2]), new Uint8Array([3])], modules: [new Uint8Array([4])] };
  for (const path of [[], [principal as Principal]]) {
    const bytes = encodeCall(2, token, [1], { path, chain });
    t.deepEqual(reencoded(bytes), bytes);
    const call = decodeCall(decodeMessage(bytes), 8);
    t.deepEqual(call.options.chain, chain);
    t.deepEqual(call.options.path, path.length > 0 ? path : undefined);
  }
  const args = new Uint8Array([0x80]);
  t.throws(() => decodeCall(decodeMessage(encodeMessage(token, 1, args, 0, null)), 8), { message: /path/ }, 'a null path makes room for a chain only');
  for (const bad of [[[], []], [[new Uint8Array(1)]], [['text'], []], [[new Uint8Array(1)], [7]], [Array.from({ length: 65 }, () => new Uint8Array(1)), []]]) {
    t.throws(() => decodeCall(decodeMessage(encodeMessage(token, 1, args, 0, null, bad)), 8), { message: /a chain is \[links, modules\]/ });
  }
});

test('replies carry each kind of outcome and whether it may be cached or replicated', (t) => {
  const answers = [
    { outcome: { status: 'fulfilled', value: { a: [2n ** 63n, null] } }, cacheable: true, replicable: true },
    { outcome: { status: 'fulfilled', value: 'x' }, cacheable: false },
    { outcome: { status: 'revoked', code: 'unreachable', reason: 'unreachable' }, cacheable: false },
    { outcome: { status: 'promised', token }, cacheable: false },
  ] as const;
  for (const answer of answers) {
    const bytes = encodeReply(3, answer as never);
    t.deepEqual(reencoded(bytes), bytes);
    t.deepEqual(decodeReply(decodeMessage(bytes)), { id: 3, answer: answer as never });
  }
  t.regex(inspectBytes(encodeReply(0, answers[2] as never)).text, /: reply \(bafy/);
  // A revoked answer never claims to be cacheable, whatever the sender says.
  const lying = encodeMessage(REPLY_PROTOCOL, 1, 1, 'no', 3);
  t.deepEqual(decodeReply(decodeMessage(lying)).answer, { outcome: { status: 'revoked', code: 'other', reason: 'no' }, cacheable: false }, 'no code (an older peer): the fallback');
  // A peer is untrusted: a code this node does not know, or no string at all, reads as the fallback `other`; a known one as itself.
  for (const code of ['owned', '__proto__', 'hasOwnProperty', 3, null, { code: 'loop' }, ['loop'], new Uint8Array([1])]) {
    t.like(decodeReply(decodeMessage(encodeMessage(REPLY_PROTOCOL, 1, 1, 'no', 0, code))).answer.outcome, { status: 'revoked', code: 'other' }, String(code));
  }
  t.like(decodeReply(decodeMessage(encodeMessage(REPLY_PROTOCOL, 1, 1, 'no', 0, 'time-limit'))).answer.outcome, { status: 'revoked', code: 'time-limit' });
  t.throws(() => decodeReply(decodeMessage(encodeMessage(REPLY_PROTOCOL, 1, 1, 'no', 0, 'loop', 'extra'))), { message: /code\?/ }, 'one code, no more slots');
  for (const slots of [[1, 3, 'x', 0], [1, 0, 'not bytes', 0], [1, 1, 5, 0], [1, 2, 'nope', 0], [1, 0, new Uint8Array([1])], [1, 0, new Uint8Array([1]), 0, 'extra'], [1, { status: 'fulfilled' }]]) {
    t.throws(() => decodeReply(decodeMessage(encodeMessage(REPLY_PROTOCOL, ...slots))), undefined, JSON.stringify(slots));
  }
  t.throws(() => decodeReply(decodeMessage(encodeMessage(REPLY_PROTOCOL, -1, 1, 'x', 0))), { message: /request id/ });
});

test('a cancel names one request id of its sender, round-trips, and is named by inspect; anything else is refused', (t) => {
  const bytes = encodeCancel(7);
  t.deepEqual(reencoded(bytes), bytes);
  t.is(decodeCancel(decodeMessage(bytes)), 7);
  t.regex(inspectBytes(bytes).text, /: cancel \(bafy/);
  for (const slots of [[], [-1], [1.5], ['7'], [7, 'extra']]) {
    t.throws(() => decodeCancel(decodeMessage(encodeMessage(CANCEL_PROTOCOL, ...slots))), undefined, JSON.stringify(slots));
  }
});

test('revocation notices and fetches round-trip; a notice verifies only as signed', async (t) => {
  const issuer = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  const notice = await signRevocation(token, 'withdrawn', issuer);
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
  const fetch = encodeTokenRequest(FETCH_PROTOCOL, 2, token);
  t.deepEqual(decodeTokenRequest(decodeMessage(fetch)), { id: 2, token });
  t.regex(inspectBytes(fetch).text, /: replica fetch/);
});
