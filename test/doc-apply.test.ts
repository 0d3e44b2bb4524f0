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
