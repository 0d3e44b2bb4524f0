/**
 * Journal records one node shows another principal (journal/disclosure.ts):
 * what is shown and withheld, and how a receiver checks what it was shown —
 * tampered bytes, a record the node re-signed, another node's signature,
 * records re-ordered — each flagged with its reason, never merged.
 */
import '../src/perimeter/lockdown.js';
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { openKernel, type Kernel, type Token } from '../src/index.js';
import { generateIdentity, type Identity } from '../src/identity/index.js';
import { disclose, disclosureFrom, disclosureValue, verifyDisclosure, type Disclosure } from '../src/journal/disclosure.js';
import { acrossTree, renderTree } from '../src/journal/queries.js';
import { readRecord, recordCid } from '../src/journal/journal.js';
import { concatBytes } from '../src/identity/identity.js';
import { decode, encode } from '../src/wire/index.js';
import { CID } from 'multiformats/cid';
import { journalEntries } from './_helpers.js';

const random = (n: number) => new Uint8Array(randomBytes(n));
const ADD = 'export const add = (ctx, a, b) => a + b; export const keep = (ctx, x) => x;';

interface World {
  alice: Kernel;
  ids: { alice: Identity; bob: Identity; carol: Identity; mallory: Identity };
  add: Token;
  keep: Token;
}

/** Alice's node holds `add` and `keep`; Bob and Carol have called them, Carol once passing another token along. */
const world = async (t: ExecutionContext): Promise<World> => {
  const ids = { alice: generateIdentity(random), bob: generateIdentity(random), carol: generateIdentity(random), mallory: generateIdentity(random) };
  const alice = await openKernel({ memory: true, identity: ids.alice, limits: { vats: 1 } });
  t.teardown(() => alice.close());
  const code = await alice.publish(ADD);
  const add = await alice.issue({ code, export: 'add' });
  const keep = await alice.issue({ code, export: 'keep' });
  await alice.call(add, [1, 2], { caller: ids.bob.principal });
  await alice.flush(); // a seal now follows Bob's call's outcome
  await alice.call(add, [2, 3], { caller: ids.carol.principal });
  await alice.call(add, [1, 2], { caller: ids.carol.principal }); // a cache hit
  // Carol hands `keep` to `add`'s call as an argument: Bob holds `add`, not `keep`.
  await alice.call(add, [{ '/': keep }, 1], { caller: ids.carol.principal });
  return { alice, ids, add, keep };
};

const ask = (w: World, token: Token, who: Identity) => w.alice.disclose(token, who.principal);
const check = (w: World, d: Disclosure, token: Token, who: Identity) => verifyDisclosure(d, { node: w.alice.principal, token, requester: who.principal });
const containsBytes = (haystack: Uint8Array, needle: Uint8Array) => Buffer.from(haystack).includes(Buffer.from(needle));
/** The node re-signs a disclosure it changed (what a lying node could do). */
const resign = async (d: Disclosure, signer: Identity, change: Partial<Disclosure>): Promise<Disclosure> => {
  const next = { ...d, ...change };
  const statement = concatBytes(new TextEncoder().encode('promisegrid:journal-disclosure:v1\n'), encode([CID.parse(next.token), next.requester, next.node, next.at, [...next.cids]]));
  return { ...next, signature: await signer.sign(statement) };
};

test('a holder sees the records about its token, and not another token someone passed along', async (t) => {
  const w = await world(t);
  const d = await ask(w, w.add, w.ids.bob);
  const { entries, flagged } = check(w, d, w.add, w.ids.bob);
  t.deepEqual(flagged, []);
  const kinds = entries.map((e) => e.kind);
  t.deepEqual(kinds, ['issue', 'call', 'fulfilled', 'call', 'fulfilled', 'hit']);
  t.true(d.records.some((bytes) => readRecord(bytes).entry.kind === 'seal'), "the journal's seals next to them go along");
  t.deepEqual(entries.filter((e) => e.kind === 'call').map((e) => (e as { caller: string }).caller), [w.ids.bob.principal, w.ids.carol.principal]);
  for (const bytes of d.records) t.false(containsBytes(bytes, CID.parse(w.keep).bytes), 'no record shown to Bob names keep');
  // Carol's own call with `keep` is shown to Carol: she sent it.
  const forCarol = check(w, await ask(w, w.add, w.ids.carol), w.add, w.ids.carol);
  t.is(forCarol.entries.filter((e) => e.kind === 'call').length, 3);
});

test('the records are the journal\'s own bytes, linked, and survive the trip as grid data', async (t) => {
  const w = await world(t);
  const d = disclosureFrom(disclosureValue(await ask(w, w.add, w.ids.bob)));
  const journal = (await journalEntries(w.alice.journal));
  d.records.forEach((bytes, i) => {
    const { entry } = readRecord(bytes);
    t.deepEqual(JSON.parse(JSON.stringify(entry)), JSON.parse(JSON.stringify(journal[entry.seq])));
    t.deepEqual(recordCid(bytes), d.cids[i]);
  });
  t.deepEqual(check(w, d, w.add, w.ids.bob).flagged, []);
});

test('a tampered record is flagged and not merged; the others still verify', async (t) => {
  const w = await world(t);
  const d = await ask(w, w.add, w.ids.bob);
  const records = d.records.map((bytes) => bytes.slice());
  const target = d.records.findIndex((bytes) => readRecord(bytes).entry.kind === 'call'); // Bob's call
  const seq = readRecord(d.records[target]!).entry.seq;
  records[target]![records[target]!.length - 2]! ^= 1;
  const before = check(w, d, w.add, w.ids.bob).entries;
  const { entries, flagged } = check(w, { ...d, records }, w.add, w.ids.bob);
  t.is(flagged[0]!.index, target);
  t.regex(flagged[0]!.reason, /do not hash to the CID the node signed/);
  // Its outcome cannot be placed without it: flagged too, with that reason; nothing else is.
  t.deepEqual(flagged.slice(1).map((f) => f.reason), [`its call #${seq} is not among the verified records`]);
  t.is(entries.length, before.length - 2);
  t.false(entries.some((e) => e.seq === seq));
  const tree = renderTree(acrossTree(w.add, { label: 'add', children: [] }, [{ url: 'ws://alice', verified: { node: w.alice.principal, entries, flagged } }]));
  t.regex(tree, new RegExp(`✗ record at position ${target} fails verification, not merged: its bytes do not hash`));
});

test('a record the node itself rewrote breaks the hash link of the record after it', async (t) => {
  const w = await world(t);
  const d = await ask(w, w.add, w.ids.bob);
  // Bob's call is followed by its outcome (or a seal): rewrite the call (same prev), re-sign everything.
  const callIndex = d.records.findIndex((bytes) => readRecord(bytes).entry.kind === 'call');
  const record = decode(d.records[callIndex]!) as unknown[];
  record[2] = (record[2] as number) + 1; // its time
  const forged = encode(record);
  const records = d.records.map((bytes, i) => (i === callIndex ? forged : bytes));
  const cids = records.map(recordCid);
  const { flagged } = check(w, await resign(d, w.ids.alice, { records, cids }), w.add, w.ids.bob);
  t.is(flagged[0]!.index, callIndex + 1);
  t.regex(flagged[0]!.reason, /does not link to record \d+ before it/);
});

test('another node\'s signature, another requester, or re-ordered records are flagged', async (t) => {
  const w = await world(t);
  const d = await ask(w, w.add, w.ids.bob);
  const all = (flagged: readonly { reason: string }[]) => flagged.length === d.records.length;
  const mallorySigned = await resign(d, w.ids.mallory, {});
  t.true(all(check(w, mallorySigned, w.add, w.ids.bob).flagged));
  t.regex(check(w, mallorySigned, w.add, w.ids.bob).flagged[0]!.reason, /signature does not verify/);
  t.regex(check(w, d, w.add, w.ids.carol).flagged[0]!.reason, /another token or principal/);
  const swapped = await resign(d, w.ids.alice, { records: [d.records[1]!, d.records[0]!, ...d.records.slice(2)], cids: [d.cids[1]!, d.cids[0]!, ...d.cids.slice(2)] });
  const { flagged } = check(w, swapped, w.add, w.ids.bob);
  t.true(flagged.some((f) => /out of order/.test(f.reason)));
  t.true(check(w, { ...d, cids: d.cids.slice(1) }, w.add, w.ids.bob).flagged.every((f) => /do not match in number/.test(f.reason)));
});

test('a delegation\'s records go to its audience only, and never name the token it wraps', async (t) => {
  const w = await world(t);
  const delegated = await w.alice.delegate({ token: w.add, to: [w.ids.bob.principal] });
  t.deepEqual(await w.alice.call(delegated, [20, 22], { caller: w.ids.bob.principal }), { status: 'fulfilled', value: 42 });
  await t.throwsAsync(ask(w, delegated, w.ids.mallory), { message: /only the audience of delegation/ });
  const d = await ask(w, delegated, w.ids.bob);
  const { entries, flagged } = check(w, d, delegated, w.ids.bob);
  t.deepEqual(flagged, []);
  t.true(entries.length > 0);
  for (const bytes of d.records) t.false(containsBytes(bytes, CID.parse(w.add).bytes), 'the original closure\'s token is withheld');
});

test('malformed disclosures are refused in one line', (t) => {
  t.throws(() => disclosureFrom({ records: 'nope' }), { message: /a disclosure is \{ node, token, requester, at, records, cids, signature \}/ });
  t.throws(() => disclosureFrom(null), { message: /a disclosure is/ });
});

test('a disclosure cut to size keeps the latest records, and no outcome without its call', async (t) => {
  const w = await world(t);
  for (let i = 0; i < 20; i++) await w.alice.call(w.add, [i, 100], { caller: w.ids.bob.principal });
  const whole = await ask(w, w.add, w.ids.bob);
  const total = whole.records.reduce((n, bytes) => n + bytes.length, 0);
  const cut = await disclose(w.alice.journal, w.ids.alice, w.add, w.ids.bob.principal, Date.now(), Math.floor(total / 3));
  t.true(cut.records.length > 0 && cut.records.length < whole.records.length);
  t.true(cut.records.reduce((n, bytes) => n + bytes.length, 0) <= total / 3);
  const { entries, flagged } = check(w, cut, w.add, w.ids.bob);
  t.deepEqual(flagged, [], 'nothing in it looks withheld or broken');
  const lastRecord = (d: Disclosure) => d.records.map((bytes) => readRecord(bytes).entry).filter((e) => e.kind !== 'seal').at(-1)!.seq;
  t.is(lastRecord(cut), lastRecord(whole), 'the latest records are the ones kept');
  t.is(entries[0]!.kind, 'call');
});
