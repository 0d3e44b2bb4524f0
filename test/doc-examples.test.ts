/**
 * The example document modules (examples/todo.js, chat.js, text.js,
 * budget.js, community.js, translate-merge.js), run as any closure runs:
 * published, issued and called in a vat of one real kernel. Reducers are
 * applied in sequence; their values are merged with the shipped steps
 * (merges/json.js, merges/union.js, the kernel's text merge) as a document's
 * merge cascade will.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { refusalOf as refusal, valueOf as value } from './_helpers.js';
import { readFile } from 'node:fs/promises';
import { openKernel, type Outcome } from '../src/index.js';
import type { GridValue } from '../src/closures/values.js';
import { mergeText } from '../src/docs/text-merge.js';

type Fn = (...args: unknown[]) => Promise<Outcome>;

// Stand-ins for the oracle translate-merge.js calls (where a language model would answer).
const ORACLES = `
  // Both sides' additions after the base, ours first: a merge a person might write.
  export const concat = (ctx, { base, ours, theirs }) => {
    if (typeof ours !== 'string' || !ours.startsWith(base) || !theirs.startsWith(base)) ctx.revoke('oracle: I only merge texts both sides appended to');
    return ours + theirs.slice(base.length);
  };
  export const refuse = (ctx) => ctx.revoke('oracle: these two edits say opposite things');
  export const crash = () => { throw new TypeError('oracle exploded'); };
  export const number = () => 42;
  export const record = (ctx, { ours, theirs }) => ({ ...theirs, ...ours });
`;

const setup = async () => {
  const kernel = await openKernel({ memory: true, limits: { vats: 1 } });
  const published = new Map<string, Promise<string>>();
  const publish = (file: string) => {
    if (!published.has(file)) published.set(file, readFile(new URL(`../${file}`, import.meta.url), 'utf8').then((text) => kernel.publish(text)));
    return published.get(file)!;
  };
  const token = async (file: string, exportName: string, env?: Record<string, unknown>) => kernel.issue({ code: await publish(file), export: exportName, ...(env ? { env } : {}) });
  const closure = async (file: string, exportName: string, env?: Record<string, unknown>): Promise<Fn> => {
    const issued = await token(file, exportName, env);
    return (...args) => kernel.call(issued, args as GridValue[]);
  };
  const oracleCode = await kernel.publish(ORACLES);
  const oracle = (exportName: string) => kernel.issue({ code: oracleCode, export: exportName });
  return { kernel, closure, oracle, json: await closure('merges/json.js', 'merge'), union: await closure('merges/union.js', 'merge') };
};
let shared: ReturnType<typeof setup> | undefined;
const grid = () => (shared ??= setup());
test.after.always(async () => {
  if (shared) await (await shared).kernel.close();
});

/** The reducer applied to each change in turn: the value after the last. */
const apply = async (reducer: Fn, state: unknown, ...changes: unknown[]) => {
  for (const change of changes) state = value(await reducer(state, change));
  return state;
};
/** A merge both ways round: the same value (or the same refusal) whichever head is ours. */
const mergeBothWays = async (t: { deepEqual: (a: unknown, b: unknown) => void }, merge: Fn, base: unknown, ours: unknown, theirs: unknown) => {
  const one = await merge(base, ours, theirs);
  t.deepEqual(await merge(base, theirs, ours), one);
  return one;
};

const reducers = new Map<string, Promise<{ update: Fn; init: Fn }>>();
const example = (file: string) => {
  if (!reducers.has(file)) {
    reducers.set(
      file,
      grid().then(async ({ closure }) => ({ update: await closure(`examples/${file}`, 'update'), init: await closure(`examples/${file}`, 'init') })),
    );
  }
  return reducers.get(file)!;
};

// ---- todo ----

const item = (text: string, done = false) => ({ text, done });

test('todo: add, done and remove applied in sequence', async (t) => {
  const { update, init } = await example('todo.js');
  const empty = value(await init());
  t.deepEqual(empty, { items: [] });
  const list = await apply(update, empty, { add: 'milk' }, { add: 'eggs' }, { add: 'milk' }, { done: 'milk' });
  t.deepEqual(list, { items: [item('milk', true), item('eggs'), item('milk')] });
  // The next "done milk" ticks the second milk, the first being done already.
  t.deepEqual(await apply(update, list, { done: 'milk' }, { remove: 'eggs' }), { items: [item('milk', true), item('milk', true)] });
  t.deepEqual(await apply(update, list, { remove: 'milk' }), { items: [item('eggs'), item('milk')] }, 'remove takes the first item with that text');
});

test('todo: bad changes are refused with what is wrong', async (t) => {
  const { update } = await example('todo.js');
  const list = { items: [item('milk', true)] };
  t.is(refusal(await update(list, { done: 'milk' })), 'todo: no item left to do reads "milk"');
  t.is(refusal(await update(list, { remove: 'bread' })), 'todo: no item reads "bread"');
  t.is(refusal(await update(list, { add: '' })), 'todo: an item\'s text is a non-empty string (got "")');
  t.is(refusal(await update(list, { add: 5 })), "todo: an item's text is a non-empty string (got 5)");
  t.is(refusal(await update(list, { add: 'x'.repeat(201) })), "todo: an item's text is at most 200 characters (got 201)");
  t.is(refusal(await update(list, { buy: 'milk' })), 'todo: a change is {"add": text}, {"done": text} or {"remove": text} (got a record with keys "buy")');
  t.is(refusal(await update(list, { add: 'a', done: 'b' })), 'todo: a change is {"add": text}, {"done": text} or {"remove": text} (got a record with keys "add", "done")');
  t.is(refusal(await update(list, 'add milk')), 'todo: a change is {"add": text}, {"done": text} or {"remove": text} (got "add milk")');
  t.is(refusal(await update({ todo: [] }, { add: 'milk' })), 'todo: the state is not {"items": [...]} (got a record with keys "todo")');
  t.is(refusal(await update({ items: [item('a'), { text: 'b' }] }, { add: 'milk' })), 'todo: the state\'s item 1 is not {"text": text, "done": boolean} (got a record with keys "text")');
  const full = { items: Array.from({ length: 500 }, (_, i) => item(`task ${i}`)) };
  t.is(refusal(await update(full, { add: 'one more' })), 'todo: the list holds 500 items, its limit; remove some first');
});

test('todo: concurrent adds and ticks of different items merge with the json step', async (t) => {
  const { update } = await example('todo.js');
  const { json } = await grid();
  const base = await apply(update, { items: [] }, { add: 'milk' }, { add: 'eggs' });
  const ours = await apply(update, base, { add: 'bread' }, { done: 'milk' });
  const theirs = await apply(update, base, { done: 'eggs' }, { add: 'jam' });
  const merged = value(await mergeBothWays(t, json, base, ours, theirs));
  // Both ticks kept; both additions kept, after the base items, in one order on every replica.
  t.deepEqual(merged, { items: [item('milk', true), item('eggs', true), item('jam'), item('bread')] });
  // The merged value is a list the reducer goes on from.
  t.deepEqual(await apply(update, merged, { done: 'bread' }, { remove: 'milk' }), { items: [item('eggs', true), item('jam'), item('bread', true)] });
  // Removing an item the other side ticked off is a conflict for a person, at that item.
  const removed = await apply(update, base, { remove: 'milk' });
  const ticked = await apply(update, base, { done: 'milk' });
  t.is(refusal(await mergeBothWays(t, json, base, removed, ticked)), 'json merge: conflicting changes at /items/0');
});

test('todo: at its limit, three copies of the list still fit one merge call', async (t) => {
  const { update } = await example('todo.js');
  const { json } = await grid();
  // 200 code units, most of them three bytes in UTF-8: the largest items there are.
  const long = (i: number) => `${String(i).padStart(4, '0')}${'€'.repeat(196)}`;
  const base = { items: Array.from({ length: 499 }, (_, i) => item(long(i))) };
  const ours = await apply(update, base, { add: long(1000) });
  const theirs = await apply(update, base, { done: long(3) });
  t.deepEqual(value(await json(base, ours, theirs)), { items: [...base.items.slice(0, 3), item(long(3), true), ...base.items.slice(4), item(long(1000))] });
});

// ---- chat ----

const said = (from: string, text: string) => ({ from, text });

test('chat: messages are appended in order', async (t) => {
  const { update, init } = await example('chat.js');
  const room = await apply(update, value(await init()), { say: 'hi', from: 'ann' }, { from: 'bob', say: 'hello' }, { say: 'hi', from: 'ann' });
  t.deepEqual(room, { messages: [said('ann', 'hi'), said('bob', 'hello'), said('ann', 'hi')] });
});

test('chat: bad messages are refused with what is wrong', async (t) => {
  const { update } = await example('chat.js');
  const room = { messages: [] };
  const shape = 'chat: a change is {"say": text, "from": name}';
  t.is(refusal(await update(room, { say: 'hi' })), `${shape} (got a record with keys "say")`);
  t.is(refusal(await update(room, { say: 'hi', from: 'ann', to: 'bob' })), `${shape} (got a record with keys "to", "say", "from")`);
  t.is(refusal(await update(room, ['hi'])), `${shape} (got a list)`);
  t.is(refusal(await update(room, { say: '', from: 'ann' })), 'chat: "say" is a non-empty string (got "")');
  t.is(refusal(await update(room, { say: 'hi', from: null })), 'chat: "from" is a non-empty name (got null)');
  t.is(refusal(await update(room, { say: 'x'.repeat(2001), from: 'ann' })), 'chat: a message is at most 2000 characters (got 2001)');
  t.is(refusal(await update(room, { say: 'hi', from: 'a'.repeat(65) })), 'chat: a name is at most 64 characters (got 65)');
  t.is(refusal(await update('a log', { say: 'hi', from: 'ann' })), 'chat: the state is not {"messages": [...]} (got "a log")');
  t.is(refusal(await update({ messages: [said('ann', 'hi'), null] }, { say: 'hi', from: 'ann' })), 'chat: the state\'s message 1 is not {"from": name, "text": text} (got null)');
  const full = { messages: Array.from({ length: 500 }, (_, i) => said('ann', `${i}`)) };
  t.is(refusal(await update(full, { say: 'one more', from: 'ann' })), 'chat: the room holds 500 messages, its limit; start a new room');
  // 131 messages of 2,001 bytes (name and text) = 262,131 bytes; one more passes the 256 KiB of text a room holds.
  const wordy = { messages: Array.from({ length: 131 }, () => said('a', 'x'.repeat(2000))) };
  t.is(refusal(await update(wordy, { say: 'é'.repeat(20), from: 'b' })), 'chat: the room would hold 262172 bytes of text, over its limit of 262144; start a new room');
  t.deepEqual(value(await update(wordy, { say: 'y'.repeat(12), from: 'b' })), { messages: [...wordy.messages, said('b', 'y'.repeat(12))] }, 'up to the limit exactly');
});

test('chat: messages said on two replicas merge with the union step, the same on both', async (t) => {
  const { update } = await example('chat.js');
  const { union } = await grid();
  const base = await apply(update, { messages: [] }, { say: 'hi', from: 'ann' }, { say: 'hello', from: 'bob' });
  const ours = await apply(update, base, { say: 'lunch?', from: 'ann' }, { say: 'at 12', from: 'ann' });
  const theirs = await apply(update, base, { say: 'brb', from: 'bob' });
  const merged = value(await mergeBothWays(t, union, base, ours, theirs));
  t.deepEqual(merged, { messages: [said('ann', 'hi'), said('bob', 'hello'), said('ann', 'lunch?'), said('ann', 'at 12'), said('bob', 'brb')] });
  t.deepEqual(await apply(update, merged, { say: 'ok', from: 'bob' }), { messages: [...(merged as { messages: unknown[] }).messages, said('bob', 'ok')] });
  // A message both sides said alike (one greeting, heard twice) is kept once.
  const both = await apply(update, base, { say: 'bye', from: 'ann' });
  t.deepEqual(value(await union(base, both, both)), both);
  // A log edited outside the reducer (a message rewritten) is history rewritten: refused.
  const rewritten = { messages: [said('ann', 'HI'), said('bob', 'hello')] };
  t.is(refusal(await union(base, ours, rewritten)), 'union merge: theirs rewrote history (an item inserted before existing ones, moved or edited) at /messages/0');
});

test('chat: at its limits, three copies of the room still fit one merge call', async (t) => {
  const { update } = await example('chat.js');
  const { union } = await grid();
  // 499 messages of 523 bytes each (260,977 bytes); each side adds one more of 523, to 261,500 of 262,144.
  const text = (i: number) => `${String(i).padStart(4, '0')}${'x'.repeat(516)}`;
  const base = { messages: Array.from({ length: 499 }, (_, i) => said('ann', text(i))) };
  const ours = await apply(update, base, { say: text(1000), from: 'ann' });
  const theirs = await apply(update, base, { say: text(2000), from: 'bob' });
  const merged = value(await union(base, ours, theirs)) as { messages: unknown[] };
  t.is(merged.messages.length, 501);
  t.deepEqual(merged.messages.slice(499), [said('ann', text(1000)), said('bob', text(2000))]);
});

// ---- text ----

test('text: set and splice applied in sequence, by UTF-16 code units', async (t) => {
  const { update, init } = await example('text.js');
  t.is(value(await init()), '');
  t.is(await apply(update, '', { set: 'Hello world' }, { splice: [5, 0, ','] }, { splice: [0, 5, 'Goodbye'] }, { splice: [14, 0, '!'] }), 'Goodbye, world!');
  // An emoji is two code units; a splice around it (not through it) is fine.
  t.is(await apply(update, 'a😀b', { splice: [1, 2, ''] }), 'ab');
  t.is(await apply(update, 'a😀b', { splice: [3, 1, 'c'] }, { splice: [0, 0, ''] }), 'a😀c');
});

test('text: bad splices are refused: out of range, inside a surrogate pair, not numbers', async (t) => {
  const { update } = await example('text.js');
  t.is(refusal(await update('abc', { splice: [4, 0, 'x'] })), 'text: splice index 4 is past the end of the text (length 3)');
  t.is(refusal(await update('abc', { splice: [1, 3, ''] })), 'text: splice deletes 3 at 1, past the end of the text (length 3)');
  t.is(refusal(await update('abc', { splice: [-1, 0, 'x'] })), 'text: a splice\'s index is a whole number ≥ 0 (got -1)');
  t.is(refusal(await update('abc', { splice: [1.5, 0, 'x'] })), "text: a splice's index is a whole number ≥ 0 (got 1.5)");
  t.is(refusal(await update('abc', { splice: [0, '1', 'x'] })), 'text: a splice\'s deleteCount is a whole number ≥ 0 (got "1")');
  t.is(refusal(await update('abc', { splice: [0, 0, 7] })), "text: a splice's insertText is a string (got 7)");
  t.is(refusal(await update('abc', { splice: [0, 0] })), 'text: "splice" takes [index, deleteCount, insertText] (got a list of 2)');
  t.is(refusal(await update('a😀b', { splice: [2, 0, 'x'] })), 'text: splice index 2 falls inside a surrogate pair');
  t.is(refusal(await update('a😀b', { splice: [0, 2, ''] })), 'text: splice range 0..2 ends inside a surrogate pair');
  t.is(refusal(await update('abc', { set: ['abc'] })), 'text: "set" takes a string (got a list of 1)');
  t.is(refusal(await update('abc', { append: 'd' })), 'text: a change is {"set": text} or {"splice": [index, deleteCount, insertText]} (got a record with keys "append")');
  t.is(refusal(await update({ text: 'abc' }, { set: '' })), 'text: the state is not a string (got a record with keys "text")');
});

test('text: the text is bounded at 256 KiB of UTF-8, with a clear refusal', async (t) => {
  const { update } = await example('text.js');
  const full = 'a'.repeat(256 * 1024);
  t.is(value(await update('', { set: full })), full, 'exactly the limit');
  t.is(refusal(await update(full, { splice: [0, 0, 'b'] })), 'text: the text would be 262145 bytes, over its limit of 262144 (256 KiB)');
  // Counted in bytes, not characters: 87,382 euro signs are 262,146 bytes.
  t.is(refusal(await update('', { set: '€'.repeat(87_382) })), 'text: the text would be 262146 bytes, over its limit of 262144 (256 KiB)');
  t.is(value(await update(full, { splice: [0, 1, ''] })), full.slice(1));
});

test('text: concurrent splices merge with the kernel text step', async (t) => {
  const { update } = await example('text.js');
  const base = await apply(update, '', { set: 'The cat sat on the mat.' });
  const ours = await apply(update, base, { splice: [4, 3, 'dog'] });
  const theirs = await apply(update, base, { splice: [19, 3, 'rug'] }, { splice: [23, 0, ' Twice.'] });
  t.is(ours, 'The dog sat on the mat.');
  t.is(theirs, 'The cat sat on the rug. Twice.');
  t.is(mergeText(base as string, ours as string, theirs as string), 'The dog sat on the rug. Twice.');
  t.is(mergeText(base as string, theirs as string, ours as string), 'The dog sat on the rug. Twice.');
});

// ---- budget ----

test('budget: the total and lines set in sequence', async (t) => {
  const { update, init } = await example('budget.js');
  t.deepEqual(value(await init()), { total: 0, lines: {} });
  const budget = await apply(update, { total: 0, lines: {} }, { set: 10000 }, { line: 'travel', amount: 3000 }, { line: 'food', amount: 1250.5 }, { amount: 2500, line: 'travel' }, { set: 12000 });
  t.deepEqual(budget, { total: 12000, lines: { travel: 2500, food: 1250.5 } });
  // A line named like an Object.prototype key is a line.
  const odd = (await apply(update, budget, { line: '__proto__', amount: 1 })) as { lines: Record<string, number> };
  t.deepEqual(Object.keys(odd.lines).sort(), ['__proto__', 'food', 'travel']);
  t.is(Object.getOwnPropertyDescriptor(odd.lines, '__proto__')?.value, 1);
});

test('budget: amounts must be non-negative finite numbers; other changes are refused', async (t) => {
  const { update } = await example('budget.js');
  const budget = { total: 100, lines: {} };
  t.is(refusal(await update(budget, { set: -1 })), 'budget: the total is a non-negative finite number (got -1)');
  t.is(refusal(await update(budget, { set: '12000' })), 'budget: the total is a non-negative finite number (got "12000")');
  t.is(refusal(await update(budget, { set: 2n ** 60n })), `budget: the total is a non-negative finite number (got ${2n ** 60n}n)`);
  t.is(refusal(await update(budget, { line: 'travel', amount: null })), 'budget: the amount of line "travel" is a non-negative finite number (got null)');
  t.is(refusal(await update(budget, { line: '', amount: 1 })), 'budget: a line\'s name is a non-empty string (got "")');
  t.is(refusal(await update(budget, { line: 'n'.repeat(101), amount: 1 })), "budget: a line's name is at most 100 characters (got 101)");
  t.is(refusal(await update(budget, { line: 'travel' })), 'budget: a change is {"set": amount} or {"line": name, "amount": amount} (got a record with keys "line")');
  t.is(refusal(await update(budget, { set: 1, line: 'x' })), 'budget: a change is {"set": amount} or {"line": name, "amount": amount} (got a record with keys "set", "line")');
  t.is(refusal(await update([], { set: 1 })), 'budget: the state is not {"total": amount, "lines": {...}} (got a list)');
  t.is(refusal(await update({ lines: {} }, { line: 'x', amount: 1 })), 'budget: the state is not {"total": amount, "lines": {...}} (got a record with keys "lines")');
  t.true(Object.is((value(await update(budget, { set: -0 })) as { total: number }).total, 0), '-0 is stored as 0');
  const full = { total: 0, lines: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`line ${i}`, i])) };
  t.is(refusal(await update(full, { line: 'one more', amount: 1 })), 'budget: the budget holds 500 lines, its limit');
  t.is((value(await update(full, { line: 'line 7', amount: 70 })) as { lines: Record<string, number> }).lines['line 7'], 70, 'an existing line changes at the limit');
});

test('budget: edits of different lines merge; two totals set at once conflict at /total', async (t) => {
  const { update } = await example('budget.js');
  const { json } = await grid();
  const base = await apply(update, { total: 0, lines: {} }, { set: 10000 }, { line: 'travel', amount: 3000 });
  const ours = await apply(update, base, { line: 'travel', amount: 3500 }, { line: 'food', amount: 800 });
  const theirs = await apply(update, base, { line: 'rent', amount: 4000 });
  t.deepEqual(value(await mergeBothWays(t, json, base, ours, theirs)), { total: 10000, lines: { travel: 3500, food: 800, rent: 4000 } });
  // The same total set on both sides is one change.
  const same = await apply(update, base, { set: 12000 });
  t.deepEqual(value(await json(base, same, same)), same);
  // Two different totals: the json step refuses, naming the path; the conflict goes to a person.
  const alice = await apply(update, base, { set: 12000 }, { line: 'food', amount: 900 });
  const bob = await apply(update, base, { set: 15000 });
  t.is(refusal(await mergeBothWays(t, json, base, alice, bob)), 'json merge: conflicting changes at /total');
  // And one line set to two amounts names that line.
  const one = await apply(update, base, { line: 'travel', amount: 1 });
  const two = await apply(update, base, { line: 'travel', amount: 2 });
  t.is(refusal(await json(base, one, two)), 'json merge: conflicting changes at /lines/travel');
});

// ---- community ----

// did:key test vectors (Ed25519) from the did:key specification.
const ANN = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
const BOB = 'did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG';
const CY = 'did:key:z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf';

test('community: members added and removed in sequence, kept sorted', async (t) => {
  const { update, init } = await example('community.js');
  t.deepEqual(value(await init()), { members: [], rules: { quorum: 'majority' } });
  const founded = { members: [CY], rules: { quorum: 'majority' } };
  t.deepEqual(await apply(update, founded, { add: BOB }, { add: ANN }), { members: [ANN, BOB, CY], rules: { quorum: 'majority' } });
  t.deepEqual(await apply(update, founded, { add: ANN }, { remove: CY }), { members: [ANN], rules: { quorum: 'majority' } });
  // One set of members is one value, whatever the order they joined in.
  t.deepEqual(await apply(update, founded, { add: ANN }, { add: BOB }), await apply(update, founded, { add: BOB }, { add: ANN }));
});

test('community: a present member, an absent one, the last one and non-principals are refused', async (t) => {
  const { update } = await example('community.js');
  const club = { members: [ANN, BOB], rules: { quorum: 'majority' } };
  t.is(refusal(await update(club, { add: ANN })), `community: "${ANN}" is a member already`);
  t.is(refusal(await update(club, { remove: CY })), `community: "${CY}" is not a member`);
  const alone = await apply(update, club, { remove: BOB });
  t.is(refusal(await update(alone, { remove: ANN })), `community: "${ANN}" is the last member; a community keeps at least one`);
  for (const [who, shown] of [
    ['alice', '"alice"'],
    ['did:web:example.com', '"did:web:example.com"'],
    ['did:key:abc', '"did:key:abc"'],
    ['did:key:z0OIl', '"did:key:z0OIl"'], // not base58
    [`${ANN}\n`, `"${ANN}\\n"`],
    [7, '7'],
  ] as const) {
    t.is(refusal(await update(club, { add: who })), `community: a member is a did:key principal ("did:key:z…"), got ${shown}`);
  }
  t.is(refusal(await update(club, { kick: BOB })), 'community: a change is {"add": principal} or {"remove": principal} (got a record with keys "kick")');
  t.is(refusal(await update(null, { add: CY })), 'community: the state is not {"members": [...], "rules": {...}} (got null)');
});

test('community: members added on two replicas merge with the json step', async (t) => {
  const { update } = await example('community.js');
  const { json } = await grid();
  const base = { members: [BOB], rules: { quorum: 'majority' } };
  const ours = await apply(update, base, { add: CY });
  const theirs = await apply(update, base, { add: ANN });
  t.deepEqual(value(await mergeBothWays(t, json, base, ours, theirs)), { members: [ANN, BOB, CY], rules: { quorum: 'majority' } });
  // The same member added on both sides is added once.
  t.deepEqual(value(await json(base, ours, await apply(update, base, { add: CY }))), ours);
});

// ---- translate-merge: a merge step that calls another token ----

test('translate-merge: the oracle’s answer is the merge', async (t) => {
  const { closure, oracle } = await grid();
  const merge = await closure('examples/translate-merge.js', 'merge', { oracle: { '/': await oracle('concat') } });
  t.is(value(await merge('Hello', 'Hello, Ann', 'Hello and Bob')), 'Hello, Ann and Bob');
  // A record for a record, from an oracle that takes a string token in env too.
  const byString = await closure('examples/translate-merge.js', 'merge', { oracle: await oracle('record') });
  t.deepEqual(value(await byString({ a: 1 }, { a: 2 }, { a: 1, b: 3 })), { a: 2, b: 3 });
});

test('translate-merge: the oracle’s refusal or failure is passed on as this step’s refusal, with its reason', async (t) => {
  const { closure, oracle } = await grid();
  const refusing = await closure('examples/translate-merge.js', 'merge', { oracle: { '/': await oracle('refuse') } });
  t.is(refusal(await refusing('a', 'b', 'c')), 'translate merge: the oracle could not merge: oracle: these two edits say opposite things');
  const concat = await closure('examples/translate-merge.js', 'merge', { oracle: { '/': await oracle('concat') } });
  t.is(refusal(await concat('Hello', 'Hi', 'Hello, Bob')), 'translate merge: the oracle could not merge: oracle: I only merge texts both sides appended to');
  const crashing = await closure('examples/translate-merge.js', 'merge', { oracle: { '/': await oracle('crash') } });
  t.regex(refusal(await crashing('a', 'b', 'c')), /^translate merge: the oracle could not merge: .*oracle exploded/);
});

test('translate-merge: an answer of another type, or no oracle, is refused', async (t) => {
  const { closure, oracle } = await grid();
  const numbers = await closure('examples/translate-merge.js', 'merge', { oracle: { '/': await oracle('number') } });
  t.is(refusal(await numbers('a', 'b', 'c')), 'translate merge: the oracle answered a number where ours is a string');
  t.is(value(await numbers(1, 2, 3)), 42, 'a number for a number');
  const records = await closure('examples/translate-merge.js', 'merge', { oracle: { '/': await oracle('record') } });
  t.is(refusal(await records([1], [1, 2], [1, 3])), 'translate merge: the oracle answered a record where ours is a list');
  const none = await closure('examples/translate-merge.js', 'merge');
  t.is(refusal(await none('a', 'b', 'c')), 'translate merge: no oracle token in env.oracle (issue this step with --env \'{"oracle":{"/":"<token>"}}\')');
  const notAToken = await closure('examples/translate-merge.js', 'merge', { oracle: 5 });
  t.is(refusal(await notAToken('a', 'b', 'c')), 'translate merge: no oracle token in env.oracle (issue this step with --env \'{"oracle":{"/":"<token>"}}\')');
});
