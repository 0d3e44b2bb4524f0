/**
 * # Text merge (issue 15, merge cascade step "text")
 *
 * `mergeText(base, ours, theirs)` merges two concurrent edits of a text from
 * their lowest common ancestor, through Automerge (`@automerge/automerge`,
 * exact version pinned in package.json), so the result is the one a CRDT
 * editor would converge to: concurrent inserts at different places both
 * survive, an insert inside a region the other side deleted survives (the
 * deletion removes only what it saw), a character both sides deleted is gone
 * once.
 *
 * How: the base becomes an Automerge document written by a fixed actor; each
 * side is diffed against the base (our own deterministic two-level diff:
 * lines first, patience-anchored on lines unique to both sides with Myers in
 * the gaps, then Myers on code points inside each changed hunk) and its edits are
 * applied as splices on its own fork; the forks are merged and the text read.
 *
 * ## Contract
 * - Pure and deterministic: the same three strings give the same string on
 *   every replica, in every process. Nothing reads a clock or entropy: the
 *   base's actor is a constant and each side's actor is derived from that
 *   side's text (SHA-256, domain-separated), every change has time 0.
 * - Commutative: `mergeText(b, x, y) === mergeText(b, y, x)`. A side's actor
 *   depends only on its text, never on whether it came as "ours" or
 *   "theirs", and an Automerge merge does not depend on the order the forks
 *   are combined; concurrent inserts at one spot are ordered by actor id.
 * - `mergeText(b, x, b) === x`, `mergeText(b, b, y) === y`,
 *   `mergeText(b, x, x) === x` (short-cut, and also what the CRDT gives).
 * - Never splits a surrogate pair: the diff works on code points. It may
 *   separate a combining mark from its base character when one side edits
 *   the base character and the other the mark (as any character-level CRDT).
 *
 * ## Limits (hostile input is bounded)
 * - Each input is a string of at most `MAX_TEXT_UNITS` UTF-16 code units,
 *   else `ERR_TEXT_TOO_LARGE`; a non-string is `ERR_TEXT_NOT_STRING`.
 * - The diff's work and memory are bounded (`MAX_DIFF_STEPS` per side,
 *   `MAX_DIFF_TRACE` per Myers run, i.e. an edit distance of ~2,800 lines
 *   between two anchor lines, or code points within one changed hunk): a side too different from the base for a bounded diff is refused with
 *   `ERR_TEXT_DIFF_TOO_COSTLY`, the cascade's "I cannot" (a person settles
 *   it), rather than a whole-text replace that would concatenate both sides.
 * - Automerge's memory is WebAssembly memory, outside a vat's V8
 *   `resourceLimits`: the size cap is what bounds it (see the bench for
 *   memory per merge).
 *
 * ## Where it runs
 * - The kernel thread after SES `lockdown()`, and a vat worker thread under
 *   lockdown with a vat's `resourceLimits` (test/text-merge.test.ts runs
 *   both), through the package's `node` entry (`@automerge/automerge`, which
 *   reads `automerge.wasm` from the package; the `slim` entry with
 *   `initializeWasm`/`initializeBase64Wasm` works too). On Node 20 only with
 *   src/perimeter/array-buffer-detached.ts loaded before lockdown: SES's
 *   shim otherwise reports a detached buffer as not detached, wasm-bindgen
 *   keeps a stale view of the grown memory and every Automerge call in that
 *   thread fails from then on ("Cannot perform DataView.prototype.setInt32
 *   on a detached ArrayBuffer").
 * - Not inside a closure's Compartment: grid modules import nothing but
 *   'promisegrid' and the Compartment has no WebAssembly global. A closure
 *   reaches the merge only as a host function (hardened) that the closure
 *   API hands it; the test does that through the real ModuleRunner.
 * - Each thread that loads it compiles the 3.6 MB WebAssembly module once
 *   (~0.1–0.25 s) and keeps its own WebAssembly memory, which is outside a
 *   vat's V8 heap limit and never shrinks (tens of MB after a 50 KB merge).
 *
 * ## Choices where the issue is silent
 * - Both sides inserting the same text at the same spot keeps both copies
 *   (CRDT semantics), unless the two sides are identical texts.
 * - Granularity is the code point, found via a line diff first: edits that
 *   rewrite a line are matched character by character within the hunk.
 */
import * as Automerge from '@automerge/automerge';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { GridError } from '../interface/errors.js';

/** Largest input accepted, in UTF-16 code units (`string.length`). */
export const MAX_TEXT_UNITS = 1 << 20;
/** Bound on the diff's work per side (Myers steps summed over both levels). */
export const MAX_DIFF_STEPS = 50_000_000;
/**
 * Bound on the diff's memory per Myers run, in Int32 entries of its trace
 * (about D² for edit distance D, so D up to ~2,800 tokens at one level:
 * lines, or code points within one hunk). 32 MB.
 */
export const MAX_DIFF_TRACE = 8_000_000;

export type TextMergeCode = 'ERR_TEXT_NOT_STRING' | 'ERR_TEXT_TOO_LARGE' | 'ERR_TEXT_DIFF_TOO_COSTLY';

export class TextMergeError extends GridError<TextMergeCode> {
  constructor(code: TextMergeCode, message: string) {
    super(code, `text merge: ${message}`);
  }
}

/** One edit against the base: at UTF-16 offset `at`, delete `remove` units, insert `insert`. */
export interface Splice {
  readonly at: number;
  readonly remove: number;
  readonly insert: string;
}

const BASE_ACTOR = '00'.repeat(16);

/** The actor id of a side: depends on its text only, so "ours"/"theirs" play no role. */
const actorOf = (text: string) => bytesToHex(sha256(utf8ToBytes(`promisegrid text-merge side\0${text}`)).subarray(0, 16));

const check = (name: string, text: unknown): string => {
  if (typeof text !== 'string') throw new TextMergeError('ERR_TEXT_NOT_STRING', `${name} is not a string (got ${text === null ? 'null' : typeof text})`);
  if (text.length > MAX_TEXT_UNITS) throw new TextMergeError('ERR_TEXT_TOO_LARGE', `${name} is ${text.length} UTF-16 units (expected at most ${MAX_TEXT_UNITS})`);
  return text;
};

/**
 * Myers' O(ND) shortest edit script between two token arrays; calls `keep`
 * for each matched pair in order. `budget.steps` is charged per step; past
 * zero the diff is refused.
 */
const myers = (a: Int32Array, b: Int32Array, budget: { steps: number }, keep: (i: number, j: number) => void) => {
  const n = a.length;
  const m = b.length;
  const max = n + m;
  const offset = max + 1;
  const v = new Int32Array(2 * max + 3);
  const trace: Int32Array[] = [];
  let traced = 0;
  let found = -1;
  for (let d = 0; d <= max && found < 0; d += 1) {
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!) ? v[offset + k + 1]! : v[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x += 1;
        y += 1;
        budget.steps -= 1;
      }
      v[offset + k] = x;
      if (x >= n && y >= m) {
        found = d;
        break;
      }
    }
    budget.steps -= d + 1;
    traced += 2 * d + 3;
    if (budget.steps < 0 || traced > MAX_DIFF_TRACE) throw tooCostly();
  }
  // Backtrack: trace[d] holds v[-d-1 .. d+1] before round d.
  const pairs: Array<[number, number]> = [];
  let x = n;
  let y = m;
  for (let d = found; d > 0; d -= 1) {
    const vd = trace[d]!;
    const at = (k: number) => vd[k + d + 1]!;
    const k = x - y;
    const prevK = k === -d || (k !== d && at(k - 1) < at(k + 1)) ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      x -= 1;
      y -= 1;
      pairs.push([x, y]);
    }
    x = prevX;
    y = prevY;
  }
  while (x > 0 && y > 0) {
    x -= 1;
    y -= 1;
    pairs.push([x, y]);
  }
  for (let i = pairs.length - 1; i >= 0; i -= 1) keep(pairs[i]![0], pairs[i]![1]);
};

const tooCostly = () =>
  new TextMergeError('ERR_TEXT_DIFF_TOO_COSTLY', `a side differs from the base too much for a bounded diff (over ${MAX_DIFF_STEPS} steps or ${MAX_DIFF_TRACE} trace entries)`);

/** Intern tokens as small integers so Myers compares numbers. */
const intern = (tokens: readonly string[], table: Map<string, number>) => {
  const out = new Int32Array(tokens.length);
  for (let i = 0; i < tokens.length; i += 1) {
    let id = table.get(tokens[i]!);
    if (id === undefined) {
      id = table.size;
      table.set(tokens[i]!, id);
    }
    out[i] = id;
  }
  return out;
};

const splitLines = (text: string): string[] => {
  const lines: string[] = [];
  let start = 0;
  for (;;) {
    const nl = text.indexOf('\n', start);
    if (nl < 0) break;
    lines.push(text.slice(start, nl + 1));
    start = nl + 1;
  }
  if (start < text.length) lines.push(text.slice(start));
  return lines;
};

const unitLength = (tokens: readonly string[], from: number, to: number) => {
  let units = 0;
  for (let i = from; i < to; i += 1) units += tokens[i]!.length;
  return units;
};

/** Code-point diff of one hunk: splices relative to the hunk's start `at`. */
const diffHunk = (at: number, before: string, after: string, budget: { steps: number }, out: Splice[]) => {
  if (before.length === 0 || after.length === 0) {
    out.push({ at, remove: before.length, insert: after });
    return;
  }
  const a = Array.from(before);
  const b = Array.from(after);
  const table = new Map<string, number>();
  const ia = intern(a, table);
  const ib = intern(b, table);
  let i = 0;
  let j = 0;
  let unit = at;
  const emit = (toI: number, toJ: number) => {
    if (toI > i || toJ > j) {
      const remove = unitLength(a, i, toI);
      out.push({ at: unit, remove, insert: b.slice(j, toJ).join('') });
      unit += remove;
    }
  };
  myers(ia, ib, budget, (x, y) => {
    emit(x, y);
    unit += a[x]!.length;
    i = x + 1;
    j = y + 1;
  });
  emit(a.length, b.length);
};

/**
 * The edits that turn `base` into `text`, as splices at UTF-16 offsets of
 * the base, in increasing order and non-overlapping. Deterministic.
 */
export const diffText = (base: string, text: string): Splice[] => {
  const out: Splice[] = [];
  if (base === text) return out;
  const budget = { steps: MAX_DIFF_STEPS };
  const a = splitLines(base);
  const b = splitLines(text);
  const table = new Map<string, number>();
  const ia = intern(a, table);
  const ib = intern(b, table);
  let i = 0;
  let j = 0;
  let unit = 0;
  const hunk = (toI: number, toJ: number) => {
    if (toI > i || toJ > j) {
      const before = a.slice(i, toI).join('');
      diffHunk(unit, before, b.slice(j, toJ).join(''), budget, out);
      unit += before.length;
    }
  };
  patience(ia, ib, budget, (x, y) => {
    hunk(x, y);
    unit += a[x]!.length;
    i = x + 1;
    j = y + 1;
  });
  hunk(a.length, b.length);
  return out;
};

/**
 * Line matching, patience style: lines that occur exactly once on each side
 * and keep their order (longest increasing subsequence) are anchors; Myers
 * runs only in the gaps between anchors, so many scattered edits make many
 * small diffs instead of one with a large edit distance. Calls `keep` for
 * each matched pair in increasing order.
 */
const patience = (a: Int32Array, b: Int32Array, budget: { steps: number }, keep: (i: number, j: number) => void) => {
  // Occurrence counts per token: on a side, -1 once seen twice; else the index.
  const inA = new Map<number, number>();
  const inB = new Map<number, number>();
  for (let i = 0; i < a.length; i += 1) inA.set(a[i]!, inA.has(a[i]!) ? -1 : i);
  for (let j = 0; j < b.length; j += 1) inB.set(b[j]!, inB.has(b[j]!) ? -1 : j);
  const candidates: Array<[number, number]> = [];
  for (let i = 0; i < a.length; i += 1) {
    const j = inB.get(a[i]!);
    if (inA.get(a[i]!) === i && j !== undefined && j >= 0) candidates.push([i, j]);
  }
  // Longest increasing subsequence of the candidates' b indices (patience sorting).
  const tails: number[] = [];
  const previous = new Int32Array(candidates.length).fill(-1);
  for (let c = 0; c < candidates.length; c += 1) {
    const j = candidates[c]![1];
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (candidates[tails[mid]!]![1] < j) lo = mid + 1;
      else hi = mid;
    }
    if (lo > 0) previous[c] = tails[lo - 1]!;
    tails[lo] = c;
  }
  const anchors: Array<[number, number]> = [];
  for (let c = tails.length > 0 ? tails[tails.length - 1]! : -1; c >= 0; c = previous[c]!) anchors.push(candidates[c]!);
  anchors.reverse();
  anchors.push([a.length, b.length]);
  let i = 0;
  let j = 0;
  for (const [ai, bj] of anchors) {
    // Common prefix and suffix of the gap match directly; Myers gets the rest.
    let lo = 0;
    while (i + lo < ai && j + lo < bj && a[i + lo] === b[j + lo]) lo += 1;
    let hi = 0;
    while (ai - hi > i + lo && bj - hi > j + lo && a[ai - hi - 1] === b[bj - hi - 1]) hi += 1;
    for (let k = 0; k < lo; k += 1) keep(i + k, j + k);
    const fromI = i + lo;
    const fromJ = j + lo;
    if (ai - hi > fromI && bj - hi > fromJ) myers(a.subarray(fromI, ai - hi), b.subarray(fromJ, bj - hi), budget, (x, y) => keep(fromI + x, fromJ + y));
    for (let k = hi; k > 0; k -= 1) keep(ai - k, bj - k);
    if (ai < a.length) keep(ai, bj);
    i = ai + 1;
    j = bj + 1;
  }
};

interface TextDoc {
  text: string;
}

const baseDoc = (base: string) => Automerge.change(Automerge.init<TextDoc>({ actor: BASE_ACTOR }), { time: 0 }, (doc) => {
  doc.text = base;
});

/** Apply one side's edits on its own fork of the base, under its content-derived actor. */
const fork = (doc: Automerge.Doc<TextDoc>, base: string, text: string) => {
  const splices = diffText(base, text);
  const side = Automerge.clone(doc, { actor: actorOf(text) });
  if (splices.length === 0) return side;
  return Automerge.change(side, { time: 0 }, (d) => {
    // Back to front, so every offset still refers to the base.
    for (let s = splices.length - 1; s >= 0; s -= 1) {
      const { at, remove, insert } = splices[s]!;
      Automerge.splice(d, ['text'], at, remove, insert);
    }
  });
};

/** Replay `text`'s diff from `base` on Automerge alone (no merge): must give back `text`. */
export const replayText = (base: string, text: string): string => fork(baseDoc(check('base', base)), base, check('text', text)).text;

/**
 * Merge two concurrent edits of a text from their common base. Pure,
 * deterministic and commutative; throws a TextMergeError (with `code`) on
 * bad or oversized input.
 */
export const mergeText = (base: string, ours: string, theirs: string): string => {
  check('base', base);
  check('ours', ours);
  check('theirs', theirs);
  if (ours === theirs || theirs === base) return ours;
  if (ours === base) return theirs;
  const doc = baseDoc(base);
  const merged = Automerge.merge(fork(doc, base, ours), fork(doc, base, theirs));
  return merged.text;
};
