// A shared text: a document whose value is a string, edited by replacing it
// or splicing it. Concurrent edits merge with the shipped `text` step (an
// Automerge text merge in the kernel), so two people typing in different
// places both keep their words.
//
//   grid publish examples/text.js
//   grid doc create examples/text.js --reducer update --merge text --name notes
//   grid doc apply notes '{"set":"Hello world"}'
//   grid doc apply notes '{"splice":[5,0,","]}'        # "Hello, world"
//
// As an app opened by URL (README: Applications by URL), whose text area
// sends { set: true, value: text } when it changes:
//
//   grid app publish examples/text.js --merge text --name notes
//
// Changes: { set: text } replaces the whole text; { splice: [index,
// deleteCount, insertText] } deletes deleteCount code units at index (UTF-16
// code units, as JavaScript strings count them) and inserts insertText there.
// An index or a range past the end, or one that would split a character
// written as a surrogate pair (an emoji, say), is refused. The text is at most
// 256 KiB in UTF-8, so a reducer call carrying the text and a `set` of the
// same size, or a merge carrying three copies, stays within one call's bound
// (1 MiB).

const MAX_TEXT_BYTES = 256 * 1024;

export const init = () => '';

const show = (value) => {
  if (typeof value === 'string') {
    const cut = value.length > 60 ? `${value.slice(0, 60)}…` : value;
    return JSON.stringify(cut).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
  }
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return `a list of ${value.length}`;
  if (ArrayBuffer.isView(value)) return 'bytes';
  return `a record with keys ${Object.keys(value).slice(0, 5).map(show).join(', ') || '(none)'}`;
};

/** UTF-8 length of a string (a lone surrogate counts 3, as its replacement would). */
const utf8Length = (text) => {
  let bytes = 0;
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4;
      i += 1;
    } else bytes += 3;
  }
  return bytes;
};

/** Whether `at` falls between the two halves of a surrogate pair. */
const splitsPair = (text, at) => at > 0 && at < text.length && (text.charCodeAt(at - 1) & 0xfc00) === 0xd800 && (text.charCodeAt(at) & 0xfc00) === 0xdc00;

const bounded = (ctx, text) => {
  const bytes = utf8Length(text);
  if (bytes > MAX_TEXT_BYTES) ctx.revoke(`text: the text would be ${bytes} bytes, over its limit of ${MAX_TEXT_BYTES} (256 KiB)`);
  return text;
};

const isCount = (n) => Number.isSafeInteger(n) && n >= 0;

/** The page's text area change, { set: true, value: text }, as the change it stands for. */
const fromPage = (change) =>
  change !== null && typeof change === 'object' && change.set === true && Object.keys(change).length === 2 && Object.hasOwn(change, 'value') ? { set: change.value } : change;

export const update = (ctx, state, given) => {
  const change = fromPage(given);
  if (typeof state !== 'string') ctx.revoke(`text: the state is not a string (got ${show(state)})`);
  const SHAPE = 'a change is {"set": text} or {"splice": [index, deleteCount, insertText]}';
  if (change === null || typeof change !== 'object' || Array.isArray(change) || Object.keys(change).length !== 1) ctx.revoke(`text: ${SHAPE} (got ${show(change)})`);
  if (Object.hasOwn(change, 'set')) {
    if (typeof change.set !== 'string') ctx.revoke(`text: "set" takes a string (got ${show(change.set)})`);
    return bounded(ctx, change.set);
  }
  if (!Object.hasOwn(change, 'splice')) ctx.revoke(`text: ${SHAPE} (got ${show(change)})`);
  const splice = change.splice;
  if (!Array.isArray(splice) || splice.length !== 3) ctx.revoke(`text: "splice" takes [index, deleteCount, insertText] (got ${show(splice)})`);
  const [index, count, insert] = splice;
  if (!isCount(index)) ctx.revoke(`text: a splice's index is a whole number ≥ 0 (got ${show(index)})`);
  if (!isCount(count)) ctx.revoke(`text: a splice's deleteCount is a whole number ≥ 0 (got ${show(count)})`);
  if (typeof insert !== 'string') ctx.revoke(`text: a splice's insertText is a string (got ${show(insert)})`);
  if (index > state.length) ctx.revoke(`text: splice index ${index} is past the end of the text (length ${state.length})`);
  if (index + count > state.length) ctx.revoke(`text: splice deletes ${count} at ${index}, past the end of the text (length ${state.length})`);
  if (splitsPair(state, index)) ctx.revoke(`text: splice index ${index} falls inside a surrogate pair`);
  if (splitsPair(state, index + count)) ctx.revoke(`text: splice range ${index}..${index + count} ends inside a surrogate pair`);
  return bounded(ctx, state.slice(0, index) + insert + state.slice(index + count));
};

export const view = (ctx, state) => [
  'main', { class: 'text' },
  ['h1', {}, 'Notes'],
  ['textarea', { name: 'text', rows: 16, value: state, 'aria-label': 'the shared text', on: { change: { set: true } } }],
  ['p', {}, `${state.length} characters; saved when you leave the box`],
];
