/**
 * Applying a change without encoding again what is already encoded: the
 * reducer is sent the state's block as it is, the value's block is the
 * vat's bytes, and the answer's bytes are made from the value's. Each must
 * be exactly what encoding would give; and CID texts made in one piece
 * exactly multiformats' own.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { openKernel } from '../src/index.js';
import { encodeValue, MAX_VALUE_ITEMS, type GridValue } from '../src/closures/values.js';
import { encodedPayload, type Entry } from '../src/journal/journal.js';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import { blockCid, blockName, cidText } from '../src/store/hashing.js';

const REDUCER = `
export const update = (ctx, state, change) => {
  if (change?.grow) return { ...state, items: [...state.items, ...Array.from({ length: change.grow }, (_, i) => i)] };
  return { ...state, n: state.n + change.add, at: 0.5, link: state.link, text: 'é' };
};`;

test('an apply answers with the canonical bytes of { version, value }, and the state it starts from is the value it left', async (t) => {
  const kernel = await openKernel({ memory: true });
  t.teardown(() => kernel.close());
  const reducer = await kernel.issue({ code: await kernel.publish(REDUCER), export: 'update' });
  const doc = await kernel.docs.create({ reducer, init: { n: 0, items: [], link: { '/': reducer } } });
  for (let i = 1; i <= 3; i++) {
    const journaled: Entry[] = [];
    kernel.journal.onAppend((entry) => journaled.push(entry));
    const outcome = await kernel.docs.apply(doc.write, { add: i });
    t.is(outcome.status, 'fulfilled', JSON.stringify(outcome));
    const value = (outcome as { value: GridValue }).value;
    t.like(value, { value: { n: (i * (i + 1)) / 2, at: 0.5, text: 'é', link: { '/': reducer } } });
    const answer = journaled.find((entry) => entry.kind === 'fulfilled');
    t.deepEqual(encodedPayload(answer!), encodeValue(value));
  }
});

test("a change is stored as exactly its canonical bytes, cut from the call's arguments or encoded, and replays on a replica", async (t) => {
  const kernel = await openKernel({ memory: true });
  const replica = await openKernel({ memory: true });
  t.teardown(() => Promise.all([kernel.close(), replica.close()]));
  const reducer = await kernel.issue({ code: await kernel.publish(REDUCER), export: 'update', replicable: true });
  const doc = await kernel.docs.create({ reducer, init: { n: 0, items: [], link: null } });
  const changes: GridValue[] = [{ add: 1 }, { add: 2, note: 'é', at: 0.25, z: [1, [2]], a: { '/': reducer } }, { add: -3, big: 2 ** 40 }];
  for (const change of changes) t.is((await kernel.docs.apply(doc.write, change)).status, 'fulfilled');
  // Through the call itself, with its arguments as the pipeline encodes them.
  t.is((await kernel.call(doc.write, ['apply', { add: 4 }])).status, 'fulfilled');
  const bundle = await kernel.docs.bundle(doc.doc, []);
  const stored = new Set(bundle.blocks.map(([, bytes]) => Buffer.from(bytes).toString('hex')));
  for (const change of [...changes, { add: 4 }]) t.true(stored.has(Buffer.from(encodeValue(change)).toString('hex')), JSON.stringify(change));
  t.like(await kernel.docs.read(doc.read), { status: 'fulfilled', value: { value: { n: 4 } } });
  // Each version's signature checks and its value follows from its change on a replica.
  for (const token of await kernel.docs.closuresOf(doc.doc)) await replica.adopt(token as never, await kernel.replica(token, replica.principal));
  const taken = await replica.docs.ingest(bundle, kernel.principal);
  t.deepEqual(taken, { accepted: 4, refused: [] });
});

test('a state and change past the value limits together are refused as bad arguments, the document untouched', async (t) => {
  const kernel = await openKernel({ memory: true });
  t.teardown(() => kernel.close());
  const reducer = await kernel.issue({ code: await kernel.publish(REDUCER), export: 'update' });
  const doc = await kernel.docs.create({ reducer, init: { n: 0, items: [], link: null } });
  // A state just within the limits: with any change beside it, the reducer's arguments are not.
  const grown = await kernel.docs.apply(doc.write, { grow: MAX_VALUE_ITEMS - 20 });
  t.is(grown.status, 'fulfilled', JSON.stringify(grown).slice(0, 300));
  const before = await kernel.docs.read(doc.read);
  const refused = await kernel.docs.apply(doc.write, { add: 1, pad: Array.from({ length: 20 }, () => 0) });
  t.like(refused, { status: 'revoked', code: 'invalid' });
  t.regex((refused as { reason: string }).reason, /bad arguments.*items/);
  t.deepEqual(await kernel.docs.read(doc.read), before);
});

test("a CID's text made in one piece is multiformats' own, for every length of digest and codec", (t) => {
  for (let length = 0; length <= 70; length++) {
    for (const codec of [0x55, 0x71, 0x0129, 0x300001]) {
      const digest = Uint8Array.from({ length }, (_, i) => (i * 37 + length * 11 + codec) & 0xff);
      const cid = CID.createV1(codec, Digest.create(0x12, digest));
      t.is(cidText(cid), cid.toString());
      t.is(cidText(cid), CID.parse(cidText(cid)).toString(), 'and it reads back');
    }
  }
  const block = blockCid(new TextEncoder().encode('a block'), 0x71);
  t.is(cidText(block), block.toString());
  t.is(blockName(block), block.toString());
  // A CIDv0 keeps its base58btc text; its block is filed under its v1 form.
  const v0 = CID.createV0(Digest.create(0x12, new Uint8Array(32).fill(7)));
  t.is(cidText(v0), v0.toString());
  t.is(blockName(v0), v0.toV1().toString());
});
