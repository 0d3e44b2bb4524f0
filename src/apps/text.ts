/**
 * An app's view (UI as data, browser/apps/render.js has the shape) as text
 * for a terminal: what `grid run APP` prints. Headings, paragraphs and list
 * items take lines of their own; a control shows as [label] or [x]; each
 * event a view names is shown with the change it applies, so the same
 * change can be given to `grid doc apply`. The text is the app's, so it is
 * cleaned of what a terminal would obey (escape sequences, other control
 * characters, bidirectional overrides) and the same limits as the page's
 * renderer apply.
 */
import { toJsonText } from '../wire/json.js';
import { AppError } from './app.js';

const MAX_DEPTH = 64;
const MAX_NODES = 10_000;
const MAX_CHARS = 1_000_000;
const BLOCK = new Set(['div', 'p', 'main', 'section', 'header', 'footer', 'nav', 'article', 'aside', 'ul', 'ol', 'li', 'dl', 'dt', 'dd', 'pre', 'blockquote', 'table', 'tr', 'form', 'fieldset', 'legend', 'caption', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'br']);
const HEADINGS: Readonly<Record<string, string>> = { h1: '# ', h2: '## ', h3: '### ', h4: '#### ', h5: '##### ', h6: '###### ' };
// C0 and C1 controls (ESC among them), line and paragraph separators, bidirectional embeddings, overrides and isolates.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

const clean = (text: string) => text.replace(UNSAFE, ' ');
const isRecord = (x: unknown): x is Record<string, unknown> => x !== null && typeof x === 'object' && !Array.isArray(x);

export const renderUiText = (ui: unknown): string => {
  const lines: string[] = [];
  let line = '';
  let nodes = 0;
  let chars = 0;
  const write = (text: string) => {
    if ((chars += text.length) > MAX_CHARS) throw new AppError('ERR_VIEW', `the view holds more than ${MAX_CHARS} characters`);
    line += clean(text);
  };
  /** A space between things, one however many the view and the controls ask for. */
  const space = () => {
    if (!/\s$/.test(line)) line += ' ';
  };
  const breakLine = () => {
    if (line.trim() !== '') lines.push(line.trimEnd());
    line = '';
  };
  const walk = (x: unknown, depth: number, indent: string) => {
    if (depth > MAX_DEPTH) throw new AppError('ERR_VIEW', `the view is nested deeper than ${MAX_DEPTH}`);
    if (x === null || x === undefined || typeof x === 'boolean') return;
    if ((nodes += 1) > MAX_NODES) throw new AppError('ERR_VIEW', `the view has more than ${MAX_NODES} nodes`);
    if (typeof x === 'string' && x.trim() === '' && x.length > 0) return space();
    if (typeof x === 'string' || typeof x === 'number') return write(String(x));
    if (!Array.isArray(x)) throw new AppError('ERR_VIEW', `a view node is text or a list (got ${typeof x})`);
    if (typeof x[0] !== 'string') {
      for (const item of x) walk(item, depth + 1, indent);
      return;
    }
    const tag = x[0];
    const attrs = isRecord(x[1]) ? x[1] : {};
    const children = x.slice(isRecord(x[1]) ? 2 : 1);
    const block = BLOCK.has(tag);
    if (block) breakLine();
    if (block && line === '') line = indent;
    if (HEADINGS[tag]) write(HEADINGS[tag]!);
    if (tag === 'li') write('- ');
    const inner = tag === 'ul' || tag === 'ol' ? `${indent}  ` : indent;
    if (tag === 'input') {
      const type = typeof attrs.type === 'string' ? attrs.type : 'text';
      if (type === 'checkbox' || type === 'radio') write(attrs.checked === true ? '[x]' : '[ ]');
      else if (type === 'submit' || type === 'button') write(`[${typeof attrs.value === 'string' ? attrs.value : type}]`);
      else write(`[${typeof attrs.name === 'string' ? `${attrs.name}: ` : ''}${typeof attrs.value === 'string' || typeof attrs.value === 'number' ? attrs.value : typeof attrs.placeholder === 'string' ? `‹${attrs.placeholder}›` : ''}]`);
    } else if (tag === 'textarea') {
      write(`[${typeof attrs.name === 'string' ? `${attrs.name}: ` : ''}`);
      const value = typeof attrs.value === 'string' ? attrs.value : children.filter((c) => typeof c === 'string').join('');
      write(value.length > 200 ? `${value.slice(0, 200)}…` : value);
      write(']');
    } else if (tag === 'hr') write('---');
    else {
      if (tag === 'button') write('[');
      for (const child of children) walk(child, depth + 1, inner);
      if (tag === 'button') write(']');
      if (tag === 'a' && typeof attrs.href === 'string') write(` <${attrs.href}>`);
    }
    if (isRecord(attrs.on)) {
      for (const [event, change] of Object.entries(attrs.on)) write(`${/\s$/.test(line) ? '' : ' '}(${event}: ${toJsonText(change as never)}${tag === 'form' ? ' + form' : event === 'change' ? ' + value' : ''})`);
    }
    if (block) breakLine();
    if (tag !== 'li' && !block && tag !== 'span' && tag !== 'strong' && tag !== 'em' && tag !== 'code' && tag !== 'small' && tag !== 'b' && tag !== 'i') space();
  };
  walk(ui, 0, '');
  breakLine();
  return lines.join('\n');
};
