// The app renderer: an application's view — UI as data — turned into DOM,
// safely, and the DOM's events turned back into the changes the view names.
// It has no dependencies, so the app page's host and the tab node can both
// use it (README: Applications by URL).
//
// The data: a node is a string or a finite number (text), null/false/true
// (nothing), a list whose first item is a tag name — [tag, attrs?,
// ...children] — or a list whose first item is not a string (its items,
// in place: `['ul', {}, items.map(...)]`). `attrs` is a plain record of
// allowed attributes and `on`: { click, change, submit: CHANGE }.
//
// Why it is safe whatever the data says: the data is checked and copied in
// full before the DOM is touched (an unknown tag or attribute, a function, a
// cycle or data past a limit refuses the whole render with one line, and the
// page keeps what it showed); elements come only from a fixed list of tags,
// attributes only from a fixed list of names (no `on*`, no `style`, no `id`
// or form `name`, which would let data shadow the document's own
// properties); text goes in only as text nodes; a link's address must parse
// as http:, https: or mailto:; nothing is ever parsed as HTML. Events are
// caught at the root, so no element carries a handler the data could name.

/** Limits, checked while the data is read, before anything is built. */
export const LIMITS = Object.freeze({
  depth: 64,
  nodes: 10_000,
  textChars: 1_000_000,
  attrChars: 4_096,
  changeDepth: 16,
  changeItems: 1_000,
});

export class RenderError extends Error {
  constructor(message) {
    super(message);
    this.name = 'RenderError';
  }
}

const TAGS = new Set([
  'div', 'span', 'p', 'main', 'section', 'header', 'footer', 'nav', 'article', 'aside',
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'ul', 'ol', 'li', 'dl', 'dt', 'dd',
  'strong', 'em', 'b', 'i', 'u', 's', 'small', 'code', 'pre', 'blockquote', 'br', 'hr',
  'table', 'thead', 'tbody', 'tfoot', 'tr', 'th', 'td', 'caption',
  'a', 'button', 'form', 'fieldset', 'legend', 'label', 'input', 'textarea', 'select', 'option', 'progress', 'time',
]);
const VOID = new Set(['br', 'hr', 'input']);
const COMMON = ['class', 'title', 'lang', 'dir', 'role', 'hidden', 'aria-label', 'aria-hidden', 'aria-live'];
const CONTROL = ['name', 'disabled', 'placeholder', 'required', 'readonly', 'autocomplete', 'maxlength', 'minlength', 'size'];
const ATTRS = new Map([
  ['a', ['href']],
  ['button', ['name', 'disabled', 'type', 'value']],
  ['input', [...CONTROL, 'type', 'value', 'checked', 'min', 'max', 'step', 'pattern']],
  ['textarea', [...CONTROL, 'value', 'rows', 'cols', 'wrap']],
  ['select', ['name', 'disabled', 'required', 'multiple', 'size']],
  ['option', ['value', 'selected', 'disabled', 'label']],
  ['ol', ['start', 'reversed']],
  ['td', ['colspan', 'rowspan']],
  ['th', ['colspan', 'rowspan', 'scope']],
  ['progress', ['value', 'max']],
  ['time', ['datetime']],
  ['label', []],
]);
const INPUT_TYPES = new Set(['text', 'search', 'email', 'url', 'tel', 'password', 'number', 'range', 'checkbox', 'radio', 'date', 'time', 'color', 'submit', 'button', 'reset']);
const BUTTON_TYPES = new Set(['submit', 'button', 'reset']);
const BOOLEAN = new Set(['hidden', 'disabled', 'required', 'readonly', 'checked', 'selected', 'multiple', 'reversed']);
const EVENTS = new Set(['click', 'change', 'submit']);
const LINK_PROTOCOLS = new Set(['http:', 'https:', 'mailto:']);
/** `keep`: a control the host leaves filled in after its form's submit is applied. */
const HOST_ATTRS = new Set(['on', 'keep']);

const isRecord = (x) => {
  if (x === null || typeof x !== 'object' || Array.isArray(x)) return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
};
const describe = (x) => (x === null ? 'null' : Array.isArray(x) ? 'a list' : typeof x === 'string' ? JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}…` : x) : typeof x);

/**
 * A copy of `change`, checked to be plain data (what `update` can be sent):
 * strings, finite numbers, booleans, null, lists and plain records.
 */
const copyChange = (change, budget, depth = 0) => {
  if (depth > LIMITS.changeDepth) throw new RenderError(`a change is nested deeper than ${LIMITS.changeDepth}`);
  if ((budget.items += 1) > LIMITS.changeItems) throw new RenderError(`the changes hold more than ${LIMITS.changeItems} items`);
  if (change === null || typeof change === 'boolean') return change;
  if (typeof change === 'string') {
    if ((budget.chars += change.length) > LIMITS.textChars) throw new RenderError(`the view holds more than ${LIMITS.textChars} characters`);
    return change;
  }
  if (typeof change === 'number') {
    if (!Number.isFinite(change)) throw new RenderError(`a change holds ${change}, not a finite number`);
    return change;
  }
  if (Array.isArray(change)) return change.map((item) => copyChange(item, budget, depth + 1));
  if (!isRecord(change)) throw new RenderError(`a change is plain data (got ${describe(change)})`);
  const copy = {};
  for (const key of Object.keys(change)) {
    if ((budget.chars += key.length) > LIMITS.textChars) throw new RenderError(`the view holds more than ${LIMITS.textChars} characters`);
    Object.defineProperty(copy, key, { value: copyChange(change[key], budget, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return copy;
};

const attrText = (tag, name, value) => {
  if (typeof value === 'number' && Number.isFinite(value)) value = String(value);
  if (typeof value !== 'string') throw new RenderError(`<${tag} ${name}> takes text or a number (got ${describe(value)})`);
  if (value.length > LIMITS.attrChars) throw new RenderError(`<${tag} ${name}> is longer than ${LIMITS.attrChars} characters`);
  return value;
};

/** An attribute's value as the element will carry it: checked against the rules for `name` on `tag`. */
const checkAttr = (tag, name, value) => {
  if (BOOLEAN.has(name)) {
    if (typeof value !== 'boolean') throw new RenderError(`<${tag} ${name}> takes true or false (got ${describe(value)})`);
    return value;
  }
  const text = attrText(tag, name, value);
  if (name === 'type' && !(tag === 'input' ? INPUT_TYPES : BUTTON_TYPES).has(text)) throw new RenderError(`<${tag} type=${JSON.stringify(text.slice(0, 40))}> is not allowed`);
  if (name === 'href') {
    let url;
    try {
      url = new URL(text);
    } catch {
      throw new RenderError(`<a href> takes an absolute http:, https: or mailto: address (got ${describe(text)})`);
    }
    if (!LINK_PROTOCOLS.has(url.protocol)) throw new RenderError(`<a href> takes an http:, https: or mailto: address (got ${JSON.stringify(url.protocol)})`);
    return url.href;
  }
  return text;
};

/**
 * Check `data` against the rules and the limits; a plain tree of
 * `{ tag, attrs: Map, on, keep, children }` and strings. Throws RenderError.
 */
export const checkUi = (data) => {
  const budget = { nodes: 0, chars: 0, items: 0 };
  const seen = new Set();
  const node = (x, depth, out) => {
    if (depth > LIMITS.depth) throw new RenderError(`the view is nested deeper than ${LIMITS.depth}`);
    if (x === null || x === undefined || typeof x === 'boolean') return;
    if ((budget.nodes += 1) > LIMITS.nodes) throw new RenderError(`the view has more than ${LIMITS.nodes} nodes`);
    if (typeof x === 'string' || (typeof x === 'number' && Number.isFinite(x))) {
      const text = String(x);
      if ((budget.chars += text.length) > LIMITS.textChars) throw new RenderError(`the view holds more than ${LIMITS.textChars} characters`);
      out.push(text);
      return;
    }
    if (!Array.isArray(x)) throw new RenderError(`a view node is text or a list (got ${describe(x)})`);
    if (seen.has(x)) throw new RenderError('the view refers to itself');
    seen.add(x);
    if (typeof x[0] !== 'string') {
      for (const item of x) node(item, depth + 1, out);
      seen.delete(x);
      return;
    }
    const tag = x[0];
    if (!TAGS.has(tag)) throw new RenderError(`<${tag.slice(0, 40)}> is not an element a view may use`);
    const element = { tag, attrs: new Map(), on: undefined, keep: false, children: [] };
    let rest = 1;
    if (isRecord(x[1])) {
      rest = 2;
      const allowed = ATTRS.get(tag) ?? [];
      for (const name of Object.keys(x[1])) {
        const value = x[1][name];
        if (name === 'on') {
          if (!isRecord(value)) throw new RenderError(`<${tag} on> is a record of events (got ${describe(value)})`);
          element.on = {};
          for (const event of Object.keys(value)) {
            if (!EVENTS.has(event)) throw new RenderError(`<${tag} on.${event.slice(0, 40)}>: a view names click, change or submit`);
            element.on[event] = copyChange(value[event], budget);
          }
        } else if (name === 'keep') {
          if (typeof value !== 'boolean') throw new RenderError(`<${tag} keep> takes true or false (got ${describe(value)})`);
          element.keep = value;
        } else {
          if (!COMMON.includes(name) && !allowed.includes(name)) throw new RenderError(`<${tag} ${name.slice(0, 40)}> is not an attribute a view may use`);
          element.attrs.set(name, checkAttr(tag, name, value));
        }
      }
    } else if (x.length > 1 && x[1] !== null && typeof x[1] === 'object' && !Array.isArray(x[1])) {
      throw new RenderError(`<${tag}>'s attributes are a plain record`);
    }
    if (VOID.has(tag) && x.length > rest) throw new RenderError(`<${tag}> has no children`);
    for (let i = rest; i < x.length; i += 1) node(x[i], depth + 1, element.children);
    if (tag === 'textarea' && element.children.some((child) => typeof child !== 'string')) throw new RenderError('<textarea> holds text only');
    seen.delete(x);
    out.push(element);
  };
  const out = [];
  node(data, 0, out);
  return out;
};

// The DOM methods the renderer uses, taken once: data never reaches them by name.
const createElement = Document.prototype.createElement;
const createTextNode = Document.prototype.createTextNode;
const setAttribute = Element.prototype.setAttribute;
const removeAttribute = Element.prototype.removeAttribute;

/** Per element the renderer made: what it was built from. */
const built = new WeakMap();

const setAttr = (element, name, value) => {
  if (value === false) removeAttribute.call(element, name);
  else setAttribute.call(element, name, value === true ? '' : value);
  // A control's live state follows the view when the view changes it.
  if (name === 'value' && 'value' in element) element.value = value;
  if (name === 'checked' || name === 'selected') element[name] = value === true;
};

const make = (doc, node) => {
  if (typeof node === 'string') return createTextNode.call(doc, node);
  const element = createElement.call(doc, node.tag);
  built.set(element, node);
  if (node.tag === 'a') {
    setAttribute.call(element, 'rel', 'noopener noreferrer');
    setAttribute.call(element, 'target', '_blank');
  }
  for (const [name, value] of node.attrs) if (!(node.tag === 'textarea' && name === 'value')) setAttr(element, name, value);
  if (node.tag === 'textarea') element.value = node.attrs.get('value') ?? node.children.join('');
  else for (const child of node.children) element.append(make(doc, child));
  return element;
};

/**
 * Make `parent`'s children match `nodes`, keeping the elements that stay the
 * same tag in the same place: a control someone is typing in keeps its text
 * and focus when a version from elsewhere re-renders the page.
 */
const patch = (doc, parent, nodes) => {
  const existing = [...parent.childNodes];
  nodes.forEach((node, i) => {
    const old = existing[i];
    if (old && typeof node === 'string' && old.nodeType === 3) {
      if (old.data !== node) old.data = node;
      return;
    }
    const before = old && typeof node !== 'string' ? built.get(old) : undefined;
    if (!before || before.tag !== node.tag) {
      if (old) parent.replaceChild(make(doc, node), old);
      else parent.append(make(doc, node));
      return;
    }
    for (const name of before.attrs.keys()) if (!node.attrs.has(name)) setAttr(old, name, false);
    for (const [name, value] of node.attrs) if (before.attrs.get(name) !== value) setAttr(old, name, value);
    built.set(old, node);
    if (node.tag !== 'textarea') patch(doc, old, node.children);
    else if (!node.attrs.has('value') && before.children.join('') !== node.children.join('')) old.value = node.children.join('');
  });
  for (let i = existing.length - 1; i >= nodes.length; i -= 1) existing[i].remove();
};

/** A control's value as a change carries it: a checkbox's is whether it is checked. */
const controlValue = (control) => (control.type === 'checkbox' ? control.checked === true : String(control.value));

/** A form's named controls' values, as a record (a later control of the same name wins, a checkbox gives true or false, an unchecked radio nothing). */
const formValues = (form) => {
  const values = {};
  for (const control of form.querySelectorAll('input, textarea, select')) {
    const name = control.getAttribute('name');
    if (!name || control.disabled || (control.type === 'radio' && !control.checked)) continue;
    Object.defineProperty(values, name, { value: controlValue(control), enumerable: true, writable: true, configurable: true });
  }
  return values;
};

/** The change an event names: a record change gets `value` (a control's) or `form` (a form's values) added; any other change goes as it is. */
const changeFor = (element, change, kind) => {
  if (!isRecord(change)) return change;
  if (element.tagName === 'FORM') return { ...change, form: formValues(element) };
  if (kind === 'change' && /^(INPUT|TEXTAREA|SELECT)$/.test(element.tagName)) return { ...change, value: controlValue(element) };
  return { ...change };
};

/** A submitted form's text controls emptied, but those the view marks `keep`. */
const clearControls = (form) => {
  for (const control of form.querySelectorAll('input, textarea')) {
    if (!built.get(control)?.keep && !/^(submit|button|reset|checkbox|radio|range|color)$/.test(control.type)) control.value = '';
  }
};

/**
 * A renderer bound to `root`: `render(data)` shows a view (or throws
 * RenderError, showing what it showed before); each click, change or submit
 * the view names calls `dispatch(change)`. `dispatch` may return a promise:
 * a submitted form's controls are cleared (but those with `keep`) once it
 * fulfils. `enabled(false)` stops dispatching, for a read-only page.
 */
export const makeRenderer = (root, dispatch) => {
  const doc = root.ownerDocument;
  let live = true;
  const handle = (event) => {
    if (event.type === 'submit') event.preventDefault();
    for (let element = event.target; element && element !== root; element = element.parentElement) {
      const node = built.get(element);
      if (!node?.on || !Object.hasOwn(node.on, event.type)) continue;
      // A link or button that names a change does that instead of navigating or submitting.
      if (event.type === 'click' && (node.tag === 'a' || node.tag === 'button')) event.preventDefault();
      if (!live) return;
      const change = changeFor(element, node.on[event.type], event.type);
      const outcome = new Promise((resolve) => resolve(dispatch(change)));
      // A refused change is the dispatcher's to report; a submitted form is cleared only once its change is applied.
      outcome.then(() => event.type === 'submit' && clearControls(element), () => {});
      return;
    }
  };
  for (const type of EVENTS) root.addEventListener(type, handle);
  return Object.freeze({
    render: (data) => patch(doc, root, checkUi(data)),
    enabled: (on) => void (live = on === true),
  });
};
