/**
 * The text merge (src/docs/text-merge.ts) under real SES lockdown: where
 * Automerge runs (this locked-down thread, a vat-like worker thread, not a
 * Compartment), what merges give, determinism across processes, properties.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import fc from 'fast-check';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import * as Automerge from '@automerge/automerge';
import { diffText, mergeText, replayText, MAX_TEXT_UNITS, TextMergeError } from '../src/docs/text-merge.js';
import { analyzeModule } from '../src/closures/modules.js';
import { ModuleRunner } from '../src/closures/runner.js';
import type { ModuleId } from '../src/interface/ids.js';
import { makeEdits, makeText } from './_text-edits.js';

const run = promisify(execFile);

test('the realm is locked down', (t) => {
  t.true(Object.isFrozen(Object.prototype));
  t.true(Object.isFrozen(ArrayBuffer.prototype));
});

/** `ArrayBuffer.prototype.detached` (ES2024; TypeScript's lib here is ES2023). */
const detached = (buffer: ArrayBuffer) => (buffer as ArrayBuffer & { readonly detached: boolean }).detached;

test('a buffer detached by WebAssembly memory growth says so under lockdown (wasm-bindgen relies on it)', (t) => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const before = memory.buffer;
  t.false(detached(before));
  memory.grow(1);
  t.true(detached(before));
  t.false(detached(memory.buffer));
  t.false(detached(new ArrayBuffer(0)));
  t.false(detached(new ArrayBuffer(8)));
});

test('Automerge itself loads and merges in the locked-down main thread, past a memory growth', (t) => {
  const base = makeText(200_000, 7);
  let doc = Automerge.change(Automerge.init<{ text: string }>({ actor: 'aa' }), { time: 0 }, (d) => {
    d.text = base;
  });
  let left = Automerge.clone(doc, { actor: 'bb' });
  let right = Automerge.clone(doc, { actor: 'cc' });
  left = Automerge.change(left, { time: 0 }, (d) => Automerge.splice(d, ['text'], 0, 0, 'L'));
  right = Automerge.change(right, { time: 0 }, (d) => Automerge.splice(d, ['text'], base.length, 0, 'R'));
  doc = Automerge.merge(left, right);
  t.is(doc.text, `L${base}R`);
});

test('concurrent inserts at different places both survive', (t) => {
  const base = 'first line\nsecond line\nthird line\n';
  const ours = 'first line, extended\nsecond line\nthird line\n';
  const theirs = 'first line\nsecond line\nthird line\nfourth line\n';
  t.is(mergeText(base, ours, theirs), 'first line, extended\nsecond line\nthird line\nfourth line\n');
  t.is(mergeText('abc', 'aXbc', 'abYc'), 'aXbYc');
});

test('an insert inside a region the other side deleted survives; the deletion removes what it saw', (t) => {
  const base = 'The quick brown fox jumps';
  const ours = 'The fox jumps';
  const theirs = 'The quick very brown fox jumps';
  t.is(mergeText(base, ours, theirs), 'The very fox jumps');
  t.is(mergeText(base, theirs, ours), 'The very fox jumps');
});

test('both sides deleting the same text removes it once; identical edits give that edit', (t) => {
  t.is(mergeText('one two three', 'one three', 'one three!'), 'one three!');
  const edited = 'one 2 three';
  t.is(mergeText('one two three', edited, edited), edited);
  // The same insert made by two different edits is kept twice (CRDT semantics), in an order both replicas agree on.
  t.is(mergeText('ab', 'aXb', 'aXbZ'), mergeText('ab', 'aXbZ', 'aXb'));
  t.is(mergeText('ab', 'aXb', 'aXbZ').length, 5);
});

test('concurrent inserts at the same spot come out in the same order whichever side is ours', (t) => {
  const one = mergeText('abc', 'aXbc', 'aYbc');
  t.true(one === 'aXYbc' || one === 'aYXbc');
  t.is(mergeText('abc', 'aYbc', 'aXbc'), one);
});

test('unicode: emoji, modifiers and combining marks are never split into broken surrogates', (t) => {
  t.deepEqual(diffText('a😀b', 'a😁b'), [{ at: 1, remove: 2, insert: '😁' }]);
  t.is(mergeText('a😀b', 'a😁b', 'a😀bc'), 'a😁bc');
  t.is(mergeText('👍 ok', '👍🏽 ok', '👍 ok!'), '👍🏽 ok!');
  t.is(mergeText('cafe', 'cafe\u0301', 'Cafe'), 'Cafe\u0301');
  t.is(mergeText('e\u0301 x', 'e\u0301\u0327 x', 'e\u0301 y'), 'e\u0301\u0327 y');
  const merged = mergeText('家族 👨‍👩‍👧 text', '家族 👨‍👩‍👧 text 😀', '大家族 👨‍👩‍👧 text');
  t.is(merged, '大家族 👨‍👩‍👧 text 😀');
  t.false(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(merged));
});

test('bad and hostile input: one line with a stable code', (t) => {
  const notString = t.throws(() => mergeText('a', 42 as unknown as string, 'b'), { instanceOf: TextMergeError });
  t.is(notString?.code, 'ERR_TEXT_NOT_STRING');
  t.is(notString?.message, 'text merge: ours is not a string (got number)');
  const huge = 'x'.repeat(MAX_TEXT_UNITS + 1);
  const tooLarge = t.throws(() => mergeText('a', 'b', huge), { instanceOf: TextMergeError });
  t.is(tooLarge?.code, 'ERR_TEXT_TOO_LARGE');
  t.false(tooLarge!.message.includes('\n'));
  // Thousands of lines, every one changed: a bounded diff refuses (the cascade's "I cannot") instead of running away.
  const base = Array.from({ length: 4000 }, (_, i) => `b${i}\n`).join('');
  const other = Array.from({ length: 4000 }, (_, i) => `o${i}\n`).join('');
  const costly = t.throws(() => mergeText(base, other, `${base}end\n`), { instanceOf: TextMergeError });
  t.is(costly?.code, 'ERR_TEXT_DIFF_TOO_COSTLY');
  t.false(costly!.message.includes('\n'));
});

/** Apply splices (offsets in the base, increasing) in plain JavaScript. */
const applySplices = (base: string, splices: ReturnType<typeof diffText>) => {
  let out = '';
  let at = 0;
  for (const splice of splices) {
    ordered(splice.at >= at);
    out += base.slice(at, splice.at) + splice.insert;
    at = splice.at + splice.remove;
  }
  return out + base.slice(at);
};
const ordered = (ok: boolean) => {
  if (!ok) throw new Error('splices out of order');
};

test('a 50 KB text with ~1,000 edits a side merges the same both ways; each side\'s diff reproduces it', (t) => {
  const base = makeText(50_000, 11);
  const ours = makeEdits(base, 1000, 12).result;
  const theirs = makeEdits(base, 1000, 13).result;
  t.is(applySplices(base, diffText(base, ours)), ours);
  t.is(applySplices(base, diffText(base, theirs)), theirs);
  const merged = mergeText(base, ours, theirs);
  t.is(mergeText(base, theirs, ours), merged);
  t.true(merged.length > 40_000);
});

test('many scattered edits on a long text diff within bounds (line anchors keep each diff small)', (t) => {
  // 2,000 edits on 400 KB touch ~1,800 lines: without anchors a line-level edit distance of ~3,500, past the diff's memory bound.
  const base = makeText(400_000, 31);
  const ours = makeEdits(base, 2000, 32).result;
  t.is(applySplices(base, diffText(base, ours)), ours);
});

const vatLikeWorker = () => {
  const entry = new URL('./_text-merge-worker.ts', import.meta.url).href;
  const bootstrap = `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
  // The limits src/vat/pool.ts gives a vat (256 MB default).
  return new Worker(bootstrap, { eval: true, execArgv: [], resourceLimits: { maxOldGenerationSizeMb: 256, maxYoungGenerationSizeMb: 32, stackSizeMb: 4 } });
};

test('it runs in a locked-down worker thread with a vat\'s limits, with the same result as here', async (t) => {
  const base = makeText(100_000, 21);
  const ours = makeEdits(base, 500, 22).result;
  const theirs = makeEdits(base, 500, 23).result;
  const worker = vatLikeWorker();
  try {
    const answer = await new Promise<{ ok?: string; locked?: boolean; error?: string; code?: string }>((resolve, reject) => {
      worker.on('error', reject);
      worker.on('message', (message) => {
        if (message.ready) worker.postMessage({ base, ours, theirs });
        else resolve(message);
      });
    });
    t.is(answer.error, undefined);
    t.true(answer.locked);
    t.is(answer.ok, mergeText(base, ours, theirs));
  } finally {
    await worker.terminate();
  }
});

test('a closure\'s Compartment has no WebAssembly; a grid module reaches the merge only as a host function', async (t) => {
  const bare = new Compartment({ __options__: true, globals: {} });
  t.is(bare.evaluate('typeof WebAssembly'), 'undefined');
  const runner = new ModuleRunner({ mergeText: harden(mergeText) });
  const id = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' as ModuleId;
  runner.compile(id, await analyzeModule(`import { mergeText } from 'promisegrid';\nexport const merge = (b, o, th) => mergeText(b, o, th);\nexport const wasm = typeof WebAssembly;`));
  const instance = runner.instantiate(id) as { merge: typeof mergeText; wasm: string };
  t.is(instance.wasm, 'undefined');
  t.is(instance.merge('abc', 'aXbc', 'abYc'), 'aXbYc');
});

test('two fresh processes produce byte-identical merges', async (t) => {
  const args = ['--import=./test/_preload.mjs', '--import=tsx', 'test/_text-merge-print.ts'];
  const [one, two] = await Promise.all([run(process.execPath, args, { encoding: 'buffer' }), run(process.execPath, args, { encoding: 'buffer' })]);
  t.true(one.stdout.length > 0);
  t.true(Buffer.compare(one.stdout, two.stdout) === 0);
  const printed = JSON.parse(one.stdout.toString('utf8')) as string[];
  t.is(printed[0], mergeText('abc', 'aXbc', 'aYbc'));
  t.is(printed[0], printed[1]);
});

// Texts from an alphabet with newlines, emoji, a modifier and combining marks; sides are random edits of the base.
const piece = fc.constantFrom('a', 'b', 'c', ' ', '\n', '😀', '👍🏽', 'e\u0301', '\u0301', 'é', '家');
const textArb = fc.array(piece, { maxLength: 40 }).map((parts) => parts.join(''));
const editsArb = fc.array(fc.record({ at: fc.nat(), remove: fc.nat({ max: 4 }), insert: fc.array(piece, { maxLength: 4 }) }), { maxLength: 6 });
const applyEdits = (text: string, edits: ReadonlyArray<{ at: number; remove: number; insert: string[] }>) => {
  const points = Array.from(text);
  for (const { at, remove, insert } of edits) points.splice(at % (points.length + 1), remove, ...insert);
  return points.join('');
};
const caseArb = fc.tuple(textArb, editsArb, editsArb).map(([base, x, y]) => ({ base, ours: applyEdits(base, x), theirs: applyEdits(base, y) }));

test('properties: merge(b,x,b)=x, merge(b,b,y)=y, merge(b,x,x)=x, commutative, each side replays exactly', (t) => {
  fc.assert(
    fc.property(caseArb, ({ base, ours, theirs }) => {
      const merged = mergeText(base, ours, theirs);
      return (
        mergeText(base, ours, base) === ours &&
        mergeText(base, base, theirs) === theirs &&
        mergeText(base, ours, ours) === ours &&
        mergeText(base, theirs, ours) === merged &&
        replayText(base, ours) === ours &&
        replayText(base, theirs) === theirs
      );
    }),
    { numRuns: 300 },
  );
  t.pass();
});
