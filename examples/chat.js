// A chat room: a document whose value is { messages: [{ from, text }] },
// append-only. Messages said on two disconnected replicas merge with the
// shipped `union` step: both runs of new messages are kept, in one order on
// every replica.
//
//   grid publish examples/chat.js
//   grid doc create examples/chat.js --reducer update --merge union --name room
//   grid doc apply room '{"say":"hello","from":"ann"}'
//
// As an app opened by URL (README: Applications by URL), whose form sends
// { say: true, form: { from, say } }:
//
//   grid app publish examples/chat.js --merge union --name room
//
// `from` is the name the writer gives (the version itself is signed by its
// author, which `grid doc log` shows); the reducer cannot read the caller, as
// it must give the same value on every replica that replays it.
// Limits keep three copies of the room (a merge's base, ours and theirs)
// within one call's bounds (8,192 items, 1 MiB): at most 500 messages and
// 256 KiB of text in all; past them, start a new room.

const MAX_MESSAGES = 500;
const MAX_SAY = 2000; // UTF-16 code units
const MAX_NAME = 64;
const MAX_ROOM_BYTES = 256 * 1024; // UTF-8 bytes of every message's text and name

export const init = () => ({ messages: [] });

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

/** The page's form submit, { say: true, form: { from, say } }, as the change it stands for. */
const fromPage = (change) =>
  change !== null && typeof change === 'object' && change.say === true && change.form !== null && typeof change.form === 'object' && Object.keys(change).length === 2
    ? { say: change.form.say, from: change.form.from }
    : change;

export const update = (ctx, state, given) => {
  const change = fromPage(given);
  if (state === null || typeof state !== 'object' || !Array.isArray(state.messages)) ctx.revoke(`chat: the state is not {"messages": [...]} (got ${show(state)})`);
  const bad = state.messages.findIndex((message) => message === null || typeof message !== 'object' || typeof message.from !== 'string' || typeof message.text !== 'string');
  if (bad >= 0) ctx.revoke(`chat: the state's message ${bad} is not {"from": name, "text": text} (got ${show(state.messages[bad])})`);
  if (change === null || typeof change !== 'object' || Array.isArray(change) || Object.keys(change).length !== 2 || !Object.hasOwn(change, 'say') || !Object.hasOwn(change, 'from')) {
    ctx.revoke(`chat: a change is {"say": text, "from": name} (got ${show(change)})`);
  }
  const { say, from } = change;
  if (typeof say !== 'string' || say.length === 0) ctx.revoke(`chat: "say" is a non-empty string (got ${show(say)})`);
  if (say.length > MAX_SAY) ctx.revoke(`chat: a message is at most ${MAX_SAY} characters (got ${say.length})`);
  if (typeof from !== 'string' || from.length === 0) ctx.revoke(`chat: "from" is a non-empty name (got ${show(from)})`);
  if (from.length > MAX_NAME) ctx.revoke(`chat: a name is at most ${MAX_NAME} characters (got ${from.length})`);
  const { messages } = state;
  if (messages.length >= MAX_MESSAGES) ctx.revoke(`chat: the room holds ${MAX_MESSAGES} messages, its limit; start a new room`);
  let bytes = utf8Length(say) + utf8Length(from);
  for (const message of messages) bytes += utf8Length(message.text) + utf8Length(message.from);
  if (bytes > MAX_ROOM_BYTES) ctx.revoke(`chat: the room would hold ${bytes} bytes of text, over its limit of ${MAX_ROOM_BYTES}; start a new room`);
  return { messages: [...messages, { from, text: say }] };
};

export const view = (ctx, state) => [
  'main', { class: 'chat' },
  ['h1', {}, 'Chat'],
  ['ul', { 'aria-live': 'polite' }, state.messages.map((message) => ['li', {}, ['span', { class: 'from' }, `${message.from}:`], ' ', message.text])],
  state.messages.length === 0 ? ['p', {}, 'No messages yet.'] : null,
  ['form', { on: { submit: { say: true } } },
    ['input', { name: 'from', placeholder: 'your name', maxlength: MAX_NAME, required: true, keep: true, 'aria-label': 'your name' }], ' ',
    ['input', { name: 'say', placeholder: 'say something', maxlength: MAX_SAY, required: true, 'aria-label': 'message' }], ' ',
    ['button', { type: 'submit' }, 'send']],
];
