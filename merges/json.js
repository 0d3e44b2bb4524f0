/**
 * Structural 3-way merge of JSON-like grid data: the first shipped step of a
 * document's merge cascade.
 *
 *   export const merge = (ctx, base, ours, theirs) => merged
 *
 * `base` is the lowest common ancestor's value; `ours` and `theirs` are the
 * two heads. The merge either fulfils with one value or refuses with
 * `ctx.revoke(reason)`, the reason one line:
 *
 *   json merge: conflicting changes at /items/3/title, /budget and 4 more
 *
 * Paths are JSON pointers (RFC 6901: `~` is `~0`, `/` is `~1`; control
 * characters are shown as `\uXXXX` so the reason stays one line); the whole
 * value is "the root". At most 20 paths are named, fewer when they are long
 * (the kernel keeps 500 characters of a reason), in document order (keys
 * as strings, list indexes as numbers) whichever order the merge met them.
 *
 * The rules, applied at every level:
 * - A value changed on one side only takes that side's value; the same
 *   change on both sides (deep equality) is taken once; a change against
 *   an unchanged side wins.
 * - Records (plain objects) merge key by key. A key deleted on one side and
 *   changed on the other conflicts at that key. A key added on both sides
 *   with different records (or lists) merges them as if from `{}` (or `[]`);
 *   with different scalars it conflicts.
 * - Lists merge as sequences. Each side is diffed against the base with a
 *   longest-common-subsequence diff on elements compared by deep equality
 *   (patience anchoring on elements unique to both sides, then an exact LCS
 *   on what is left, see `matches`). Each side's diff is a set of hunks
 *   (base range → new elements). Hunks of the two sides that touch the same
 *   base elements, or insert at the same gap, or insert inside the other's
 *   range, form one region; everything else is applied as is — so
 *   concurrent inserts and edits at different places merge, and editing
 *   element 3 while inserting before it merges too (the insertion goes
 *   first). A region both sides changed:
 *     · both made it the same → taken once;
 *     · both only inserted at the same gap → both insertions are kept: the
 *       elements both inserted at the start and at the end are kept once,
 *       and the two differing middles follow each other in canonical order
 *       (the order of their canonical text, below), so every replica picks
 *       the same order whichever side it calls ours;
 *     · neither changed its length (element edits in place) → merged
 *       element by element, recursively (two people editing different
 *       fields of item 3 merge);
 *     · otherwise → a conflict at the region's first base index.
 * - Anything else changed differently on both sides — two scalars, a
 *   record against a list, a link (`{"/": cid}`, always atomic), bytes —
 *   conflicts at its path.
 *
 * Determinism: the result depends only on the three values, never on time,
 * randomness or the order of a record's keys, so every replica computes the
 * same merge. merge(b, x, y) and merge(b, y, x) both refuse or give the same
 * value. merge(b, x, b) = x, merge(b, b, y) = y, merge(b, x, x) = x.
 *
 * Limits: a value passed through a call holds at most 8,192 items (the
 * kernel's bound on a call's arguments), and at most 64 levels deep (the
 * decoder's). Called another way, nesting past 1,000 levels is refused. The
 * exact LCS runs only on regions without unique anchors and of at most 4
 * million cells (8 MiB); a larger such region is treated as one changed
 * hunk (sound, only coarser: it may conflict where a finer diff would not).
 * Equal elements are identical to the merge: two people adding the same
 * item at the same place add it once. Cost: a 5,000-element list with
 * 1,000 changes on each side merges in about 20–30 ms, a 5,000-key record
 * in about 14 ms (bench/merges.ts, on a loaded 2-core machine).
 */

const MAX_DEPTH = 1000;
const MAX_LISTED = 20;
const MAX_REASON_CHARS = 440;
const MAX_PATH_CHARS = 100;
const DP_CELLS = 4_000_000;
const MAX_BUCKET = 8;

const MISSING = Object.freeze({ missing: true });

const isBytes = (value) => ArrayBuffer.isView(value);
const isLink = (value) => {
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === '/' && typeof value['/'] === 'string';
};
/** 'missing', 'list', 'record', or 'atom' (scalars, bytes, links). */
const kindOf = (value) => {
  if (value === MISSING) return 'missing';
  if (value === null || typeof value !== 'object' || isBytes(value)) return 'atom';
  if (Array.isArray(value)) return 'list';
  return isLink(value) ? 'atom' : 'record';
};

const equal = (a, b) => {
  if (a === b) return typeof a !== 'number' || Object.is(a, b) || a !== 0; // 0 and -0 differ (as their bytes do)
  if (typeof a === 'number' && typeof b === 'number') return false; // NaN is not grid data
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object' || a === MISSING || b === MISSING) return false;
  if (isBytes(a) || isBytes(b)) {
    if (!isBytes(a) || !isBytes(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
    return true;
  }
  const list = Array.isArray(a);
  if (list !== Array.isArray(b)) return false;
  if (list) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i += 1) if (!equal(a[i], b[i])) return false;
    return true;
  }
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) if (!Object.hasOwn(b, key) || !equal(a[key], b[key])) return false;
  return true;
};

/**
 * Canonical text of a value: equal values (as `equal` sees them) and only
 * they have the same text, and its string order is the canonical order the
 * insertion tie-break uses.
 */
const canonical = (value) => {
  if (value === null) return 'n';
  switch (typeof value) {
    case 'boolean':
      return value ? 't' : 'f';
    case 'number':
      return Object.is(value, -0) ? 'd-0' : `d${value}`;
    case 'bigint':
      return `i${value}`;
    case 'string':
      return `s${JSON.stringify(value)}`;
    default:
  }
  if (isBytes(value)) {
    let hex = 'x';
    for (let i = 0; i < value.length; i += 1) hex += (value[i] < 16 ? '0' : '') + value[i].toString(16);
    return hex;
  }
  // Built by concatenation: no arrays made per value (this is the list merge's hot path).
  if (Array.isArray(value)) {
    let text = '[';
    for (let i = 0; i < value.length; i += 1) text += (i === 0 ? '' : ',') + canonical(value[i]);
    return `${text}]`;
  }
  const keys = Object.keys(value);
  if (keys.length > 1) keys.sort();
  let text = '{';
  for (let i = 0; i < keys.length; i += 1) text += `${i === 0 ? '' : ','}${JSON.stringify(keys[i])}:${canonical(value[keys[i]])}`;
  return `${text}}`;
};

/**
 * A 32-bit structural hash, equal for equal values (a record's hash does not
 * depend on its keys' order): the list merge numbers elements by hash, then
 * by `equal` within a hash, without building text for each.
 */
const mix = (h, x) => Math.imul(h ^ x, 0x01000193) >>> 0;
const hashText = (h, text) => {
  for (let i = 0; i < text.length; i += 1) h = mix(h, text.charCodeAt(i));
  return h;
};
const hash = (value) => {
  if (value === null) return 1;
  switch (typeof value) {
    case 'boolean':
      return value ? 2 : 3;
    case 'number':
      return Object.is(value, -0) ? 4 : hashText(5, String(value));
    case 'bigint':
      return hashText(6, String(value));
    case 'string':
      return hashText(7, value);
    default:
  }
  if (isBytes(value)) {
    let h = 8;
    for (let i = 0; i < value.length; i += 1) h = mix(h, value[i]);
    return h;
  }
  if (Array.isArray(value)) {
    let h = 9;
    for (let i = 0; i < value.length; i += 1) h = mix(h, hash(value[i]));
    return h;
  }
  let sum = 0;
  const keys = Object.keys(value);
  for (let i = 0; i < keys.length; i += 1) sum = (sum + mix(hashText(10, keys[i]), hash(value[keys[i]]))) >>> 0;
  return mix(mix(11, keys.length), sum);
};

const own = (record, key) => (Object.hasOwn(record, key) ? record[key] : MISSING);
const pointer = (path, segment) => `${path}/${String(segment).replace(/~/g, '~0').replace(/\//g, '~1')}`;

/** The conflicts found so far: every path (at most one per item of the input). */
const makeConflicts = () => ({ paths: [], count: 0 });
const conflict = (conflicts, path) => {
  conflicts.count += 1;
  conflicts.paths.push(path);
};

const show = (path) => {
  if (path === '') return 'the root';
  // eslint-disable-next-line no-control-regex
  const flat = path.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return flat.length > MAX_PATH_CHARS ? `${flat.slice(0, MAX_PATH_CHARS - 1)}…` : flat;
};
/** Document order of two paths: segment by segment, list indexes as numbers. */
const byPath = (a, b) => {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < x.length && i < y.length; i += 1) {
    if (x[i] === y[i]) continue;
    // Digit strings first, by length then text (so 9 < 10); then other text. A total order.
    const dx = /^\d+$/.test(x[i]);
    const dy = /^\d+$/.test(y[i]);
    if (dx !== dy) return dx ? -1 : 1;
    if (dx && x[i].length !== y[i].length) return x[i].length - y[i].length;
    return x[i] < y[i] ? -1 : 1;
  }
  return x.length - y.length;
};
/** The one-line reason for `conflicts`, prefixed with `what`. */
export const describeConflicts = (what, conflicts) => {
  let reason = `${what}: conflicting changes at `;
  let listed = 0;
  // Sorted, so the paths named do not depend on the order the merge met them (nor on which side is ours).
  for (const path of [...conflicts.paths].sort(byPath).slice(0, MAX_LISTED)) {
    const next = `${listed === 0 ? '' : ', '}${show(path)}`;
    if (listed > 0 && reason.length + next.length > MAX_REASON_CHARS) break;
    reason += next;
    listed += 1;
  }
  return listed < conflicts.count ? `${reason} and ${conflicts.count - listed} more` : reason;
};

// ---- lists: a diff of each side against the base ----

/**
 * For each base index, the index of the side element it is matched to, or
 * -1 (x[i] = y[match[i]], increasing): common prefix and suffix, then
 * patience anchors (ids occurring once in each range, the longest increasing
 * run of them), then, in a range with no anchor, an exact LCS when it is
 * small enough. Ranges are worked through a stack, so no input deepens the
 * JS stack.
 */
const matches = (x, y) => {
  const match = new Int32Array(x.length).fill(-1);
  const stack = [0, x.length, 0, y.length];
  while (stack.length > 0) {
    let ye = stack.pop();
    let ys = stack.pop();
    let xe = stack.pop();
    let xs = stack.pop();
    while (xs < xe && ys < ye && x[xs] === y[ys]) match[xs++] = ys++;
    while (xe > xs && ye > ys && x[xe - 1] === y[ye - 1]) match[--xe] = --ye;
    if (xs === xe || ys === ye) continue;
    const anchors = uniqueAnchors(x, xs, xe, y, ys, ye);
    if (anchors.length > 0) {
      let px = xs;
      let py = ys;
      for (let k = 0; k < anchors.length; k += 2) {
        const i = anchors[k];
        const j = anchors[k + 1];
        match[i] = j;
        if (i > px && j > py) stack.push(px, i, py, j);
        px = i + 1;
        py = j + 1;
      }
      if (xe > px && ye > py) stack.push(px, xe, py, ye);
    } else if ((xe - xs + 1) * (ye - ys + 1) <= DP_CELLS) {
      exactLcs(x, xs, xe, y, ys, ye, match);
    }
  }
  return match;
};

/** Ids occurring exactly once in x[xs..xe) and once in y[ys..ye): the longest run increasing in both, as [i, j, i, j, …]. */
const uniqueAnchors = (x, xs, xe, y, ys, ye) => {
  const inX = new Map();
  for (let i = xs; i < xe; i += 1) inX.set(x[i], inX.has(x[i]) ? -1 : i);
  const inY = new Map();
  for (let j = ys; j < ye; j += 1) if (inX.has(y[j]) && inX.get(y[j]) >= 0) inY.set(y[j], inY.has(y[j]) ? -1 : j);
  const pairs = [];
  for (let i = xs; i < xe; i += 1) {
    const j = inY.get(x[i]);
    if (j !== undefined && j >= 0 && inX.get(x[i]) === i) pairs.push([i, j]);
  }
  if (pairs.length === 0) return pairs;
  // Longest increasing subsequence of j (pairs are in increasing i), by patience sorting.
  const tails = [];
  const previous = new Array(pairs.length);
  for (let k = 0; k < pairs.length; k += 1) {
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (pairs[tails[mid]][1] < pairs[k][1]) lo = mid + 1;
      else hi = mid;
    }
    previous[k] = lo > 0 ? tails[lo - 1] : -1;
    tails[lo] = k;
  }
  const run = new Array(2 * tails.length);
  let at = run.length;
  for (let k = tails[tails.length - 1]; k >= 0; k = previous[k]) {
    run[--at] = pairs[k][1];
    run[--at] = pairs[k][0];
  }
  return run;
};

const exactLcs = (x, xs, xe, y, ys, ye, match) => {
  const n = xe - xs;
  const m = ye - ys;
  const width = m + 1;
  const table = n < 65535 && m < 65535 ? new Uint16Array((n + 1) * width) : new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i -= 1) {
    for (let j = m - 1; j >= 0; j -= 1) {
      table[i * width + j] = x[xs + i] === y[ys + j] ? table[(i + 1) * width + j + 1] + 1 : Math.max(table[(i + 1) * width + j], table[i * width + j + 1]);
    }
  }
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (x[xs + i] === y[ys + j]) match[xs + i++] = ys + j++;
    else if (table[(i + 1) * width + j] >= table[i * width + j + 1]) i += 1;
    else j += 1;
  }
};

/**
 * A side's hunks against the base: base[s..e) became side[from..to), in
 * order, never touching each other, each with the slots it occupies (below).
 */
const hunks = (baseIds, sideIds, side) => {
  const match = matches(baseIds, sideIds);
  const out = [];
  let i0 = 0;
  let j0 = 0;
  const add = (i, j) => {
    if (i > i0 || j > j0) out.push({ s: i0, e: i, from: j0, to: j, side, lo: i0 === i ? 2 * i0 : 2 * i0 + 1, hi: i0 === i ? 2 * i0 : 2 * i - 1 });
  };
  for (let i = 0; i < match.length; i += 1) {
    if (match[i] < 0) continue;
    add(i, match[i]);
    i0 = i + 1;
    j0 = match[i] + 1;
  }
  add(baseIds.length, sideIds.length);
  return out;
};

/**
 * The base as 2n+1 slots (gap 0, element 0, gap 1, …): an insertion at gap g
 * occupies slot 2g; a hunk over base[s..e) the slots of its elements and the
 * gaps between them (lo..hi), not the gaps at its ends. Hunks of the two
 * sides whose slots meet are one region.
 */

const mergeList = (base, ours, theirs, path, depth, conflicts) => {
  // Elements numbered so that equal elements, and only they, share a number.
  // A hash shared by more than a few different values (crafted collisions)
  // switches to canonical text for that hash, so no input makes this quadratic.
  const buckets = new Map(); // hash → [value, id, value, id, …] or a Map canonical text → id
  let count = 0;
  const idOf = (value) => {
    const h = hash(value);
    const bucket = buckets.get(h);
    if (bucket === undefined) {
      buckets.set(h, [value, count]);
      return count++;
    }
    if (bucket instanceof Map) {
      const text = canonical(value);
      const id = bucket.get(text);
      if (id !== undefined) return id;
      bucket.set(text, count);
      return count++;
    }
    for (let k = 0; k < bucket.length; k += 2) if (equal(bucket[k], value)) return bucket[k + 1];
    if (bucket.length < 2 * MAX_BUCKET) bucket.push(value, count);
    else {
      const byText = new Map();
      for (let k = 0; k < bucket.length; k += 2) byText.set(canonical(bucket[k]), bucket[k + 1]);
      byText.set(canonical(value), count);
      buckets.set(h, byText);
    }
    return count++;
  };
  const idsOf = (list) => list.map(idOf);
  const baseIds = idsOf(base);
  // Both sides' hunks by their first slot (each side's are in order already).
  const mine = hunks(baseIds, idsOf(ours), 0);
  const yours = hunks(baseIds, idsOf(theirs), 1);
  const all = [];
  for (let p = 0, q = 0; p < mine.length || q < yours.length; ) {
    all.push(q === yours.length || (p < mine.length && mine[p].lo <= yours[q].lo) ? mine[p++] : yours[q++]);
  }
  const sides = [ours, theirs];
  const out = [];
  let at = 0;
  for (let k = 0; k < all.length; ) {
    const group = [all[k]];
    let reach = all[k].hi;
    const s = all[k].s;
    let e = all[k].e;
    let oneSide = true;
    for (k += 1; k < all.length && all[k].lo <= reach; k += 1) {
      group.push(all[k]);
      reach = Math.max(reach, all[k].hi);
      e = Math.max(e, all[k].e);
      oneSide &&= all[k].side === group[0].side;
    }
    for (; at < s; at += 1) out.push(base[at]);
    at = e;
    if (oneSide) {
      // One hunk (a side's own hunks never meet): its elements.
      const { side, from, to } = group[0];
      for (let j = from; j < to; j += 1) out.push(sides[side][j]);
      continue;
    }
    const version = (side) => {
      const items = [];
      let i = s;
      for (const hunk of group) {
        if (hunk.side !== side) continue;
        for (; i < hunk.s; i += 1) items.push(base[i]);
        for (let j = hunk.from; j < hunk.to; j += 1) items.push(sides[side][j]);
        i = hunk.e;
      }
      for (; i < e; i += 1) items.push(base[i]);
      return items;
    };
    const a = version(0);
    const b = version(1);
    if (equal(a, b)) out.push(...a);
    else if (s === e) out.push(...bothInserted(a, b));
    else if (a.length === e - s && b.length === e - s) {
      for (let i = 0; i < a.length; i += 1) out.push(mergeValue(base[s + i], a[i], b[i], path, s + i, depth + 1, conflicts));
    } else conflict(conflicts, pointer(path, s));
  }
  for (; at < base.length; at += 1) out.push(base[at]);
  return out;
};

/** Two different insertions at one gap: shared ends once, the differing middles in canonical order. */
const bothInserted = (a, b) => {
  let head = 0;
  while (head < a.length && head < b.length && equal(a[head], b[head])) head += 1;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && equal(a[a.length - 1 - tail], b[b.length - 1 - tail])) tail += 1;
  const midA = a.slice(head, a.length - tail);
  const midB = b.slice(head, b.length - tail);
  const [first, second] = canonical(midA) <= canonical(midB) ? [midA, midB] : [midB, midA];
  return [...a.slice(0, head), ...first, ...second, ...a.slice(a.length - tail)];
};

// ---- values and records ----

/** `segment` under `parent` (the root when undefined): the path is built only where it is needed. */
const mergeValue = (base, ours, theirs, parent, segment, depth, conflicts) => {
  if (equal(ours, theirs)) return ours;
  if (equal(ours, base)) return theirs;
  if (equal(theirs, base)) return ours;
  const path = segment === undefined ? parent : pointer(parent, segment);
  if (depth > MAX_DEPTH) throw new RangeError(`json merge: values nested deeper than ${MAX_DEPTH} levels`);
  const kind = kindOf(ours);
  if (kind === kindOf(theirs) && (base === MISSING || kindOf(base) === kind)) {
    if (kind === 'record') return mergeRecord(base === MISSING ? {} : base, ours, theirs, path, depth, conflicts);
    if (kind === 'list') return mergeList(base === MISSING ? [] : base, ours, theirs, path, depth, conflicts);
  }
  conflict(conflicts, path);
  return ours;
};

const mergeRecord = (base, ours, theirs, path, depth, conflicts) => {
  // Keys in no particular order: the result's order is the encoder's, and conflicts are sorted when reported.
  const entries = [];
  const take = (key) => {
    const value = mergeValue(own(base, key), own(ours, key), own(theirs, key), path, key, depth + 1, conflicts);
    if (value !== MISSING) entries.push([key, value]);
  };
  for (const key of Object.keys(base)) take(key);
  for (const key of Object.keys(ours)) if (!Object.hasOwn(base, key)) take(key);
  for (const key of Object.keys(theirs)) if (!Object.hasOwn(base, key) && !Object.hasOwn(ours, key)) take(key);
  // fromEntries defines each key as data: a `__proto__` key stays a key.
  return Object.fromEntries(entries);
};

/**
 * The merge step. Refuses (never throws) on conflicts, naming their paths,
 * and on values nested too deep.
 */
export const merge = (ctx, base, ours, theirs) => {
  const conflicts = makeConflicts();
  let merged;
  try {
    merged = mergeValue(base, ours, theirs, '', undefined, 0, conflicts);
  } catch (error) {
    if (error instanceof RangeError) ctx.revoke(error.message);
    throw error;
  }
  if (conflicts.count > 0) ctx.revoke(describeConflicts('json merge', conflicts));
  return merged;
};
