/**
 * Union merge for append-only data (a chat log, an event list, a set kept
 * as a record): a shipped step of a document's merge cascade.
 *
 *   export const merge = (ctx, base, ours, theirs) => merged
 *
 * Lists. Each side must be the base with some items removed (the rest in
 * their order) followed by items it appended. The merge keeps the base items
 * neither side removed, in base order, then the appended items:
 * - an item both sides appended is kept once (as multisets: appended twice
 *   on one side and once on the other, it appears twice);
 * - the two sides' appended runs keep their own order and follow each other
 *   in canonical order (the run whose canonical text sorts first comes
 *   first, the other's remaining items after it), so every replica builds
 *   the same list whichever head it calls ours.
 * A side that inserted before existing items, moved them or edited one
 * (an edit reads as an insertion before the items after it) rewrote history:
 * the merge refuses, naming the side and the path, e.g.
 *   union merge: theirs rewrote history at /log/3 (an item inserted before existing ones)
 * Items are compared whole, by deep equality; an appended item equal to a
 * base item before the last one the side kept is a new item (a repeated
 * message), not a move. One equal to a later base item reads as an insertion
 * before it (refused): removing an item and appending an equal one in the same
 * change cannot be told from moving it. An edit of the last item reads as
 * its removal and an appended item.
 *
 * Records merge key by key as a set: a key added by either side is kept
 * (added on both with different values: list or record values merge as if
 * from empty, others refuse), a key removed by either side stays removed
 * (refused if the other side changed what was under it), and a key kept by
 * both merges its values by these same rules. A scalar, byte string or link
 * changed by either side is history rewritten: refused.
 *
 * Deterministic, and symmetric: merge(b, x, y) and merge(b, y, x) both refuse
 * or give the same value. Limits as the JSON merge's (8,192 items a call,
 * nesting refused past 1,000 levels); the work is linear in the items but for
 * sorting.
 */

const MAX_DEPTH = 1000;
const MISSING = Object.freeze({ missing: true });

const isBytes = (value) => ArrayBuffer.isView(value);
const isLink = (value) => {
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === '/' && typeof value['/'] === 'string';
};
const kindOf = (value) => {
  if (value === MISSING) return 'missing';
  if (value === null || typeof value !== 'object' || isBytes(value)) return 'atom';
  if (Array.isArray(value)) return 'list';
  return isLink(value) ? 'atom' : 'record';
};

/** Canonical text: equal grid values, and only they, have the same text; its string order is the canonical order. */
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
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(value[key])}`).join(',')}}`;
};

const own = (record, key) => (Object.hasOwn(record, key) ? record[key] : MISSING);
const pointer = (path, segment) => `${path}/${String(segment).replace(/~/g, '~0').replace(/\//g, '~1')}`;
const show = (path) => {
  if (path === '') return 'the root';
  // eslint-disable-next-line no-control-regex
  const flat = path.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return flat.length > 100 ? `${flat.slice(0, 99)}…` : flat;
};

class Refusal extends Error {}
const refuse = (side, path, what) => {
  throw new Refusal(`union merge: ${side} ${what} at ${show(path)}`);
};

/**
 * How `side` (texts of its items) keeps the base: which base indexes it kept,
 * and from where on its items are appended. Kept items are matched to the
 * earliest base occurrence after the last one matched.
 */
const readSide = (baseTexts, texts, name, path) => {
  const positions = new Map();
  baseTexts.forEach((text, i) => {
    const list = positions.get(text);
    if (list) list.push(i);
    else positions.set(text, [i]);
  });
  const cursor = new Map(); // text → next index into its positions
  const kept = new Set();
  let next = 0; // first base index not yet passed
  let appendFrom = texts.length;
  for (let j = 0; j < texts.length; j += 1) {
    const list = positions.get(texts[j]);
    let k = cursor.get(texts[j]) ?? 0;
    while (list && k < list.length && list[k] < next) k += 1;
    if (!list || k === list.length) {
      appendFrom = j;
      break;
    }
    cursor.set(texts[j], k + 1);
    kept.add(list[k]);
    next = list[k] + 1;
  }
  // Appended items are new; one equal to a base item not yet passed was inserted before it (or moved).
  for (let j = appendFrom; j < texts.length; j += 1) {
    const list = positions.get(texts[j]);
    if (list && list[list.length - 1] >= next) refuse(name, pointer(path, appendFrom), 'rewrote history (an item inserted before existing ones, moved or edited)');
  }
  return { kept, appended: texts.slice(appendFrom), appendFrom };
};

const unionList = (base, ours, theirs, path) => {
  const baseTexts = base.map(canonical);
  const ourTexts = ours.map(canonical);
  const theirTexts = theirs.map(canonical);
  const a = readSide(baseTexts, ourTexts, 'ours', path);
  const b = readSide(baseTexts, theirTexts, 'theirs', path);
  const out = base.filter((_, i) => a.kept.has(i) && b.kept.has(i));
  // The appended runs: the canonically first whole, then the other's items it does not already hold.
  const runA = { texts: a.appended, items: ours.slice(a.appendFrom) };
  const runB = { texts: b.appended, items: theirs.slice(b.appendFrom) };
  const [first, second] = `[${runA.texts.join(',')}]` <= `[${runB.texts.join(',')}]` ? [runA, runB] : [runB, runA];
  out.push(...first.items);
  const held = new Map();
  for (const text of first.texts) held.set(text, (held.get(text) ?? 0) + 1);
  second.texts.forEach((text, i) => {
    const count = held.get(text) ?? 0;
    if (count > 0) held.set(text, count - 1);
    else out.push(second.items[i]);
  });
  return out;
};

const unionValue = (base, ours, theirs, path, depth) => {
  if (depth > MAX_DEPTH) throw new Refusal(`union merge: values nested deeper than ${MAX_DEPTH} levels`);
  const kind = kindOf(base);
  if (kind === 'list' || kind === 'record') {
    if (kindOf(ours) !== kind) refuse('ours', path, `replaced a ${kind}`);
    if (kindOf(theirs) !== kind) refuse('theirs', path, `replaced a ${kind}`);
    return kind === 'list' ? unionList(base, ours, theirs, path) : unionRecord(base, ours, theirs, path, depth);
  }
  const same = canonical(base);
  if (canonical(ours) !== same) refuse('ours', path, 'changed a value');
  if (canonical(theirs) !== same) refuse('theirs', path, 'changed a value');
  return base;
};

const unionRecord = (base, ours, theirs, path, depth) => {
  const keys = [...new Set([...Object.keys(base), ...Object.keys(ours), ...Object.keys(theirs)])].sort();
  const entries = [];
  for (const key of keys) {
    const at = pointer(path, key);
    const [b, o, t] = [own(base, key), own(ours, key), own(theirs, key)];
    if (b !== MISSING) {
      if (o === MISSING || t === MISSING) {
        // Removed on one side (or both): stays removed, unless the other side changed it.
        if (o !== MISSING && canonical(o) !== canonical(b)) refuse('ours', at, 'changed what theirs removed');
        if (t !== MISSING && canonical(t) !== canonical(b)) refuse('theirs', at, 'changed what ours removed');
        continue;
      }
      entries.push([key, unionValue(b, o, t, at, depth + 1)]);
    } else if (o === MISSING || t === MISSING) {
      entries.push([key, o === MISSING ? t : o]);
    } else {
      // Added on both sides.
      const kind = kindOf(o);
      if (canonical(o) === canonical(t)) entries.push([key, o]);
      else if (kind === kindOf(t) && kind === 'list') entries.push([key, unionList([], o, t, at)]);
      else if (kind === kindOf(t) && kind === 'record') entries.push([key, unionRecord({}, o, t, at, depth + 1)]);
      else throw new Refusal(`union merge: ours and theirs added different values at ${show(at)}`);
    }
  }
  return Object.fromEntries(entries);
};

/** The merge step: refuses (never throws) when a side rewrote history. */
export const merge = (ctx, base, ours, theirs) => {
  try {
    return unionValue(base, ours, theirs, '', 0);
  } catch (error) {
    if (error instanceof Refusal) ctx.revoke(error.message);
    if (error instanceof RangeError) ctx.revoke(`union merge: ${error.message}`);
    throw error;
  }
};
