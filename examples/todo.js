// A shared todo list: a document whose value is { items: [{ text, done }] }
// and changes only through `update`. Two replicas that add items, tick them
// off or remove them concurrently merge with the shipped `json` step (items
// are compared whole, so edits of different items and additions merge;
// removing an item the other side ticked off is a conflict for a person).
//
//   grid publish examples/todo.js
//   grid doc create examples/todo.js --reducer update --merge json --name todos
//   grid doc apply todos '{"add":"buy milk"}'
//   grid doc apply todos '{"done":"buy milk"}'
//   grid doc apply todos '{"remove":"buy milk"}'
//
// As an app opened by URL (README: Applications by URL):
//
//   grid app publish examples/todo.js --merge json --name todo
//
// Changes: { add: text } appends a not-done item; { done: text } marks the
// first not-done item with that text done; { remove: text } removes the first
// item with that text. A change that does not fit is refused with the reason.
// The app page's form sends { add: true, form: { text } }: it adds the text.
// Limits keep three copies of the list (a merge's base, ours and theirs)
// within one call's bounds (8,192 items, 1 MiB).

const MAX_ITEMS = 500;
const MAX_TEXT = 200; // UTF-16 code units

export const init = () => ({ items: [] });

const show = (value) => {
  if (typeof value === 'string') {
    const cut = value.length > 60 ? `${value.slice(0, 60)}…` : value;
    return JSON.stringify(cut).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
  }
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return 'a list';
  if (ArrayBuffer.isView(value)) return 'bytes';
  return `a record with keys ${Object.keys(value).slice(0, 5).map(show).join(', ') || '(none)'}`;
};

const SHAPE = 'a change is {"add": text}, {"done": text} or {"remove": text}';

const textOf = (ctx, text) => {
  if (typeof text !== 'string' || text.length === 0) ctx.revoke(`todo: an item's text is a non-empty string (got ${show(text)})`);
  if (text.length > MAX_TEXT) ctx.revoke(`todo: an item's text is at most ${MAX_TEXT} characters (got ${text.length})`);
  return text;
};

/** The page's form submit, { add: true, form: { text } }, as the change it stands for. */
const fromPage = (change) =>
  change !== null && typeof change === 'object' && change.add === true && change.form !== null && typeof change.form === 'object' && Object.keys(change).length === 2
    ? { add: change.form.text }
    : change;

export const update = (ctx, state, given) => {
  const change = fromPage(given);
  if (state === null || typeof state !== 'object' || !Array.isArray(state.items)) ctx.revoke(`todo: the state is not {"items": [...]} (got ${show(state)})`);
  const bad = state.items.findIndex((item) => item === null || typeof item !== 'object' || typeof item.text !== 'string' || typeof item.done !== 'boolean');
  if (bad >= 0) ctx.revoke(`todo: the state's item ${bad} is not {"text": text, "done": boolean} (got ${show(state.items[bad])})`);
  if (change === null || typeof change !== 'object' || Array.isArray(change) || Object.keys(change).length !== 1) ctx.revoke(`todo: ${SHAPE} (got ${show(change)})`);
  const { items } = state;
  const [verb] = Object.keys(change);
  if (verb === 'add') {
    const text = textOf(ctx, change.add);
    if (items.length >= MAX_ITEMS) ctx.revoke(`todo: the list holds ${MAX_ITEMS} items, its limit; remove some first`);
    return { items: [...items, { text, done: false }] };
  }
  if (verb === 'done') {
    const text = textOf(ctx, change.done);
    const at = items.findIndex((item) => item.text === text && item.done !== true);
    if (at < 0) ctx.revoke(`todo: no item left to do reads ${show(text)}`);
    return { items: items.map((item, i) => (i === at ? { text, done: true } : item)) };
  }
  if (verb === 'remove') {
    const text = textOf(ctx, change.remove);
    const at = items.findIndex((item) => item.text === text);
    if (at < 0) ctx.revoke(`todo: no item reads ${show(text)}`);
    return { items: items.filter((_, i) => i !== at) };
  }
  return ctx.revoke(`todo: ${SHAPE} (got ${show(change)})`);
};

export const view = (ctx, state) => {
  const left = state.items.filter((item) => !item.done).length;
  return [
    'main', { class: 'todo' },
    ['h1', {}, 'Todo'],
    ['form', { on: { submit: { add: true } } },
      ['input', { name: 'text', placeholder: 'something to do', maxlength: MAX_TEXT, required: true, 'aria-label': 'something to do' }],
      ['button', { type: 'submit' }, 'add']],
    ['ul', {}, state.items.map((item) => [
      'li', { class: item.done ? 'done' : 'open' },
      ['span', {}, item.text], ' ',
      item.done ? null : ['button', { on: { click: { done: item.text } } }, 'done'], ' ',
      ['button', { on: { click: { remove: item.text } } }, 'remove'],
    ])],
    ['p', {}, state.items.length === 0 ? 'Nothing to do.' : `${left} of ${state.items.length} left`],
  ];
};
