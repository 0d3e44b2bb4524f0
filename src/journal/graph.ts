/**
 * Views of the promise graph: the part that touches one token, and
 * renderings as text, JSON and Graphviz DOT. Pure functions over journal
 * entries, so the CLI, the REPL, the web page and tests share them.
 */
import type { Token } from '../interface/ids.js';
import type { Entry } from './journal.js';

type Namer = (id: string) => string;
/** An id short enough to read in a line: a principal's first 16 and last 4 characters, a CID's first 10 and last 6. */
export const shortId = (id: string) => (id.startsWith('did:key:') ? `${id.slice(0, 16)}…${id.slice(-4)}` : id.length > 20 ? `${id.slice(0, 10)}…${id.slice(-6)}` : id);

/**
 * The entries that concern `token`: its issue and revocation, every call on
 * it with the outcomes, the calls those calls made, and — transitively — the
 * further promises it made and the delegations made of it (who holds what).
 * For a delegated token, also the chain of delegations it was made through.
 * For a document (its genesis CID among `token` and `also`): its heads,
 * conflicts and how they were settled, proposals and the votes on them.
 */
export const entriesAround = (entries: readonly Entry[], token: Token, also: readonly string[] = []): Entry[] => {
  const tokens = new Set<string>([token, ...also]);
  const calls = new Set<number>();
  const selected = new Set<number>();
  const wraps = new Map<string, Entry & { kind: 'wrap' }>();
  for (const entry of entries) if (entry.kind === 'wrap') wraps.set(entry.token, entry);
  for (let below = wraps.get(token); below; below = wraps.get(below.inner)) selected.add(below.seq);
  // Further promises and delegations point forward in the journal, so one pass suffices.
  for (const entry of entries) {
    switch (entry.kind) {
      case 'issue':
      case 'revoke':
      case 'revocation':
      case 'revocation-early':
      case 'revoked-at':
      case 'policy-state':
      case 'replicated':
        if (tokens.has(entry.token)) selected.add(entry.seq);
        break;
      case 'wrap':
        if (tokens.has(entry.inner)) {
          selected.add(entry.seq);
          tokens.add(entry.token);
        }
        break;
      case 'call':
      case 'hit':
        if (tokens.has(entry.token) || (entry.parent !== undefined && calls.has(entry.parent))) {
          selected.add(entry.seq);
          calls.add(entry.seq);
        }
        break;
      case 'fulfilled':
      case 'revoked':
      case 'forwarded':
      case 'screened':
        if (calls.has(entry.call)) selected.add(entry.seq);
        break;
      case 'promised':
        if (calls.has(entry.call)) {
          selected.add(entry.seq);
          tokens.add(entry.token);
        }
        break;
      case 'doc':
      case 'doc-head':
      case 'doc-rules':
        if (tokens.has(entry.doc)) selected.add(entry.seq);
        break;
      // A conflict and a proposal are further promises: what settles or votes on them comes after.
      case 'doc-conflict':
      case 'proposal':
        if (tokens.has(entry.doc)) {
          selected.add(entry.seq);
          tokens.add(entry.kind === 'doc-conflict' ? entry.conflict : entry.proposal);
        }
        break;
      case 'doc-settled':
        if (tokens.has(entry.conflict)) selected.add(entry.seq);
        break;
      case 'vote':
      case 'proposal-ended':
        if (tokens.has(entry.proposal)) selected.add(entry.seq);
        break;
      case 'seal':
        break;
    }
  }
  return entries.filter((entry) => selected.has(entry.seq));
};

const valueText = (value: unknown): string => {
  const text = JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? `<${v.length} bytes>` : v));
  return text === undefined ? 'undefined' : text.length > 60 ? `${text.slice(0, 57)}...` : text;
};

/** The arguments a hit answered: those of the call behind the `fulfilled` entry it names. */
const hitArgs = (bySeq: Map<number, Entry>, from: number): readonly unknown[] | undefined => {
  const fulfilled = bySeq.get(from);
  const call = fulfilled?.kind === 'fulfilled' ? bySeq.get(fulfilled.call) : undefined;
  return call?.kind === 'call' ? call.args : undefined;
};

/** What `renderText` says of the journal beyond the records it lists, when it has no array of them all (an index read them). */
export interface TextContext {
  /** Records a hit names (the `fulfilled` it was answered from, and that one's call). */
  readonly bySeq?: ReadonlyMap<number, Entry>;
  readonly total: number;
  readonly lastSeal?: Entry;
}

/**
 * One line per record. Seals are left out of the listing — they vouch for
 * records rather than being events — and summarised in a last line.
 */
export const renderText = (entries: readonly Entry[], name: Namer = shortId, all: readonly Entry[] | TextContext = entries): string => {
  const bySeq = Array.isArray(all) ? new Map(all.map((entry) => [entry.seq, entry])) : new Map(entries.map((entry) => [entry.seq, entry]));
  for (const [seq, entry] of (all as TextContext).bySeq ?? []) bySeq.set(seq, entry);
  const lastSeal = Array.isArray(all) ? all.findLast((entry) => entry.kind === 'seal') : (all as TextContext).lastSeal;
  const total = Array.isArray(all) ? all.length : (all as TextContext).total;
  const events = entries.filter((entry): entry is Exclude<Entry, { kind: 'seal' }> => entry.kind !== 'seal');
  const lines = events.map((entry) => {
    const head = `#${entry.seq} ${new Date(entry.at).toISOString()} ${entry.kind.padEnd(9)}`;
    switch (entry.kind) {
      case 'issue':
        return `${head} ${name(entry.token)} = ${name(entry.code)}#${entry.export} by ${name(entry.issuer)}`;
      case 'call':
        return `${head} ${name(entry.token)}(${entry.args.map(valueText).join(', ')}) by ${name(entry.caller)}${entry.parent === undefined ? '' : ` within #${entry.parent}`}`;
      case 'hit':
        return `${head} ${name(entry.token)}(${(hitArgs(bySeq, entry.from) ?? ['…']).map(valueText).join(', ')}) by ${name(entry.caller)} answered from cache (#${entry.from})`;
      case 'fulfilled':
        return `${head} #${entry.call} -> ${valueText(entry.value)}${entry.pure ? ' (pure, cached)' : ''}`;
      case 'revoked':
        // The cause in brackets: why it ended so, as reputation weighs it (README: Reputation).
        return `${head} #${entry.call} -> revoked: ${entry.reason}${entry.cause ? ` [${entry.cause}]` : ''}`;
      case 'promised':
        return `${head} #${entry.call} -> further promise ${name(entry.token)}`;
      case 'revoke':
        return `${head} ${name(entry.token)} by ${name(entry.by)}: ${entry.reason}`;
      case 'forwarded':
        return `${head} #${entry.call} answered by peer ${name(entry.to)}`;
      case 'revocation':
        return `${head} ${name(entry.token)} by ${name(entry.by)}, heard from ${name(entry.from)}: ${entry.reason}`;
      case 'revocation-early':
        return `${head} ${name(entry.token)} by ${name(entry.by)}, heard from ${name(entry.from)} before the delegation: ${entry.reason}`;
      case 'wrap': {
        const policies = entry.policies.length === 0 ? 'no policies' : `policies ${entry.policies.map(name).join(', ')}`;
        return `${head} ${name(entry.token)} = ${name(entry.inner)} delegated by ${name(entry.delegator)} to ${entry.audience.map(name).join(', ')} (${policies})`;
      }
      case 'screened':
        return `${head} #${entry.call} passed audited layer ${name(entry.token)}, called there by ${name(entry.caller)}`;
      case 'policy-state':
        return `${head} ${name(entry.token)} policy ${entry.index} keeps ${valueText(entry.state)}`;
      case 'replicated':
        return `${head} ${name(entry.token)} replicated to ${name(entry.to)}`;
      case 'doc':
        return `${head} document ${name(entry.doc)} held here (issued by ${name(entry.issuer)})`;
      case 'doc-head':
        return `${head} ${name(entry.doc)} heads ${entry.heads.map(name).join(', ')}`;
      case 'doc-conflict':
        return `${head} ${name(entry.doc)} conflict ${name(entry.conflict)} between ${entry.heads.map(name).join(' and ')}: ${entry.attempts.map((a) => `${name(a.step)} ${a.code}: ${a.reason}`).join('; ') || 'no merge steps'}`;
      case 'doc-settled':
        return `${head} conflict ${name(entry.conflict)} settled by version ${name(entry.version)}`;
      case 'doc-rules':
        return `${head} ${name(entry.doc)} rules changed by version ${name(entry.version)}`;
      case 'proposal':
        return `${head} ${name(entry.proposal)} proposes ${valueText(entry.change)} to ${name(entry.doc)}, by ${name(entry.proposer)} (quorum ${entry.quorum} of ${entry.members.length}, until ${new Date(entry.deadline).toISOString()})`;
      case 'vote':
        return `${head} ${name(entry.voter)} votes ${entry.choice} on ${name(entry.proposal)} (signed)`;
      case 'revoked-at':
        return `${head} ${name(entry.token)} revoked by ${name(entry.by)} at ${new Date(entry.since).toISOString()} (signed)`;
      case 'proposal-ended':
        return `${head} ${name(entry.proposal)} ${entry.status}: ${entry.reason}${entry.version ? ` (version ${name(entry.version)})` : ''}`;
    }
  });
  if (lastSeal?.kind === 'seal') lines.push(`(journal of ${total} records, signed through #${lastSeal.seq} by ${name(lastSeal.signer)})`);
  return lines.join('\n');
};

/** What the promise graph looks like as a picture: nodes by id, edges counted by (from, to, label). */
export interface GraphPicture {
  readonly nodes: ReadonlyMap<string, { readonly shape: 'ellipse' | 'box' | 'note'; readonly rounded?: boolean; readonly revoked?: boolean }>;
  readonly edges: ReadonlyArray<{ readonly from: string; readonly to: string; readonly label: string; readonly style: 'solid' | 'dashed' | 'dotted' | 'bold'; readonly count: number }>;
}

/**
 * Principals (ellipses), tokens (boxes; delegations rounded) and modules
 * (notes) are nodes; edges are issued, closes-over, calls (labelled with
 * their outcomes), further promises, delegations and revocations. DOT and
 * Mermaid both draw this.
 */
export const pictureOf = (entries: readonly Entry[]): GraphPicture => {
  type Node = { shape: 'ellipse' | 'box' | 'note'; rounded?: boolean; revoked?: boolean };
  type Style = 'solid' | 'dashed' | 'dotted' | 'bold';
  const nodes = new Map<string, Node>();
  const edges = new Map<string, { from: string; to: string; label: string; style: Style; count: number }>();
  const node = (id: string, shape: Node['shape'], extra: Omit<Node, 'shape'> = {}) => {
    const existing = nodes.get(id);
    if (existing) Object.assign(existing, extra);
    else nodes.set(id, { shape, ...extra });
  };
  const edge = (from: string, to: string, label: string, style: Style = 'solid') => {
    const key = `${from}\0${to}\0${label}`;
    const existing = edges.get(key);
    if (existing) existing.count += 1;
    else edges.set(key, { from, to, label, style, count: 1 });
  };
  const callInfo = new Map<number, { caller: string; token: string }>();
  for (const entry of entries) {
    switch (entry.kind) {
      case 'issue':
        node(entry.issuer, 'ellipse');
        node(entry.token, 'box');
        node(entry.code, 'note');
        edge(entry.issuer, entry.token, 'issued');
        edge(entry.token, entry.code, `#${entry.export}`, 'dotted');
        break;
      case 'call':
        node(entry.caller, 'ellipse');
        node(entry.token, 'box');
        callInfo.set(entry.seq, { caller: entry.caller, token: entry.token });
        break;
      case 'hit':
        node(entry.caller, 'ellipse');
        node(entry.token, 'box');
        edge(entry.caller, entry.token, 'cache hit', 'dashed');
        break;
      case 'fulfilled':
      case 'revoked': {
        const call = callInfo.get(entry.call);
        if (call) edge(call.caller, call.token, entry.kind, entry.kind === 'revoked' ? 'bold' : 'solid');
        break;
      }
      case 'promised': {
        const call = callInfo.get(entry.call);
        node(entry.token, 'box');
        if (call) {
          edge(call.caller, call.token, 'promised');
          edge(call.token, entry.token, 'further promise', 'dashed');
        }
        break;
      }
      case 'revoke':
      case 'revocation':
        node(entry.token, 'box', { revoked: true });
        node(entry.by, 'ellipse');
        edge(entry.by, entry.token, 'revoked', 'bold');
        break;
      case 'forwarded': {
        const call = callInfo.get(entry.call);
        node(entry.to, 'ellipse');
        if (call) edge(call.token, entry.to, 'answered by', 'dashed');
        break;
      }
      case 'wrap':
        node(entry.token, 'box', { rounded: true });
        node(entry.inner, 'box');
        node(entry.delegator, 'ellipse');
        edge(entry.token, entry.inner, 'screens', 'dashed');
        edge(entry.delegator, entry.token, 'delegated');
        for (const holder of entry.audience) {
          node(holder, 'ellipse');
          edge(entry.token, holder, 'held by', 'dotted');
        }
        break;
      case 'screened':
        node(entry.caller, 'ellipse');
        node(entry.token, 'box', { rounded: true });
        edge(entry.caller, entry.token, 'audited call', 'dashed');
        break;
      case 'replicated':
        node(entry.to, 'ellipse');
        node(entry.token, 'box');
        edge(entry.token, entry.to, 'replicated to', 'dotted');
        break;
      case 'doc-conflict':
        node(entry.doc, 'note');
        node(entry.conflict, 'box');
        edge(entry.doc, entry.conflict, 'conflict', 'bold');
        break;
      case 'doc-settled':
        node(entry.conflict, 'box');
        // The settling version is a node of its own: an edge to an id with none breaks a drawing (the node's page refused the whole graph).
        node(entry.version, 'note');
        edge(entry.conflict, entry.version, 'settled by');
        break;
      case 'proposal':
        node(entry.proposer, 'ellipse');
        node(entry.proposal, 'box');
        node(entry.doc, 'note');
        edge(entry.proposer, entry.proposal, 'proposed');
        edge(entry.proposal, entry.doc, 'changes', 'dashed');
        break;
      case 'vote':
        node(entry.voter, 'ellipse');
        edge(entry.voter, entry.proposal, `voted ${entry.choice}`);
        break;
      case 'proposal-ended':
        node(entry.proposal, 'box', entry.status === 'passed' ? {} : { revoked: true });
        break;
      case 'policy-state':
      case 'seal':
      case 'doc':
      case 'doc-head':
      case 'doc-rules':
      case 'revoked-at':
        break;
    }
  }
  return { nodes, edges: [...edges.values()] };
};

const quoted = (text: string) => JSON.stringify(text);
const edgeLabel = (label: string, count: number) => (count > 1 ? `${label} ×${count}` : label);

/** Graphviz DOT. */
export const renderDot = (entries: readonly Entry[], name: Namer = shortId): string => {
  const { nodes, edges } = pictureOf(entries);
  const nodeLines = [...nodes].map(([id, n]) => {
    const extra = `${n.rounded ? ', style=rounded' : ''}${n.revoked ? ', color=red' : ''}`;
    return `  ${quoted(id)} [label=${quoted(name(id))}, shape=${n.shape}${extra}];`;
  });
  const edgeLines = edges.map(
    ({ from, to, label, style, count }) =>
      `  ${quoted(from)} -> ${quoted(to)} [label=${quoted(edgeLabel(label, count))}, style=${style}${label === 'revoked' ? ', color=red' : ''}];`,
  );
  return ['digraph promisegrid {', '  rankdir=LR;', ...nodeLines, ...edgeLines, '}'].join('\n');
};

/** Mermaid `flowchart`, for notebooks and Markdown; node ids are n0, n1, … with the real id as label. */
export const renderMermaid = (entries: readonly Entry[], name: Namer = shortId): string => {
  const { nodes, edges } = pictureOf(entries);
  const ids = new Map([...nodes.keys()].map((id, index) => [id, `n${index}`]));
  // Mermaid labels are quoted strings: a double quote inside one is written #quot;.
  const label = (text: string) => `"${text.replaceAll('"', '#quot;')}"`;
  const shapes = { ellipse: ['([', '])'], box: ['[', ']'], note: ['[/', '/]'] } as const;
  const nodeLines = [...nodes].map(([id, n]) => {
    const [open, close] = n.rounded ? ['(', ')'] : shapes[n.shape];
    return `  ${ids.get(id)}${open}${label(name(id))}${close}`;
  });
  const arrows = { solid: '-->', dashed: '-.->', dotted: '-.->', bold: '==>' } as const;
  const edgeLines = edges.map(({ from, to, label: text, style, count }) => `  ${ids.get(from)} ${arrows[style]}|${label(edgeLabel(text, count))}| ${ids.get(to)}`);
  const revoked = [...nodes].filter(([, n]) => n.revoked).map(([id]) => `  style ${ids.get(id)} stroke:#c00`);
  return ['flowchart LR', ...nodeLines, ...edgeLines, ...revoked].join('\n');
};
