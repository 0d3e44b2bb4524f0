/**
 * Delegation and screening, in process: three (or more) memory kernels play
 * Alice (who holds the closure and answers every call through it), Bob and
 * Carol; `call(…, { caller, chain })` stands in for an authenticated peer
 * sending its chain along. The clock is injected, so time-based policies are
 * tested at their exact edges.
 */
import '../src/perimeter/lockdown.js';
import anyTest, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { CID } from 'multiformats/cid';
import { openKernel, untilSettled, type Entry, type Kernel, type Outcome, type Principal, type Token } from '../src/index.js';
import { generateIdentity, type Identity } from '../src/identity/index.js';
import { signRevocation, type RevocationNotice } from '../src/kernel/revocations.js';
import { makeDelegation, sealToken } from '../src/delegation/delegation.js';
import { decode, encode } from '../src/wire/index.js';
import { blockCid } from '../src/store/hashing.js';
import { DAG_CBOR_CODEC } from '../src/interface/ids.js';
import type { RevokeCode } from '../src/interface/outcome.js';
import { journalEntries } from './_helpers.js';

// One at a time: every test starts kernels and vat threads, and the policy time limits are real timers.
const test = anyTest.serial;

const T0 = 1_800_000_000_000;
const random = (n: number) => new Uint8Array(randomBytes(n));
const ECHO = 'export const echo = (ctx, ...args) => ({ caller: ctx.caller, args })';

interface World {
  clock: { now: number };
  alice: Kernel;
  bob: Kernel;
  carol: Kernel;
  ids: { alice: Identity; bob: Identity; carol: Identity };
  root: Token;
}

/** Alice, Bob and Carol on one injectable clock; Alice issued `root` (an echo of caller and args). */
const world = async (t: ExecutionContext, limits: Record<string, number> = {}): Promise<World> => {
  const clock = { now: T0 };
  const ids = { alice: generateIdentity(random), bob: generateIdentity(random), carol: generateIdentity(random) };
  const open = async (identity: Identity) => {
    const kernel = await openKernel({ memory: true, identity, clock: () => clock.now, limits: { vats: 1, ...limits } });
    t.teardown(() => kernel.close());
    return kernel;
  };
  const [alice, bob, carol] = [await open(ids.alice), await open(ids.bob), await open(ids.carol)];
  const root = await alice.issue({ code: await alice.publish(ECHO), export: 'echo' });
  return { clock, alice, bob, carol, ids, root };
};

const echoed = (caller: Principal, args: unknown[]): Outcome => ({ status: 'fulfilled', value: { caller, args } } as Outcome);
/**
 * A refusal, asserted on its code and on what its reason must name (the
 * layer's token, a principal, words the test chose), not on rebuilt English.
 */
const refuses = (t: ExecutionContext, outcome: Outcome, code: RevokeCode, named: readonly string[], message?: string) => {
  t.like(outcome, { status: 'revoked', code }, message);
  const reason = reasonOf(outcome);
  for (const name of named) t.true(reason.includes(name), `${message ? `${message}: ` : ''}the reason names ${name}: ${reason}`);
};
/** How a layer names itself in a refusal. */
const layer = (token: string) => `delegation ${token.slice(0, 12)}…`;
/** How chain checks name a link. */
const short = (token: string) => `${token.slice(0, 12)}…${token.slice(-6)}`;
const reasonOf = (outcome: Outcome) => (outcome.status === 'revoked' ? outcome.reason : `(not revoked: ${JSON.stringify(outcome)})`);

/** `learner` takes in the chain of `token` as `holder` sends it (the call itself finds no closure there). */
const learn = async (t: ExecutionContext, learner: Kernel, holder: Kernel, token: Token) => {
  refuses(t, await learner.call(token, [], { chain: (await holder.chainBlocks(token))! }), 'unknown-token', []);
};

/** Alice delegates her closure to Bob, and Bob's kernel takes in the chain: Bob's layer. */
const bobsLayer = async (t: ExecutionContext, w: World): Promise<Token> => {
  const dab = await w.alice.delegate({ token: w.root, to: [w.bob.principal] });
  await learn(t, w.bob, w.alice, dab);
  return dab;
};

/** `caller` calls `token` on Alice, sending the chain `carrier` holds for it. */
const through = async (w: World, token: Token, args: unknown[], caller: Principal, carrier: Kernel) =>
  w.alice.call(token, args, { caller, chain: (await carrier.chainBlocks(token))! });

const screened = async (kernel: Kernel) => (await journalEntries(kernel.journal)).filter((e): e is Extract<Entry, { kind: 'screened' }> => e.kind === 'screened');

const reencode = (bytes: Uint8Array, change: (record: Record<string, unknown>) => void) => {
  const record = { ...(decode(bytes) as Record<string, unknown>) };
  change(record);
  const changed = encode(record);
  return { bytes: changed, token: blockCid(changed, DAG_CBOR_CODEC).toString() as Token };
};

test('who may delegate, revoke, and what a chain carries', async (t) => {
  const w = await world(t);
  for (const name of ['approval', 'audit', 'expiry', 'pattern', 'rate']) t.true(w.alice.policies.has(name), name);
  const dab = await w.alice.delegate({ token: w.root, to: [w.bob.principal], policies: [{ module: 'rate', settings: { uses: 5 } }] });
  t.not(dab, w.root);
  t.is(await w.alice.chainBlocks(w.root), undefined);
  const blocks = (await w.alice.chainBlocks(dab))!;
  t.is(blocks.links.length, 1);
  t.deepEqual(blocks.modules, [], 'shipped policies do not travel');
  const wrap = (await journalEntries(w.alice.journal)).find((e) => e.kind === 'wrap');
  t.like(wrap, { token: dab, inner: w.root, delegator: w.alice.principal, audience: [w.bob.principal], issuer: w.alice.principal });

  // Bob cannot delegate Alice's closure itself, nor revoke Alice's delegation to him.
  await t.throwsAsync(w.bob.delegate({ token: w.root, to: [w.carol.principal] }), { message: /unknown token/ });
  await learn(t, w.bob, w.alice, dab);
  await t.throwsAsync(w.bob.revoke(dab), { message: `only the delegator (${w.alice.principal}) can revoke this delegation` });
  // Carol, who learnt of it but is not its audience, cannot delegate it.
  await learn(t, w.carol, w.alice, dab);
  await t.throwsAsync(w.carol.delegate({ token: dab, to: [w.carol.principal] }), { message: /is delegated to .*, not to / });
  // Not a policy: a module with no screen export.
  const notPolicy = await w.bob.publish('export const other = () => 1');
  await t.throwsAsync(w.bob.delegate({ token: dab, to: [w.carol.principal], policies: [{ module: notPolicy }] }), { message: /exports no screen function/ });
  const dbc = await w.bob.delegate({ token: dab, to: [w.carol.principal] });
  const chain = (await w.bob.chainBlocks(dbc))!;
  t.is(chain.links.length, 2);
  // The chain every delegate carries names the closure only by its sealed reference, never by its token.
  const rootBytes = CID.parse(w.root).bytes;
  const contains = (bytes: Uint8Array) => bytes.some((_, at) => rootBytes.every((byte, i) => bytes[at + i] === byte));
  t.false(chain.links.some(contains), 'no link holds the original token');
  t.false(Buffer.from(chain.links.flatMap((bytes) => [...bytes])).toString('latin1').includes(w.root));
  t.is((decode(chain.links[1]!) as { inner: CID }).inner.toString(), sealToken(w.root));
  t.false((await journalEntries(w.bob.journal)).some((e) => JSON.stringify(e).includes(w.root)), 'nor does anything Bob\'s node recorded');
});

test('only the audience may call; the closure sees the original caller', async (t) => {
  const w = await world(t);
  const dab = await w.alice.delegate({ token: w.root, to: [w.bob.principal] });
  t.deepEqual(await w.alice.call(dab, ['hi'], { caller: w.bob.principal }), echoed(w.bob.principal, ['hi']));
  refuses(t, await w.alice.call(dab, ['hi'], { caller: w.carol.principal }), 'screened', [dab.slice(0, 12), w.carol.principal]);
  // Not even the issuer calls through a delegation she did not make to herself.
  refuses(t, await w.alice.call(dab, ['hi']), 'screened', [dab.slice(0, 12), w.alice.principal]);
});

test('expiry: refused from exactly `until`', async (t) => {
  const w = await world(t);
  const until = T0 + 1000;
  const dab = await w.alice.delegate({ token: w.root, to: [w.bob.principal], policies: [{ module: 'expiry', settings: { until } }] });
  w.clock.now = until - 1;
  t.is((await w.alice.call(dab, [], { caller: w.bob.principal })).status, 'fulfilled');
  w.clock.now = until;
  refuses(t, await w.alice.call(dab, [], { caller: w.bob.principal }), 'screened', [dab.slice(0, 12), new Date(until).toISOString()]);
  w.clock.now = until + 3_600_000;
  t.is((await w.alice.call(dab, [], { caller: w.bob.principal })).status, 'revoked');
  w.clock.now = until - 60_000;
  t.is((await w.alice.call(dab, [], { caller: w.bob.principal })).status, 'revoked', 'once seen expired, a clock stepping back does not revive it');
});

test('rate: sliding window edges, and a clock stepping back does not reopen it', async (t) => {
  const w = await world(t);
  const dab = await w.alice.delegate({ token: w.root, to: [w.bob.principal], policies: [{ module: 'rate', settings: { rate: { n: 2, periodMs: 1000, per: 'sec' } } }] });
  const limited = (outcome: Outcome, message?: string) => refuses(t, outcome, 'screened', [`${layer(dab)}: rate`], message);
  const at = async (offset: number) => {
    w.clock.now = T0 + offset;
    return w.alice.call(dab, [offset], { caller: w.bob.principal });
  };
  t.is((await at(0)).status, 'fulfilled');
  t.is((await at(400)).status, 'fulfilled');
  limited(await at(999), '2 calls in (−1, 999]');
  t.is((await at(1000)).status, 'fulfilled', 'the call at 0 leaves the window at exactly periodMs');
  limited(await at(1399));
  t.is((await at(1400)).status, 'fulfilled');
  limited(await at(500), 'clock stepped back: calls seen stay counted');
  limited(await at(-5000), 'far back');
  limited(await at(1999), 'and forward again: still the calls at 1000 and 1400');
  t.deepEqual(await at(2000), echoed(w.bob.principal, [2000]));
});

test('quota: exactly `uses` calls; calls refused by the rate do not spend it', async (t) => {
  const w = await world(t);
  const bob = { caller: w.bob.principal };
  const quota = await w.alice.delegate({ token: w.root, to: [w.bob.principal], policies: [{ module: 'rate', settings: { uses: 3 } }] });
  for (let i = 0; i < 3; i += 1) t.is((await w.alice.call(quota, [i], bob)).status, 'fulfilled');
  refuses(t, await w.alice.call(quota, [3], bob), 'screened', [quota.slice(0, 12)]);
  w.clock.now = T0 + 365 * 86_400_000;
  refuses(t, await w.alice.call(quota, [4], bob), 'screened', [quota.slice(0, 12)]);

  w.clock.now = T0;
  const both = await w.alice.delegate({ token: w.root, to: [w.bob.principal], policies: [{ module: 'rate', settings: { rate: { n: 1, periodMs: 1000, per: 'sec' }, uses: 2 } }] });
  t.is((await w.alice.call(both, [], bob)).status, 'fulfilled');
  w.clock.now = T0 + 1;
  refuses(t, await w.alice.call(both, [], bob), 'screened', [both.slice(0, 12)]);
  w.clock.now = T0 + 1000;
  t.is((await w.alice.call(both, [], bob)).status, 'fulfilled', 'the rate-refused call did not spend the quota');
  w.clock.now = T0 + 5000;
  refuses(t, await w.alice.call(both, [], bob), 'screened', [both.slice(0, 12)]);
});

test('pattern: arguments must match', async (t) => {
  const w = await world(t);
  const pattern = [{ $type: 'string', $maxLength: 3 }, { $min: 0, $max: 100 }, { $oneOf: ['a', { k: { $type: 'integer' } }] }];
  const dab = await w.alice.delegate({ token: w.root, to: [w.bob.principal], policies: [{ module: 'pattern', settings: { args: pattern } }] });
  const call = (args: unknown[]) => w.alice.call(dab, args, { caller: w.bob.principal });
  t.deepEqual(await call(['abc', 100, 'a']), echoed(w.bob.principal, ['abc', 100, 'a']));
  t.deepEqual(await call(['abc', 0, { k: 7 }]), echoed(w.bob.principal, ['abc', 0, { k: 7 }]));
  const cases: Array<[unknown[], string]> = [
    [['abc', 101, 'a'], 'arguments[1] is above 100'],
    [['abc', -1, 'a'], 'arguments[1] is below 0'],
    [['abcd', 1, 'a'], 'arguments[0] is longer than 3'],
    [[1, 1, 'a'], 'arguments[0] is not a string'],
    [['abc', 1, { k: 1.5 }], 'arguments[2] matches none of its choices'],
    [['abc', 1, { k: 1, extra: 2 }], 'arguments[2] matches none of its choices'],
    [['abc', 1], 'arguments is not a list of 3'],
  ];
  for (const [args, why] of cases) refuses(t, await call(args), 'screened', [`${layer(dab)}: argument pattern`, why], JSON.stringify(args));
});

test('nested delegation narrows: Carol is held to Bob\'s rate, audited per layer', async (t) => {
  const w = await world(t);
  const dab = await w.alice.delegate({
    token: w.root,
    to: [w.bob.principal],
    policies: [{ module: 'audit' }, { module: 'rate', settings: { rate: { n: 1, periodMs: 60_000, per: 'min' } } }],
  });
  await learn(t, w.bob, w.alice, dab);
  const dbc = await w.bob.delegate({
    token: dab,
    to: [w.carol.principal],
    policies: [{ module: 'rate', settings: { rate: { n: 100, periodMs: 60_000, per: 'min' } } }, { module: 'audit' }],
  });
  t.deepEqual(await through(w, dbc, ['one'], w.carol.principal, w.bob), echoed(w.carol.principal, ['one']));
  const call = (await journalEntries(w.alice.journal)).find((e) => e.kind === 'call' && e.token === dbc)!;
  t.deepEqual((await screened(w.alice)).map(({ call, token, caller }) => ({ call, token, caller })), [
    { call: call.seq, token: dbc, caller: w.carol.principal },
    { call: call.seq, token: dab, caller: w.bob.principal },
  ]);
  const limited = (outcome: Outcome, message?: string) => refuses(t, outcome, 'screened', [`${layer(dab)}: rate`], message);
  limited(await through(w, dbc, ['two'], w.carol.principal, w.bob), 'Carol\'s own layer allows 100/min; Bob\'s allows 1');
  limited(await w.alice.call(dab, ['three'], { caller: w.bob.principal }), 'what Carol does through Bob counts against Bob');
  refuses(t, await w.alice.call(dbc, ['four'], { caller: w.bob.principal }), 'screened', [dbc.slice(0, 12), w.bob.principal]);
  t.is((await screened(w.alice)).length, 2, 'refused calls are not audited as screened');
  w.clock.now = T0 + 60_000;
  t.deepEqual(await through(w, dbc, ['five'], w.carol.principal, w.bob), echoed(w.carol.principal, ['five']));
});

test('revoking Bob\'s layer stops Bob and Carol-through-Bob, not Alice or a sibling', async (t) => {
  const w = await world(t);
  const dave = generateIdentity(random).principal;
  const dab = await w.alice.delegate({ token: w.root, to: [w.bob.principal] });
  const dad = await w.alice.delegate({ token: w.root, to: [dave] });
  await learn(t, w.bob, w.alice, dab);
  const dbc = await w.bob.delegate({ token: dab, to: [w.carol.principal] });
  t.is((await through(w, dbc, [1], w.carol.principal, w.bob)).status, 'fulfilled');
  await w.alice.revoke(dab, 'Bob left');
  refuses(t, await w.alice.call(dab, [2], { caller: w.bob.principal }), 'token-revoked', ['Bob left']);
  refuses(t, await through(w, dbc, [3], w.carol.principal, w.bob), 'token-revoked', [dab.slice(0, 12), 'Bob left']);
  t.deepEqual(await w.alice.call(w.root, [4]), echoed(w.alice.principal, [4]));
  t.deepEqual(await w.alice.call(dad, [5], { caller: dave }), echoed(dave, [5]));
});

test('bad chains are refused, naming the bad link', async (t) => {
  const w = await world(t);
  const mallory = generateIdentity(random);
  const dave = generateIdentity(random).principal;
  const dab = await w.alice.delegate({ token: w.root, to: [w.bob.principal] });
  const dab2 = await w.alice.delegate({ token: w.root, to: [w.bob.principal] });
  await learn(t, w.bob, w.alice, dab);
  const dbc = await w.bob.delegate({ token: dab, to: [w.carol.principal] });
  await learn(t, w.carol, w.bob, dbc);
  const dcd = await w.carol.delegate({ token: dbc, to: [dave] });
  const [dcdBytes, dbcBytes, dabBytes] = (await w.carol.chainBlocks(dcd))!.links as [Uint8Array, Uint8Array, Uint8Array];
  const { links: [dab2Bytes] } = (await w.alice.chainBlocks(dab2))!;
  const send = (token: Token, caller: Principal, links: Uint8Array[]) => w.alice.call(token, ['x'], { caller, chain: { links, modules: [] } });
  const carol = w.carol.principal;

  // Forged: Bob's record with its signature altered; Mallory's own record re-labelled as Bob's.
  const flipped = reencode(dbcBytes, (r) => {
    const sig = Uint8Array.from(r.sig as Uint8Array);
    sig[0] = sig[0]! ^ 1;
    r.sig = sig;
  });
  refuses(t, await send(dbc, carol, [flipped.bytes, dabBytes]), 'invalid', [flipped.token, w.bob.principal]);
  refuses(t, await send(flipped.token, carol, [flipped.bytes, dabBytes]), 'invalid', [flipped.token, w.bob.principal]);
  const posing = reencode((await makeDelegation({ inner: dab, audience: [carol] }, mallory, random(16))).bytes, (r) => (r.delegator = w.bob.principal));
  refuses(t, await send(posing.token, carol, [posing.bytes, dabBytes]), 'invalid', [posing.token, w.bob.principal]);
  // Tampered: one byte of Alice's record (inside its nonce) changed.
  const nonce = (decode(dabBytes) as { nonce: Uint8Array }).nonce;
  const at = Buffer.from(dabBytes).indexOf(Buffer.from(nonce));
  t.true(at > 0);
  const tampered = new Uint8Array(dabBytes);
  tampered[at] = tampered[at]! ^ 0xff;
  const tamperedToken = blockCid(tampered, DAG_CBOR_CODEC).toString();
  refuses(t, await send(dbc, carol, [dbcBytes, tampered]), 'invalid', [tamperedToken, w.alice.principal]);
  t.regex(reasonOf(await send(dbc, carol, [dbcBytes.subarray(0, -1), dabBytes])), /^delegation bafy\w+ is not valid: /);
  // Re-ordered.
  refuses(t, await send(dbc, carol, [dabBytes, dbcBytes]), 'invalid', [dab]);
  refuses(t, await send(dcd, dave, [dcdBytes, dabBytes, dbcBytes]), 'invalid', [dcd, dbc, dab]);
  refuses(t, await send(dcd, dave, []), 'invalid', []);
  // Spliced: a link of another chain in place of the one Bob's record wraps.
  refuses(t, await send(dbc, carol, [dbcBytes, dab2Bytes!]), 'invalid', [dbc, dab, dab2]);
  // Replayed: a valid chain presented by someone it was not delegated to.
  refuses(t, await send(dab, mallory.principal, [dabBytes]), 'screened', [dab.slice(0, 12), mallory.principal]);
  refuses(t, await send(dbc, mallory.principal, [dbcBytes, dabBytes]), 'screened', [dbc.slice(0, 12), mallory.principal]);
  // Mallory, validly signing for herself, wraps a link not delegated to her…
  const wraps = (await makeDelegation({ inner: dab, audience: [mallory.principal] }, mallory, random(16))).bytes;
  const wrapsToken = blockCid(wraps, DAG_CBOR_CODEC).toString();
  refuses(t, await send(wrapsToken as Token, mallory.principal, [wraps, dabBytes]), 'invalid', [wrapsToken.slice(0, 12), mallory.principal]);
  // …or the closure itself, which is not hers.
  const direct = (await makeDelegation({ inner: sealToken(w.root), audience: [mallory.principal] }, mallory, random(16))).bytes;
  const directToken = blockCid(direct, DAG_CBOR_CODEC).toString();
  refuses(t, await send(directToken as Token, mallory.principal, [direct]), 'invalid', [directToken.slice(0, 12), mallory.principal, w.alice.principal]);
  // A link naming the closure's token itself (not its sealed reference) leads nowhere.
  const unsealed = (await makeDelegation({ inner: w.root, audience: [mallory.principal] }, w.ids.alice, random(16))).bytes;
  refuses(t, await send(blockCid(unsealed, DAG_CBOR_CODEC).toString() as Token, mallory.principal, [unsealed]), 'unknown-token', []);
  // The real three-link chain still works, for Dave.
  t.deepEqual(await send(dcd, dave, [dcdBytes, dbcBytes, dabBytes]), echoed(dave, ['x']));
});

test('hearRevocation: believed from the delegator, refused from anyone else', async (t) => {
  const w = await world(t);
  const mallory = generateIdentity(random);
  const dab = await bobsLayer(t, w);
  const dbc = await w.bob.delegate({ token: dab, to: [w.carol.principal] });
  t.is((await through(w, dbc, [1], w.carol.principal, w.bob)).status, 'fulfilled');
  const notices: RevocationNotice[] = [];
  w.bob.onRevocation((notice) => void notices.push(notice));
  await w.bob.revoke(dbc, 'Carol left');
  const [notice] = notices;
  t.like(notice, { token: dbc, reason: 'Carol left', by: w.bob.principal });

  await t.throwsAsync(w.alice.hearRevocation(await signRevocation(dbc, 'x', mallory), mallory.principal), { message: `revocation of ${dbc}: ${mallory.principal} is not its delegator` });
  // Not even the closure's issuer revokes what Bob delegated (she revokes her own layer instead).
  await t.throwsAsync(w.alice.hearRevocation(await signRevocation(dbc, 'x', w.ids.alice), w.alice.principal), { message: `revocation of ${dbc}: ${w.alice.principal} is not its delegator` });
  await t.throwsAsync(w.alice.hearRevocation({ ...notice!, reason: 'other' }, w.bob.principal), { message: /the signature does not prove/ });
  t.is((await through(w, dbc, [2], w.carol.principal, w.bob)).status, 'fulfilled', 'nothing unbelievable was applied');

  t.true(await w.alice.hearRevocation(notice!, w.bob.principal));
  t.false(await w.alice.hearRevocation(notice!, w.bob.principal), 'no news the second time');
  refuses(t, await through(w, dbc, [3], w.carol.principal, w.bob), 'token-revoked', ['Carol left']);
  t.deepEqual(await w.alice.call(dab, [4], { caller: w.bob.principal }), echoed(w.bob.principal, [4]), 'Bob\'s own layer still works');
  t.like((await journalEntries(w.alice.journal)).find((e) => e.kind === 'revocation'), { token: dbc, by: w.bob.principal, from: w.bob.principal });
});

test('hearRevocation of a delegation not seen yet: applied when it turns up, if its delegator signed it', async (t) => {
  const w = await world(t);
  const mallory = generateIdentity(random);
  const dab = await bobsLayer(t, w);
  const revokedFirst = await w.bob.delegate({ token: dab, to: [w.carol.principal] });
  const forgedOnly = await w.bob.delegate({ token: dab, to: [w.carol.principal] });
  t.false(await w.alice.hearRevocation(await signRevocation(revokedFirst, 'gone', w.ids.bob), w.bob.principal), 'kept until the delegation is seen');
  t.false(await w.alice.hearRevocation(await signRevocation(forgedOnly, 'gone', mallory), mallory.principal));
  refuses(t, await through(w, revokedFirst, [1], w.carol.principal, w.bob), 'token-revoked', ['gone']);
  t.deepEqual(await through(w, forgedOnly, [2], w.carol.principal, w.bob), echoed(w.carol.principal, [2]), 'Mallory cannot revoke Bob\'s delegation');
});

// Notices for a delegation not seen yet are kept per signer: a later one by anyone else cannot push out the delegator's.
test('hearRevocation: a bogus notice heard later does not cancel the delegator\'s unseen one', async (t) => {
  const w = await world(t);
  const mallory = generateIdentity(random);
  const dab = await bobsLayer(t, w);
  const dbc = await w.bob.delegate({ token: dab, to: [w.carol.principal] });
  await w.alice.hearRevocation(await signRevocation(dbc, 'gone', w.ids.bob), w.bob.principal);
  await w.alice.hearRevocation(await signRevocation(dbc, 'never mind', mallory), mallory.principal);
  refuses(t, await through(w, dbc, [1], w.carol.principal, w.bob), 'token-revoked', ['gone']);
});

test('k-of-n approval: k distinct listed approvers; only the caller collects', async (t) => {
  const w = await world(t, { callTimeoutMs: 500 });
  const [x, y, z, m] = [0, 1, 2, 3].map(() => generateIdentity(random).principal) as [Principal, Principal, Principal, Principal];
  // uses: 1 — the call that waited must not be screened by the rate policy a second time when it resumes.
  const dab = await w.alice.delegate({
    token: w.root,
    to: [w.bob.principal],
    policies: [{ module: 'rate', settings: { uses: 1 } }, { module: 'approval', settings: { k: 2, of: [x, y, z] } }],
  });
  const first = await w.alice.call(dab, ['pay'], { caller: w.bob.principal });
  if (first.status !== 'promised') return t.fail(`expected a further promise, got ${JSON.stringify(first)}`);
  const pending = first.token;
  const approve = (by: Principal) => w.alice.call(pending, ['approve'], { caller: by });
  const approval = (approvedBy: Principal[], status: string): Outcome => ({ status: 'fulfilled', value: { approvedBy, status } } as Outcome);

  refuses(t, await w.alice.call(pending, [], { caller: w.carol.principal }), 'denied', [w.bob.principal]);
  t.deepEqual(await approve(x), approval([x], 'waiting'));
  t.deepEqual(await approve(x), approval([x], 'waiting'), 'a second approval by the same principal does not count');
  refuses(t, await approve(m), 'denied', [m], 'an approver not listed does not count');
  t.deepEqual(await approve(x), approval([x], 'waiting'), 'nor is it listed');
  const started = Date.now();
  t.deepEqual(await w.alice.call(pending, [], { caller: w.bob.principal }), { status: 'promised', token: pending }, 'still waiting: the same promise');
  t.true(Date.now() - started >= 400, 'collecting waits up to the call limit');
  t.deepEqual(await approve(y), approval([x, y], 'fulfilled'));
  t.deepEqual(await w.alice.call(pending, [], { caller: w.bob.principal }), echoed(w.bob.principal, ['pay']));
  refuses(t, await w.alice.call(pending, [], { caller: w.carol.principal }), 'denied', [w.bob.principal]);
  t.deepEqual(await approve(z), approval([x, y], 'fulfilled'), 'approvals after it proceeded change nothing');
  refuses(t, await w.alice.call(dab, ['again'], { caller: w.bob.principal }), 'screened', [dab.slice(0, 12)]);
});

test('an approver sees what waits for it; a caller following with waitMs waits for the approvals, or gets the promise back', async (t) => {
  const w = await world(t, { callTimeoutMs: 300 });
  const [x, y, z] = [0, 1, 2].map(() => generateIdentity(random).principal) as [Principal, Principal, Principal];
  const dab = await w.alice.delegate({ token: w.root, to: [w.bob.principal], policies: [{ module: 'approval', settings: { k: 2, of: [x, y, z] } }] });
  const bob = { caller: w.bob.principal };
  // Nobody approves: following for 1 s (over three call limits) ends with the further promise itself.
  const given = await w.alice.call(dab, ['late'], { ...bob, follow: true, waitMs: 1000 });
  if (given.status !== 'promised') return t.fail(JSON.stringify(given));
  t.deepEqual(w.alice.pendingFor(x).map((v) => [v.token, v.caller, v.args, v.approvers, v.approvedBy, v.yours]), [[given.token, w.bob.principal, ['late'], [x, y, z], [], 'approve']]);
  t.regex(w.alice.pendingFor(x)[0]!.reason, /waiting for 2 of 3 approvals \(0 so far\)/);
  t.deepEqual(w.alice.pendingFor(w.bob.principal).map((v) => v.yours), ['collect']);
  t.deepEqual(w.alice.pendingFor(w.carol.principal), [], 'nothing waits for anyone else');
  await w.alice.call(given.token, ['approve'], { caller: x });
  t.deepEqual(w.alice.pendingFor(x), [], 'once approved, it no longer waits for that approver');
  t.deepEqual(w.alice.pendingFor(y).map((v) => v.approvedBy), [[x]]);
  // Following a second call: it waits across call limits until the approvals come.
  const following = w.alice.call(dab, ['on time'], { ...bob, follow: true, waitMs: 30_000 });
  let second: Token | undefined;
  while (!second) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    second = w.alice.pendingFor(y).find((v) => v.args[0] === 'on time')?.token;
  }
  await new Promise((resolve) => setTimeout(resolve, 700));
  await w.alice.call(second, ['approve'], { caller: y });
  await w.alice.call(second, ['approve'], { caller: z });
  t.deepEqual(await following, echoed(w.bob.principal, ['on time']));
});

test('untilSettled does not ask a node that answers "still waiting" at once in a tight loop', async (t) => {
  let asked = 0;
  const promise = { status: 'promised', token: 'bafyreig' } as unknown as Outcome;
  const setTimer = (ms: number, callback: () => void) => {
    const timer = setTimeout(callback, ms);
    return () => clearTimeout(timer);
  };
  const outcome = await untilSettled(promise, async () => (asked += 1, promise), 1000, setTimer, Date.now);
  t.is(outcome, promise, 'still pending when the wait is over');
  t.true(asked >= 2 && asked <= 6, `asked ${asked} times in 1 s (at most one every 250 ms)`);
});

test('a waiting call whose delegation is revoked ends revoked', async (t) => {
  const w = await world(t);
  const x = generateIdentity(random).principal;
  const dab = await w.alice.delegate({ token: w.root, to: [w.bob.principal], policies: [{ module: 'approval', settings: { k: 1, of: [x] } }] });
  const first = await w.alice.call(dab, [], { caller: w.bob.principal });
  if (first.status !== 'promised') return t.fail(JSON.stringify(first));
  await w.alice.revoke(dab, 'changed my mind');
  refuses(t, await w.alice.call(first.token, [], { caller: w.bob.principal }), 'token-revoked', [short(dab), 'changed my mind'], 'the caller learns at once, without waiting for an approval');
  t.like(await w.alice.call(first.token, ['approve'], { caller: x }), { status: 'fulfilled', value: { approvedBy: [], status: 'revoked' } });
});

test('approval in Bob\'s layer holds Carol\'s call; resuming does not screen earlier policies again', async (t) => {
  const w = await world(t);
  const x = generateIdentity(random).principal;
  const dab = await w.alice.delegate({ token: w.root, to: [w.bob.principal], policies: [{ module: 'approval', settings: { k: 1, of: [x] } }] });
  await learn(t, w.bob, w.alice, dab);
  const dbc = await w.bob.delegate({ token: dab, to: [w.carol.principal], policies: [{ module: 'rate', settings: { uses: 1 } }] });
  const first = await through(w, dbc, ['q'], w.carol.principal, w.bob);
  if (first.status !== 'promised') return t.fail(JSON.stringify(first));
  refuses(t, await w.alice.call(first.token, [], { caller: w.bob.principal }), 'denied', [w.carol.principal]);
  t.like(await w.alice.call(first.token, ['approve'], { caller: x }), { value: { status: 'fulfilled' } });
  t.deepEqual(await w.alice.call(first.token, [], { caller: w.carol.principal }), echoed(w.carol.principal, ['q']));
  refuses(t, await through(w, dbc, ['r'], w.carol.principal, w.bob), 'screened', [dbc.slice(0, 12)]);
});

// The limit of 10,000 counts calls waiting at once; answered ones (kept an hour for collection) do not count.
test('calls that waited and were answered no longer count against the pending limit', async (t) => {
  // One caller fills the node's limit here, so its own per-caller limit is raised to it (tested below).
  const w = await world(t, { maxWaitingPerCaller: 10_000 });
  const bob = { caller: w.bob.principal };
  const dab = await w.alice.delegate({ token: w.root, to: [w.bob.principal], policies: [{ module: 'approval', settings: { k: 1, of: [w.bob.principal] } }] });
  const first = await w.alice.call(dab, [0], bob);
  if (first.status !== 'promised') return t.fail(JSON.stringify(first));
  await w.alice.call(first.token, ['approve'], bob);
  t.deepEqual(await w.alice.call(first.token, [], bob), echoed(w.bob.principal, [0]));
  // 9,999 calls wait now, below the limit of 10,000: one more may still wait.
  let waiting = 0;
  for (let i = 1; i < 10_000; i += 1) if ((await w.alice.call(dab, [i], bob)).status === 'promised') waiting += 1;
  t.is(waiting, 9_999);
  t.is((await w.alice.call(dab, ['one more'], bob)).status, 'promised');
});

test('one caller cannot fill the node\'s waiting calls for everyone: a limit per caller', async (t) => {
  const w = await world(t, { maxWaitingPerCaller: 3 });
  const dab = await w.alice.delegate({ token: w.root, to: [w.bob.principal, w.carol.principal], policies: [{ module: 'approval', settings: { k: 1, of: [w.alice.principal] } }] });
  const bob = { caller: w.bob.principal };
  const waiting: Token[] = [];
  for (let i = 0; i < 3; i += 1) {
    const outcome = await w.alice.call(dab, [i], bob);
    if (outcome.status !== 'promised') return t.fail(JSON.stringify(outcome));
    waiting.push(outcome.token);
  }
  refuses(t, await w.alice.call(dab, [3], bob), 'quota', [w.bob.principal]);
  t.is((await w.alice.call(dab, ['carol'], { caller: w.carol.principal })).status, 'promised', 'another caller still may');
  await w.alice.call(waiting[0]!, ['approve']);
  t.is((await w.alice.call(dab, [4], bob)).status, 'promised', 'once one of Bob\'s calls has gone ahead, he may have another wait');
});

const COUNTER_POLICY = `export const screen = (ctx, { args, state }) => {
  const seen = (state ?? 0) + 1;
  if (args[0] === 'cached') return { answer: { from: 'policy', caller: ctx.caller, seen, limit: ctx.env.limit }, state: seen };
  if (seen > ctx.env.limit) return { refuse: 'only ' + ctx.env.limit + ' calls', state: seen };
  return { forward: true, state: seen };
};`;

test('a user policy travels with the chain and runs in a vat on the answering node', async (t) => {
  const w = await world(t);
  const dab = await bobsLayer(t, w);
  const policy = await w.bob.publish(COUNTER_POLICY);
  const dbc = await w.bob.delegate({ token: dab, to: [w.carol.principal], policies: [{ module: policy, settings: { limit: 2 } }] });
  t.is((await w.bob.chainBlocks(dbc))!.modules.length, 1, 'Bob\'s policy module goes along');
  const carol = w.carol.principal;
  t.deepEqual(await through(w, dbc, ['cached'], carol, w.bob), { status: 'fulfilled', value: { from: 'policy', caller: carol, seen: 1, limit: 2 } } as Outcome);
  t.false((await journalEntries(w.alice.journal)).some((e) => e.kind === 'call' && e.token === w.root), 'answered in the closure\'s place');
  t.deepEqual(await through(w, dbc, ['x'], carol, w.bob), echoed(carol, ['x']));
  refuses(t, await through(w, dbc, ['y'], carol, w.bob), 'screened', [dbc.slice(0, 12)]);
});

const MALFORMED: Array<[string, RegExp]> = [
  ['export const screen = () => 42', /failed: a verdict is a record \(got 42\)$/],
  ['export const screen = () => ({})', /failed: a verdict has exactly one of forward, refuse, answer, wait$/],
  ['export const screen = () => ({ forward: true, refuse: "both" })', /failed: a verdict has exactly one of forward, refuse, answer, wait$/],
  ['export const screen = () => ({ forward: 1 })', /failed: forward, when given, is true$/],
  ['export const screen = () => ({ refuse: 7 })', /failed: refuse gives a reason as a string$/],
  ['export const screen = () => ({ wait: null })', /failed: wait gives a reason as a string$/],
  ['export const screen = () => { throw new Error("boom"); }', /failed: .*boom/],
];

test('policies that return malformed verdicts, throw, or never return are refused; the node keeps serving', async (t) => {
  const w = await world(t, { callTimeoutMs: 500 });
  const bob = { caller: w.bob.principal };
  for (const [source, reason] of MALFORMED) {
    const module = await w.alice.publish(source);
    const d = await w.alice.delegate({ token: w.root, to: [w.bob.principal], policies: [{ module }] });
    const outcome = await w.alice.call(d, [], bob);
    t.regex(reasonOf(outcome), new RegExp(`^${layer(d)}: policy ${module.slice(0, 12)}… failed: `), source);
    t.regex(reasonOf(outcome), reason, source);
  }
  // A shipped policy given settings it cannot use refuses too, rather than letting the call through.
  const misconfigured = await w.alice.delegate({ token: w.root, to: [w.bob.principal], policies: [{ module: 'expiry', settings: null }] });
  t.regex(reasonOf(await w.alice.call(misconfigured, [], bob)), /failed: /);

  const loop = await w.alice.publish('export const screen = () => { for (;;) {} }');
  const looping = await w.alice.delegate({ token: w.root, to: [w.bob.principal], policies: [{ module: loop }] });
  const started = Date.now();
  refuses(t, await w.alice.call(looping, [], bob), 'screened', [looping.slice(0, 12), loop.slice(0, 12)]);
  t.true(Date.now() - started < 3000, 'stopped at the node\'s call limit');
  t.deepEqual(await w.alice.call(w.root, ['still here']), echoed(w.alice.principal, ['still here']));
  const counter = await w.alice.publish(COUNTER_POLICY);
  const fine = await w.alice.delegate({ token: w.root, to: [w.bob.principal], policies: [{ module: counter, settings: { limit: 5 } }] });
  t.deepEqual(await w.alice.call(fine, ['ok'], bob), echoed(w.bob.principal, ['ok']), 'user policies still run in a fresh vat');
});
