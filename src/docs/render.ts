/**
 * A document's history and conflicts for people: the text `grid doc log`
 * and `grid doc conflicts` print (and the REPL's `doc.log`/`doc.conflicts`),
 * and the version DAG as Graphviz DOT or Mermaid. Plain functions over what
 * a document token answers (`['log', …]`, `['conflicts']`), so any surface
 * that reaches a token can use them.
 */
import type { GridValue } from '../closures/values.js';
import type { ConflictView } from './documents.js';

/** One version as a document token's `log` answers it. */
export interface LogEntry {
  readonly version: string;
  readonly parents: readonly string[];
  readonly by: 'change' | 'merge' | 'settle' | 'rules';
  /** A merge: the index of the cascade step that made it, and its base. */
  readonly step?: number;
  readonly base?: string | null;
  /** A change or a settlement: who signed it, when, through which delegation. */
  readonly author?: string;
  readonly at?: number;
  readonly via?: string;
  /** Who asked the author's node for it, when someone else did (the author vouches for it). */
  readonly for?: string;
  readonly conflict?: string;
  readonly change?: GridValue;
  /** A rules change: the reducer and merge cascade in force from it on. */
  readonly rules?: GridValue;
}

/** How an id is shown: its pet name, or a short form. */
export type Namer = (id: string) => string;

/** `bafyreiabcde…uvwxyz`: the first 12 and last 6 characters, as the REPL and `grid graph` shorten ids. */
export const shortCid = (id: string) => (id.length > 24 ? `${id.slice(0, 12)}…${id.slice(-6)}` : id);

/** Grid data as one line of JSON (bigints as their digits, bytes by length). */
export const oneLine = (value: unknown, max = 120): string => {
  const text =
    JSON.stringify(value, (_key, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? `<${x.length} bytes>` : x)) ?? String(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
};

const time = (at: number | undefined) => (at === undefined ? '' : new Date(at).toISOString().replace(/\.\d{3}Z$/, 'Z'));

/** What made a version, in a few words: `change by ann`, `merge by step 0`, `settle by ann (conflict …)`. */
const madeBy = (entry: LogEntry, name: Namer) => {
  if (entry.by === 'merge') return `merge by step ${entry.step ?? '?'}`;
  const who = entry.author ? name(entry.author) : 'unknown';
  const through = `${entry.via ? ` via ${name(entry.via)}` : ''}${entry.for ? ` for ${name(entry.for)}` : ''}`;
  return entry.by === 'settle' ? `settle by ${who}${through} (conflict ${shortCid(entry.conflict ?? '')})` : `${entry.by} by ${who}${through}`;
};

/** `grid doc log` as text: one line per version, newest first. */
export const renderLogText = (entries: readonly LogEntry[], name: Namer): string =>
  entries.length === 0
    ? '(no versions: the document holds its initial value)'
    : entries
        .map((entry) =>
          [shortCid(entry.version), madeBy(entry, name), time(entry.at), entry.by === 'change' || entry.by === 'rules' ? oneLine(entry.by === 'change' ? entry.change : entry.rules) : `of ${entry.parents.map(shortCid).join(' + ')}`]
            .filter((part) => part !== '')
            .join('  '),
        )
        .join('\n');

/**
 * The version DAG: each version with what made it, an edge from each parent
 * to it. A parent not in `entries` is the genesis when the log is `complete`,
 * else a version older than the log reached (`…`).
 */
const picture = (entries: readonly LogEntry[], name: Namer, complete: boolean) => {
  const listed = new Set(entries.map((entry) => entry.version));
  const nodes = new Map<string, { label: string; kind: 'change' | 'merge' | 'settle' | 'genesis' | 'older' }>();
  // Oldest first, so diagrams read top to bottom.
  for (const entry of [...entries].reverse()) {
    for (const parent of entry.parents) {
      if (!listed.has(parent) && !nodes.has(parent)) nodes.set(parent, complete ? { label: `genesis ${shortCid(parent)}`, kind: 'genesis' } : { label: `${shortCid(parent)} …`, kind: 'older' });
    }
    const detail = entry.by === 'change' || entry.by === 'rules' ? `\n${oneLine(entry.by === 'change' ? entry.change : entry.rules, 60)}` : '';
    nodes.set(entry.version, { label: `${shortCid(entry.version)}\n${madeBy(entry, name)}${detail}`, kind: entry.by === 'rules' ? 'change' : entry.by });
  }
  const edges = entries.flatMap((entry) => entry.parents.map((parent) => ({ from: parent, to: entry.version, label: entry.by === 'change' ? '' : entry.by })));
  return { nodes, edges };
};

/** Graphviz DOT of the version DAG. */
export const renderLogDot = (entries: readonly LogEntry[], name: Namer, complete: boolean): string => {
  const { nodes, edges } = picture(entries, name, complete);
  const quoted = (text: string) => JSON.stringify(text);
  const styles = { change: 'shape=box', merge: 'shape=box, style=rounded', settle: 'shape=box, style=bold', genesis: 'shape=ellipse', older: 'shape=ellipse, style=dashed' };
  return [
    'digraph document {',
    '  rankdir=TB;',
    ...[...nodes].map(([id, n]) => `  ${quoted(id)} [label=${quoted(n.label)}, ${styles[n.kind]}];`),
    ...edges.map((e) => `  ${quoted(e.from)} -> ${quoted(e.to)}${e.label ? ` [label=${quoted(e.label)}]` : ''};`),
    '}',
  ].join('\n');
};

/** Mermaid `flowchart` of the version DAG; node ids are v0, v1, … with the version as label. */
export const renderLogMermaid = (entries: readonly LogEntry[], name: Namer, complete: boolean): string => {
  const { nodes, edges } = picture(entries, name, complete);
  const ids = new Map([...nodes.keys()].map((id, index) => [id, `v${index}`]));
  // A Mermaid label is a quoted string: quotes and angle brackets as entities, lines as <br/>.
  const label = (text: string) => `"${text.replaceAll('"', '#quot;').replaceAll('<', '#lt;').replaceAll('>', '#gt;').replaceAll('\n', '<br/>')}"`;
  const shapes = { change: ['[', ']'], merge: ['(', ')'], settle: ['[[', ']]'], genesis: ['([', '])'], older: ['([', '])'] } as const;
  return [
    'flowchart TD',
    ...[...nodes].map(([id, n]) => `  ${ids.get(id)}${shapes[n.kind][0]}${label(n.label)}${shapes[n.kind][1]}`),
    ...edges.map((e) => `  ${ids.get(e.from)} -->${e.label ? `|${label(e.label)}|` : ''} ${ids.get(e.to)}`),
  ].join('\n');
};

/** `grid doc conflicts` as text: each open conflict, its heads, and why each cascade step refused. */
export const renderConflicts = (views: readonly ConflictView[], name: Namer): string =>
  views.length === 0
    ? '(no open conflicts)'
    : views
        .map((view) =>
          [
            `conflict ${view.conflict}${view.settled ? ` (settled by ${view.settled})` : ''}`,
            `  document ${view.doc}, since ${time(view.at)}`,
            ...view.heads.map((head) => `  head ${head}`),
            ...view.attempts.map((attempt) => `  step ${attempt.step === 'text' ? 'text' : name(attempt.step)}: ${attempt.code}: ${attempt.reason}`),
          ].join('\n'),
        )
        .join('\n');
