import '../src/perimeter/lockdown.js';
import test from 'ava';
import { refusalOf as refusal, valueOf as value } from './_helpers.js';
import { readFile } from 'node:fs/promises';
import { openKernel, type Kernel, type Outcome } from '../src/index.js';
import type { GridValue } from '../src/closures/values.js';

// The shipped merge steps, run as any closure runs: published, issued, called in a vat.
type Merge = (base: unknown, ours: unknown, theirs: unknown) => Promise<Outcome>;

const setup = async () => {
  const kernel = await openKernel({ memory: true, limits: { vats: 1 } });
  const issue = async (file: string, spec: { timeLimitMs?: number } = {}): Promise<Merge> => {
    const code = await kernel.publish(await readFile(new URL(`../merges/${file}`, import.meta.url), 'utf8'));
    const token = await kernel.issue({ code, export: 'merge', ...spec });
    return (base, ours, theirs) => kernel.call(token, [base, ours, theirs] as GridValue[]);
  };
  return { kernel, json: await issue('json.js'), union: await issue('union.js'), issue };
};
let shared: Promise<{ kernel: Kernel; json: Merge; union: Merge; issue: (file: string, spec?: { timeLimitMs?: number }) => Promise<Merge> }> | undefined;
const grid = () => (shared ??= setup());
test.after.always(async () => {
  if (shared) await (await shared).kernel.close();
});


// ---- json: unit cases ----

test('json: disjoint key edits both apply', async (t) => {
  const { json } = await grid();
  t.deepEqual(value(await json({ a: 1, b: 2, c: 3 }, { a: 10, b: 2, c: 3 }, { a: 1, b: 2, c: 3, d: 4 })), { a: 10, b: 2, c: 3, d: 4 });
});

test('json: the same edit on both sides is taken once', async (t) => {
  const { json } = await grid();
  t.deepEqual(value(await json({ a: 1, l: [1] }, { a: 2, l: [1, 2] }, { a: 2, l: [1, 2] })), { a: 2, l: [1, 2] });
  t.deepEqual(value(await json({ a: 1, b: 1 }, { b: 1 }, { b: 1 })), { b: 1 }, 'a deletion on both sides too');
});

test('json: delete against edit conflicts, naming the path', async (t) => {
  const { json } = await grid();
  const reason = refusal(await json({ items: [{ title: 'a' }], meta: { owner: 'x' } }, { items: [{ title: 'a' }], meta: {} }, { items: [{ title: 'a' }], meta: { owner: 'y' } }));
  t.is(reason, 'json merge: conflicting changes at /meta/owner');
});

test('json: nested records merge field by field', async (t) => {
  const { json } = await grid();
  const base = { doc: { title: 't', tags: { a: true }, body: { text: 'x', size: 1 } } };
  const ours = { doc: { title: 'T', tags: { a: true, b: true }, body: { text: 'x', size: 1 } } };
  const theirs = { doc: { title: 't', tags: { a: true }, body: { text: 'y', size: 2 } } };
  t.deepEqual(value(await json(base, ours, theirs)), { doc: { title: 'T', tags: { a: true, b: true }, body: { text: 'y', size: 2 } } });
});

test('json: a key both sides added merges as from empty when both are records, conflicts when scalars', async (t) => {
  const { json } = await grid();
  t.deepEqual(value(await json({}, { s: { a: 1 } }, { s: { b: 2 } })), { s: { a: 1, b: 2 } });
  t.is(refusal(await json({}, { s: 1 }, { s: 2 })), 'json merge: conflicting changes at /s');
});

test('json: inserts at different places in a list merge', async (t) => {
  const { json } = await grid();
  const base = ['a', 'b', 'c', 'd'];
  t.deepEqual(value(await json(base, ['x', 'a', 'b', 'c', 'd'], ['a', 'b', 'c', 'y', 'd'])), ['x', 'a', 'b', 'c', 'y', 'd']);
  // Deleting one element while the other side edits its neighbour and appends.
  t.deepEqual(value(await json(base, ['a', 'c', 'd'], ['a', 'b', 'C', 'd', 'e'])), ['a', 'C', 'd', 'e']);
  // An insertion before an element the other side edits goes before it.
  t.deepEqual(value(await json(base, ['a', 'x', 'b', 'c', 'd'], ['a', 'B', 'c', 'd'])), ['a', 'x', 'B', 'c', 'd']);
});

test('json: concurrent appends at the same place keep both, in one order whichever side is ours', async (t) => {
  const { json } = await grid();
  const base = { items: [{ t: 'milk' }] };
  const ours = { items: [{ t: 'milk' }, { t: 'eggs' }] };
  const theirs = { items: [{ t: 'milk' }, { t: 'bread' }, { t: 'jam' }] };
  const one = value(await json(base, ours, theirs));
  t.deepEqual(one, { items: [{ t: 'milk' }, { t: 'bread' }, { t: 'jam' }, { t: 'eggs' }] });
  t.deepEqual(value(await json(base, theirs, ours)), one);
  // Shared first and last inserted items are kept once.
  t.deepEqual(value(await json([], ['s', 'a', 'e'], ['s', 'b', 'e'])), ['s', 'a', 'b', 'e']);
});

test('json: items of a list edited in different fields merge; the same field conflicts with its path', async (t) => {
  const { json } = await grid();
  const base = { items: [{ title: 'a', done: false }, { title: 'b', done: false }, { title: 'c', done: false }, { title: 'd', done: false }] };
  const ours = { items: [{ title: 'a', done: false }, { title: 'b', done: false }, { title: 'c', done: false }, { title: 'D', done: false }] };
  const theirs = { items: [{ title: 'a', done: false }, { title: 'b', done: false }, { title: 'c', done: false }, { title: 'd', done: true }] };
  t.deepEqual(value(await json(base, ours, theirs)), { items: [...base.items.slice(0, 3), { title: 'D', done: true }] });
  const clash = { items: [...base.items.slice(0, 3), { title: 'dd', done: false }] };
  t.is(refusal(await json(base, ours, clash)), 'json merge: conflicting changes at /items/3/title');
});

test('json: overlapping list edits conflict', async (t) => {
  const { json } = await grid();
  // Ours deletes b and c; theirs replaces c and d with one item: the regions overlap and differ in length.
  t.is(refusal(await json(['a', 'b', 'c', 'd', 'e'], ['a', 'd', 'e'], ['a', 'b', 'x', 'e'])), 'json merge: conflicting changes at /1');
  // Two different scalars at one index.
  t.is(refusal(await json({ l: [1, 2, 3] }, { l: [1, 7, 3] }, { l: [1, 8, 3] })), 'json merge: conflicting changes at /l/1');
});

test('json: a type change against an edit conflicts; links and bytes are atomic', async (t) => {
  const { json } = await grid();
  t.is(refusal(await json({ a: { x: 1 } }, { a: { x: 2 } }, { a: [1] })), 'json merge: conflicting changes at /a');
  t.is(refusal(await json({ a: 1 }, { a: 'one' }, { a: [1] })), 'json merge: conflicting changes at /a');
  t.is(refusal(await json({ b: new Uint8Array([1]) }, { b: new Uint8Array([2]) }, { b: new Uint8Array([3]) })), 'json merge: conflicting changes at /b');
  t.deepEqual(value(await json({ b: new Uint8Array([1]), n: 1 }, { b: new Uint8Array([2]), n: 1 }, { b: new Uint8Array([1]), n: 2 })), { b: new Uint8Array([2]), n: 2 });
});

test('json: the reason lists at most 20 paths, escaped, then how many more', async (t) => {
  const { json } = await grid();
  const keys = Array.from({ length: 30 }, (_, i) => `k${String(i).padStart(2, '0')}`);
  const make = (v: number) => Object.fromEntries(keys.map((k) => [k, v]));
  const reason = refusal(await json(make(0), make(1), make(2)));
  t.is(reason, `json merge: conflicting changes at ${keys.slice(0, 20).map((k) => `/${k}`).join(', ')} and 10 more`);
  t.is(refusal(await json({ 'a/b~c\nd': 0 }, { 'a/b~c\nd': 1 }, { 'a/b~c\nd': 2 })), 'json merge: conflicting changes at /a~1b~0c\\u000ad');
  t.is(refusal(await json(1, 2, 3)), 'json merge: conflicting changes at the root');
  // Long keys: the reason stays within what the kernel keeps (500 characters), counting what it leaves out.
  const long = Array.from({ length: 10 }, (_, i) => `${i}${'x'.repeat(200)}`);
  const wide = (v: number) => Object.fromEntries(long.map((k) => [k, v]));
  const cut = refusal(await json(wide(0), wide(1), wide(2)));
  t.true(cut.length <= 500, cut);
  t.regex(cut, /… and \d+ more$/);
});

test('json: keys like __proto__, constructor and toString are data', async (t) => {
  const { json } = await grid();
  t.deepEqual(value(await json({ toString: 1 }, { toString: 1, valueOf: 2 }, { toString: 3 })), { toString: 3, valueOf: 2 });
  t.deepEqual(value(await json({ constructor: 1 }, { constructor: 1, hasOwnProperty: 2 }, { constructor: 3 })), { constructor: 3, hasOwnProperty: 2 });
  t.is(refusal(await json({ constructor: 1 }, { constructor: 2 }, { constructor: 3 })), 'json merge: conflicting changes at /constructor');
  // JSON.parse makes `__proto__` an own key, as the decoder does.
  for (const [one, two] of [['1', '2'], ['{"a": 1}', '{"a": 2}']] as const) {
    const [base, ours, theirs] = JSON.parse(`[{"__proto__": ${one}}, {"__proto__": ${two}}, {"__proto__": ${one}, "z": 0}]`);
    const merged = value(await json(base, ours, theirs)) as Record<string, unknown>;
    t.deepEqual(Object.keys(merged).sort(), ['__proto__', 'z']);
    t.deepEqual(Object.getOwnPropertyDescriptor(merged, '__proto__')?.value, JSON.parse(two));
  }
});

// ---- union: unit cases ----

test('union: two chat logs appended apart merge into one, the same whichever side is ours', async (t) => {
  const { union } = await grid();
  const m = (from: string, text: string) => ({ from, text });
  const base = { room: 'general', log: [m('ann', 'hi'), m('bob', 'hello')] };
  const ours = { room: 'general', log: [...base.log, m('ann', 'lunch?'), m('ann', 'at 12')] };
  const theirs = { room: 'general', log: [...base.log, m('bob', 'brb')] };
  const merged = value(await union(base, ours, theirs));
  t.deepEqual(merged, { room: 'general', log: [...base.log, m('ann', 'lunch?'), m('ann', 'at 12'), m('bob', 'brb')] });
  t.deepEqual(value(await union(base, theirs, ours)), merged);
});

test('union: removals on either side stay removed; an item both appended is kept once', async (t) => {
  const { union } = await grid();
  t.deepEqual(value(await union([1, 2, 3, 4], [1, 3, 4, 5], [1, 2, 4, 5, 6])), [1, 4, 5, 6]);
  t.deepEqual(value(await union([1], [1, 'x', 'x'], [1, 'x'])), [1, 'x', 'x']);
  // Keys as a set: added on either side kept, removed on either side gone.
  t.deepEqual(value(await union({ a: 1, b: 2 }, { a: 1, b: 2, c: 3 }, { a: 1, d: 4 })), { a: 1, c: 3, d: 4 });
});

test('union: rewriting history is refused with the side and the path', async (t) => {
  const { union } = await grid();
  t.is(refusal(await union({ log: [1, 2, 3] }, { log: [1, 2, 3, 4] }, { log: [1, 9, 2, 3] })), 'union merge: theirs rewrote history (an item inserted before existing ones, moved or edited) at /log/1');
  t.is(refusal(await union({ log: [1, 2, 3] }, { log: [1, 5, 3] }, { log: [1, 2, 3] })), 'union merge: ours rewrote history (an item inserted before existing ones, moved or edited) at /log/1');
  t.is(refusal(await union({ title: 'a', log: [] }, { title: 'b', log: [] }, { title: 'a', log: [1] })), 'union merge: ours changed a value at /title');
  t.is(refusal(await union({ log: [1] }, { log: { 0: 1 } }, { log: [1] })), 'union merge: ours replaced a list at /log');
  t.is(refusal(await union({ s: { a: 1 } }, { s: { a: 1, b: 1 } }, {})), 'union merge: ours changed what theirs removed at /s');
});

// ---- properties ----

const LEAVES = ['a', 'b', 'c', 0, 1, 2, true, null];
const arbitraries = async () => {
  const { default: fc } = await import('fast-check');
  const leaf = () => fc.constantFrom(...LEAVES);
  const { tree } = fc.letrec((tie) => ({
    tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf(), tie('list'), tie('record')),
    list: fc.array(tie('tree'), { maxLength: 5 }),
    record: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), tie('tree'), { maxKeys: 4 }),
  }));
  // A random edit of a value, driven by a list of choices: sides made this way share much with the base.
  const edit = (input: unknown, choices: number[]): unknown => {
    let next = 0;
    const pick = (n: number) => (choices.length === 0 ? 0 : choices[next++ % choices.length]! % n);
    const walk = (v: unknown, depth: number): unknown => {
      const action = pick(6);
      if (action === 0 || depth > 4) return LEAVES[pick(LEAVES.length)];
      if (Array.isArray(v)) {
        const out = v.map((item) => (pick(3) === 0 ? walk(item, depth + 1) : item));
        if (pick(2) === 0 && out.length > 0) out.splice(pick(out.length), 1);
        if (pick(2) === 0) out.splice(pick(out.length + 1), 0, LEAVES[pick(LEAVES.length)]);
        return out;
      }
      if (v !== null && typeof v === 'object') {
        const out: Record<string, unknown> = { ...v };
        for (const key of Object.keys(out)) {
          const what = pick(4);
          if (what === 0) delete out[key];
          else if (what === 1) out[key] = walk(out[key], depth + 1);
        }
        if (pick(2) === 0) out['abcd'[pick(4)]!] = LEAVES[pick(LEAVES.length)];
        return out;
      }
      return action < 3 ? v : LEAVES[pick(LEAVES.length)];
    };
    return walk(input, 0);
  };
  const triple = fc
    .tuple(tree, fc.array(fc.nat(100), { maxLength: 30 }), fc.array(fc.nat(100), { maxLength: 30 }))
    .map(([base, a, b]) => [base, edit(base, a), edit(base, b)] as const);
  return { fc, tree, triple, edit };
};

test('property (json): merge(b, x, b) = x, merge(b, b, y) = y, merge(b, x, x) = x', async (t) => {
  const { json } = await grid();
  const { fc, triple } = await arbitraries();
  await fc.assert(
    fc.asyncProperty(triple, async ([b, x, y]) => {
      t.deepEqual(value(await json(b, x, b)), x);
      t.deepEqual(value(await json(b, b, y)), y);
      t.deepEqual(value(await json(b, x, x)), x);
    }),
    { numRuns: 150 },
  );
});

test('property (json): merge(b, x, y) and merge(b, y, x) both refuse or agree', async (t) => {
  const { json } = await grid();
  const { fc, triple } = await arbitraries();
  let merged = 0;
  await fc.assert(
    fc.asyncProperty(triple, async ([b, x, y]) => {
      const one = await json(b, x, y);
      const two = await json(b, y, x);
      t.is(one.status, two.status);
      if (one.status === 'fulfilled') {
        merged += 1;
        t.deepEqual(one.value, value(two));
      } else {
        t.is(one.status === 'revoked' && one.code, 'refused');
        t.is(one.status === 'revoked' && one.reason, two.status === 'revoked' && two.reason);
      }
    }),
    { numRuns: 300 },
  );
  t.true(merged > 30, `only ${merged} of 300 merged: the generator makes too few mergeable pairs`);
});

test('property (json): disjoint record edits merge into both sides’ changes', async (t) => {
  const { json } = await grid();
  const { fc, tree, edit } = await arbitraries();
  const keys = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5'];
  await fc.assert(
    fc.asyncProperty(
      fc.tuple(...keys.map(() => tree)),
      fc.array(fc.boolean(), { minLength: keys.length, maxLength: keys.length }),
      fc.array(fc.nat(100), { maxLength: 30 }),
      fc.array(fc.nat(100), { maxLength: 30 }),
      async (values, mine, a, b) => {
        const base = Object.fromEntries(keys.map((k, i) => [k, values[i]]));
        const ours: Record<string, unknown> = { ...base };
        const theirs: Record<string, unknown> = { ...base };
        const expected: Record<string, unknown> = { ...base };
        keys.forEach((k, i) => {
          const side = mine[i] ? ours : theirs;
          side[k] = edit(base[k], i % 2 ? a : b);
          expected[k] = side[k];
        });
        t.deepEqual(value(await json(base, ours, theirs)), expected);
      },
    ),
    { numRuns: 100 },
  );
});

test('property (json): disjoint list edits merge, keeping each side’s inserts, deletes and order', async (t) => {
  const { json } = await grid();
  const { default: fc } = await import('fast-check');
  // The base is distinct numbers cut into blocks; ours edits even blocks, theirs odd ones, inserting fresh numbers.
  const editBlock = (block: number[], ops: number[], fresh: () => number) => {
    const out = [...block];
    for (const op of ops) {
      if (op % 3 === 0 && out.length > 0) out.splice(op % out.length, 1);
      else out.splice(op % (out.length + 1), 0, fresh());
    }
    return out;
  };
  await fc.assert(
    fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 8 }), fc.array(fc.array(fc.nat(50), { maxLength: 4 }), { minLength: 8, maxLength: 8 }), async (sizes, ops) => {
      let n = 0;
      const blocks = sizes.map((size) => Array.from({ length: size }, () => n++));
      let ourNext = 1000;
      let theirNext = 2000;
      const ours = blocks.flatMap((block, i) => (i % 2 === 0 ? editBlock(block, ops[i]!, () => ourNext++) : block));
      const theirs = blocks.flatMap((block, i) => (i % 2 === 1 ? editBlock(block, ops[i]!, () => theirNext++) : block));
      const base = blocks.flat();
      const merged = value(await json(base, ours, theirs)) as number[];
      const has = new Set(merged);
      for (const item of base) t.is(has.has(item), ours.includes(item) && theirs.includes(item), `base item ${item}`);
      for (const item of [...ours, ...theirs]) if (item >= 1000) t.true(has.has(item), `inserted item ${item}`);
      t.is(merged.length, has.size);
      const inOrder = (side: number[]) => merged.filter((item) => side.includes(item));
      t.deepEqual(inOrder(ours), ours.filter((item) => has.has(item)));
      t.deepEqual(inOrder(theirs), theirs.filter((item) => has.has(item)));
    }),
    { numRuns: 150 },
  );
});

test('property (union): merge(b, x, b) = x for an append-only x, and sides commute', async (t) => {
  const { union } = await grid();
  const { default: fc } = await import('fast-check');
  // Appended items are new (none equals a base item): one equal to a base item after it reads as an insertion.
  const item = fc.constantFrom('a', 'b', 1, { m: 'a' });
  const added = fc.constantFrom('x', 'y', 2, { m: 'b' });
  const grow = (base: unknown[], keep: boolean[], more: unknown[]) => [...base.filter((_, i) => keep[i % keep.length] !== false), ...more];
  await fc.assert(
    fc.asyncProperty(fc.array(item, { maxLength: 8 }), fc.array(fc.boolean()), fc.array(added, { maxLength: 4 }), fc.array(fc.boolean()), fc.array(added, { maxLength: 4 }), async (base, k1, a1, k2, a2) => {
      const x = grow(base, k1, a1);
      const y = grow(base, k2, a2);
      const only = value(await union(base, x, base));
      t.deepEqual(only, x);
      t.deepEqual(value(await union(base, base, y)), y);
      t.deepEqual(value(await union(base, x, x)), x);
      const one = await union(base, x, y);
      const two = await union(base, y, x);
      t.is(one.status, two.status);
      if (one.status === 'fulfilled') t.deepEqual(one.value, value(two));
    }),
    { numRuns: 150 },
  );
});

// ---- hostile input ----

test('hostile: a worst-case list diff ends at the merge’s time limit, and the kernel serves the next merge', async (t) => {
  const { issue } = await grid();
  const slow = await issue('json.js', { timeLimitMs: 1 });
  // No element is unique, so nothing anchors the diff: the exact LCS runs on 2,000 × 2,000 cells, twice.
  const pattern = (seed: number) => Array.from({ length: 2000 }, (_, i) => ((i * seed) >> 3) % 3);
  const outcome = await slow(pattern(7), pattern(11), pattern(13));
  t.like(outcome, { status: 'revoked', code: 'time-limit' });
  const { json } = await grid();
  t.deepEqual(value(await json({ a: 1 }, { a: 2 }, { a: 1, b: 1 })), { a: 2, b: 1 });
});

test('hostile: elements crafted to share one hash still merge exactly', async (t) => {
  const { json } = await grid();
  // Two strings with one 32-bit hash (found by a birthday search); lists of them collide 2^k ways.
  const [c1, c2] = ['c1039599', 'c1222382'];
  const colliding = Array.from({ length: 64 }, (_, n) => Array.from({ length: 6 }, (_, bit) => ((n >> bit) & 1 ? c2 : c1)));
  const ours = [...colliding.filter((_, i) => i !== 5), ['new']];
  const theirs = colliding.filter((_, i) => i !== 40);
  t.deepEqual(value(await json(colliding, ours, theirs)), [...colliding.filter((_, i) => i !== 5 && i !== 40), ['new']]);
});

test('hostile: the largest and deepest inputs a call carries settle within the default limits', async (t) => {
  const { json, union } = await grid();
  const pattern = (seed: number) => Array.from({ length: 2000 }, (_, i) => ((i * seed) >> 3) % 3);
  const big = await json(pattern(7), pattern(11), pattern(13));
  t.true(big.status === 'fulfilled' || (big.status === 'revoked' && big.code === 'refused'), JSON.stringify(big).slice(0, 200));
  // Nesting as deep as the decoder allows (64 levels, counting the argument list).
  const deep = (depth: number, leaf: unknown): unknown => (depth === 0 ? leaf : { n: deep(depth - 1, leaf) });
  t.is(refusal(await json(deep(62, 0), deep(62, 1), deep(62, 2))), `json merge: conflicting changes at ${'/n'.repeat(62).slice(0, 99)}…`);
  t.deepEqual(value(await union(deep(62, [0]), deep(62, [0, 1]), deep(62, [0, 2]))), deep(62, [0, 1, 2]));
  // Past the call's bounds the kernel refuses the arguments before any merge runs.
  const tooMany = await json(Array.from({ length: 9000 }, (_, i) => i), [], []);
  t.like(tooMany, { status: 'revoked', code: 'invalid' });
});
