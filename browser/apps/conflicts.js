// The app page's conflict view: what the merge cascade could not settle,
// put to the person. For each open conflict of the document it shows every
// merge step's attempt and reason, and each head — the app's own view of
// its value (inert: a preview names no change) and the value as text — and,
// on a page whose token may settle (a settle or admin address), a button
// per head to keep it, and one to keep the value the page shows now. A page
// that may not settle says who can: the holder of the document's settle
// token, on the node that holds it.
//
// Everything a conflict carries — values, step names, reasons (an app's own
// merge writes its reason) — goes into the page as text nodes or through
// the renderer's checks (render.js), never as HTML.
import { makeRenderer } from './render.js';

/** Characters of a value shown as text; the rest is cut, saying so. */
const MAX_VALUE_TEXT = 20_000;

const element = (doc, tag, attrs = {}, ...children) => {
  const made = doc.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) made.setAttribute(name, value);
  made.append(...children.filter((child) => child !== undefined && child !== null));
  return made;
};

const shortId = (id) => (id.length > 20 ? `${id.slice(0, 10)}…${id.slice(-6)}` : id);

/** A grid value as JSON-like text: bytes and big integers named, not lost; long values cut. */
export const valueText = (value) => {
  let text;
  try {
    text = JSON.stringify(value, (key, item) => (typeof item === 'bigint' ? `${item}n` : ArrayBuffer.isView(item) ? `<${item.byteLength} bytes>` : item), 2) ?? String(value);
  } catch (error) {
    text = `(cannot show: ${error?.message ?? error})`;
  }
  return text.length > MAX_VALUE_TEXT ? `${text.slice(0, MAX_VALUE_TEXT)}\n… (${text.length - MAX_VALUE_TEXT} more characters)` : text;
};

const when = (ms) => (Number.isFinite(ms) ? new Date(ms).toISOString().replace('T', ' ').slice(0, 19) : '?');

/**
 * A conflict view in `root` (emptied and hidden while there is no conflict).
 * `preview(value)` is the app's view of a value (UI as data); `settle(conflict,
 * choice)` settles, choice `{ pick: HEAD }` or `{ keep: 'current' }`, and
 * reports a refusal itself (it rejects then); `settles` says whether this
 * page may; `owner` is the principal of the node that holds the document.
 */
export const makeConflictView = (root, { preview, settle, settles, owner }) => {
  const doc = root.ownerDocument;
  let shown = '';
  let busy = false;

  const headCard = async (conflict, head, index) => {
    const card = element(doc, 'div', { class: head.current ? 'head current' : 'head' });
    card.dataset.version = head.version;
    card.append(element(doc, 'h3', { title: head.version }, `Version ${index + 1} `, element(doc, 'code', {}, shortId(head.version)), head.current ? ' (shown now)' : ''));
    // Inert: a preview takes no focus, no typing and no clicks; and were one to arrive, its renderer dispatches nothing.
    const box = element(doc, 'div', { class: 'preview', inert: '' });
    card.append(element(doc, 'p', { class: 'caption' }, 'As the app shows it:'), box);
    try {
      const renderer = makeRenderer(box, () => {});
      renderer.enabled(false);
      renderer.render(await preview(head.value));
    } catch (error) {
      box.replaceChildren(element(doc, 'p', { class: 'note' }, `The app cannot show this version: ${String(error?.message ?? error).split('\n')[0].slice(0, 300)}`));
    }
    card.append(element(doc, 'details', {}, element(doc, 'summary', {}, 'as data'), element(doc, 'pre', {}, valueText(head.value))));
    if (settles) {
      const pick = element(doc, 'button', { type: 'button', class: 'pick' }, 'Keep this version');
      pick.addEventListener('click', () => choose(conflict, { pick: head.version }));
      card.append(pick);
    }
    return card;
  };

  const conflictCard = async (conflict) => {
    const card = element(doc, 'article', { class: 'conflict' });
    card.dataset.conflict = conflict.conflict;
    card.append(
      element(doc, 'h2', {}, 'Edits made apart could not be merged'),
      element(doc, 'p', { class: 'note' }, `Conflict `, element(doc, 'code', { title: conflict.conflict }, shortId(conflict.conflict)), ` since ${when(conflict.at)}. Changes wait until it is settled.`),
    );
    const attempts = element(doc, 'ul', { class: 'attempts' });
    for (const attempt of conflict.attempts) attempts.append(element(doc, 'li', {}, element(doc, 'strong', { title: attempt.step }, `step ${shortId(attempt.step)}`), ` ${attempt.code}: ${attempt.reason}`));
    if (conflict.attempts.length === 0) attempts.append(element(doc, 'li', {}, 'the document has no merge steps'));
    card.append(element(doc, 'p', {}, 'What was tried:'), attempts);
    const heads = element(doc, 'div', { class: 'heads' });
    for (const [index, head] of conflict.heads.entries()) heads.append(await headCard(conflict.conflict, head, index));
    card.append(heads);
    if (settles) {
      const keep = element(doc, 'button', { type: 'button', class: 'keep' }, 'Keep the value shown now');
      keep.addEventListener('click', () => choose(conflict.conflict, { keep: 'current' }));
      card.append(keep);
    } else {
      card.append(
        element(
          doc,
          'p',
          { class: 'who' },
          'This page cannot settle it. Whoever holds the document\u2019s settle token can: the owner of the node that holds it, ',
          element(doc, 'code', {}, owner),
          ', with grid doc resolve, or anyone given the app\u2019s settle address.',
        ),
      );
    }
    return card;
  };

  const choose = async (conflict, choice) => {
    if (busy) return;
    busy = true;
    for (const button of root.querySelectorAll('button')) button.disabled = true;
    try {
      await settle(conflict, choice);
    } catch {
      // Reported by `settle`; the buttons come back for another try.
      for (const button of root.querySelectorAll('button')) button.disabled = false;
    } finally {
      busy = false;
    }
  };

  return Object.freeze({
    /** Show `conflicts` (session.conflicts()'s answer); the same ones again leave the view as it is. */
    show: async (conflicts) => {
      const key = JSON.stringify(conflicts.map((c) => [c.conflict, c.heads.map((h) => [h.version, h.current])]));
      if (key === shown) return;
      const cards = [];
      for (const conflict of conflicts) cards.push(await conflictCard(conflict));
      shown = key;
      root.replaceChildren(...cards);
      root.hidden = conflicts.length === 0;
    },
  });
};
