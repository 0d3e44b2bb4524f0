/**
 * `npm run bench -- text-merge`: the text merge (src/docs/text-merge.ts) on
 * a ~50 KB text with two branches of ~1,000 small edits each, against
 * Automerge merging the same edits directly (each branch's edits spliced as
 * typed on its own fork, then merged): what recovering the edits by a diff
 * costs. Also Automerge's own `updateText` diff in place of ours, the diff
 * alone, and the merge of two prebuilt forks. Memory: the WebAssembly and
 * RSS growth of the first merge (WebAssembly memory is not in `arrayBuffers`) (Automerge's memory never shrinks, so that is
 * the working set a merge of this size needs), and what stays per merge
 * after a full collection.
 */
import * as Automerge from '@automerge/automerge';
import { diffText, mergeText } from '../dist/docs/text-merge.js';
import { makeEdits, makeText, type Edit } from '../test/_text-edits.js';
import { mediansInTurns, row, type Row } from './measure.js';

interface TextDoc {
  text: string;
}

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
/** Full collections with turns between, so Automerge's FinalizationRegistry frees WebAssembly-side documents. */
const settle = async () => {
  for (let i = 0; i < 4; i += 1) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MB`;

const baseDoc = (base: string) => Automerge.change(Automerge.init<TextDoc>({ actor: '00'.repeat(16) }), { time: 0 }, (d) => {
  d.text = base;
});

/** Each branch's edits as typed, one change per branch, merged: Automerge doing it directly. */
const direct = (base: string, ours: readonly Edit[], theirs: readonly Edit[]) => {
  const doc = baseDoc(base);
  const side = (edits: readonly Edit[], actor: string) =>
    Automerge.change(Automerge.clone(doc, { actor }), { time: 0 }, (d) => {
      for (const { at, remove, insert } of edits) Automerge.splice(d, ['text'], at, remove, insert);
    });
  return Automerge.merge(side(ours, '11'.repeat(16)), side(theirs, '22'.repeat(16))).text;
};

/** Automerge's own diff (`updateText`) in place of ours. */
const viaUpdateText = (base: string, ours: string, theirs: string) => {
  const doc = baseDoc(base);
  const side = (text: string, actor: string) => Automerge.change(Automerge.clone(doc, { actor }), { time: 0 }, (d) => Automerge.updateText(d, ['text'], text));
  return Automerge.merge(side(ours, '11'.repeat(16)), side(theirs, '22'.repeat(16))).text;
};

/** A fork with one change per typed edit: the history a replica running Automerge would hold. */
const history = (base: string, edits: readonly Edit[], actor: string) => {
  let doc = Automerge.clone(baseDoc(base), { actor });
  for (const { at, remove, insert } of edits) doc = Automerge.change(doc, { time: 0 }, (d) => Automerge.splice(d, ['text'], at, remove, insert));
  return doc;
};

export const benchTextMerge = async (): Promise<Row[]> => {
  const base = makeText(50_000, 101);
  const ours = makeEdits(base, 1000, 102);
  const theirs = makeEdits(base, 1000, 103);

  // Memory first, before anything else here has grown Automerge's memory.
  await settle();
  const before = process.memoryUsage();
  let merged = mergeText(base, ours.result, theirs.result);
  await settle();
  const first = process.memoryUsage();
  // Steady state: after 20 warm merges (the WebAssembly memory has reached its high-water mark), 30 more.
  for (let i = 0; i < 20; i += 1) merged = mergeText(base, ours.result, theirs.result);
  await settle();
  const warm = process.memoryUsage();
  const MERGES = 30;
  for (let i = 0; i < MERGES; i += 1) merged = mergeText(base, ours.result, theirs.result);
  await settle();
  const after = process.memoryUsage();
  console.log(
    `text ${base.length} chars, ${ours.edits.length}+${theirs.edits.length} edits; first merge grew RSS by ${mb(first.rss - before.rss)} (arrayBuffers ${mb(first.arrayBuffers - before.arrayBuffers)}: WebAssembly memory is not counted there); ` +
      `RSS after 21 merges ${mb(warm.rss - before.rss)} over the start; then per merge over ${MERGES} more, after a full GC: ${mb((after.heapUsed - warm.heapUsed) / MERGES)} heap, ${mb((after.rss - warm.rss) / MERGES)} RSS`,
  );
  const directText = direct(base, ours.edits, theirs.edits);
  console.log(`mergeText ${merged === directText ? 'equals' : 'differs from'} the direct Automerge merge (${merged.length} vs ${directText.length} chars); updateText variant ${viaUpdateText(base, ours.result, theirs.result) === merged ? 'equals' : 'differs from'} mergeText`);

  const forkA = history(base, ours.edits, '11'.repeat(16));
  const forkB = history(base, theirs.edits, '22'.repeat(16));
  const ops = {
    direct: () => direct(base, ours.edits, theirs.edits),
    mergeText: () => mergeText(base, ours.result, theirs.result),
    diff: () => diffText(base, ours.result),
    updateText: () => viaUpdateText(base, ours.result, theirs.result),
    mergeOnly: () => Automerge.merge(Automerge.clone(forkA), forkB).text,
  };
  const m = await mediansInTurns(ops, { rounds: 5, perRound: 4, warmup: 2 });
  const baseline = { name: 'Automerge direct (typed splices, merge)', median_ns: m.direct! };
  return [
    row(baseline.name, baseline.median_ns),
    row('mergeText (our diff ×2, splices, merge)', m.mergeText!, baseline),
    row('diffText, one side (lines, then code points)', m.diff!, baseline),
    row('Automerge updateText ×2 + merge', m.updateText!, baseline),
    row('Automerge merge of 2 forks, 1,000 changes each', m.mergeOnly!, baseline),
  ];
};
