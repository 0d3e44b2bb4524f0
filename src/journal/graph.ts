/**
 * Views of the promise graph: the part that touches one token, reputation per
 * issuer, and renderings as text, JSON and Graphviz DOT. Pure functions over
 * journal entries, so the CLI, the REPL and tests share them.
 */
import type { Principal, Token } from '../caps/ids.js';
import type { Entry } from './journal.js';
import type { RevokeCause } from '../caps/outcome.js';

type Namer = (id: string) => string;
/** An id short enough to read in a line: a principal's first 16 and last 4 characters, a CID's first 10 and last 6. */
export const shortId = (id: string) => (id.startsWith('did:key:') ? `${id.slice(0, 16)}…${id.slice(-4)}` : id.length > 20 ? `${id.slice(0, 10)}…${id.slice(-6)}` : id);

/**
 * The entries that concern `token`: its issue and revocation, every call on
 * it with the outcomes, the calls those calls made, and — transitively — the
 * further promises it made and the delegations made of it (who holds what).
 * For a delegated token, also the chain of delegations it was made through.
 */
export const entriesAround = (entries: readonly Entry[], token: Token): Entry[] => {
  const tokens = new Set<string>([token]);
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
      case 'seal':
        break;
    }
  }
  return entries.filter((entry) => selected.has(entry.seq));
};

export interface Reputation {
  readonly issuer: Principal;
  /** Tokens issued. */
  issued: number;
  /** Calls by others answered with a value (cache hits included). */
  fulfilled: number;
  /** Tokens the issuer revoked, and calls by others that hit a limit or crashed (each caller counted once: see ReputationTally). */
  broken: number;
  /** Calls by others the closure refused for their input: promises kept, weighed neither way. */
  refused: number;
  /** Calls by others without a final outcome yet (running, or a further promise not yet kept). */
  pending: number;
}

/** How a settled call weighs on its issuer's record. */
type Weight = 'fulfilled' | 'broken' | 'refused' | 'none';

/**
 * What a revoked call's cause means for the issuer whose closure answered
 * it: the one place where causes are weighed, for the kernel live, the
 * kernel replaying its journal, the CLI and the REPL alike. A record
 * written before causes were kept counts as a break (each caller once).
 */
export const weightOfCause = (cause: RevokeCause | undefined): Weight => {
  switch (cause) {
    case 'refused':
      return 'refused';
    case 'limit':
    case 'crash':
    case undefined:
      return 'broken';
    default:
      // revoked (its revocation counts, once), passed (counted where it broke), screened, node, remote, or unknown.
      return 'none';
  }
};

/**
 * Reputation, kept up to date record by record: the kernel feeds it every
 * record it writes, so policies can ask about a principal without a pass
 * over the journal. It measures what an issuer failed to keep, not what its
 * callers asked for:
 *
 * - a value is a promise kept (`fulfilled`); the closure's refusal of its
 *   caller's input (`ctx.revoke`) is a promise kept too (`refused`), which
 *   the ratio policies use (fulfilled against broken) weighs neither way, so
 *   a caller can neither lower nor raise an issuer's record with bad input;
 * - broken: the issuer revoking a token (or a delegator its delegation)
 *   after issuing it, and a call that hit its time or memory limit or
 *   crashed. A caller can craft arguments that make a closure loop or
 *   throw, so each caller costs an issuer at most one such break, however
 *   many calls it makes (its later ones are counted nowhere);
 * - calls on a revoked token, calls refused by a delegation's policies,
 *   revocations passed on from a nested call, and the node's own trouble
 *   count for nobody;
 * - the issuer's own calls count for nothing: an issuer cannot look good
 *   by calling its own tokens (nor do its closures' nested calls on its
 *   other tokens count).
 *
 * A delegation is its delegator's promise too: issued, and broken if its
 * delegator revokes it; the calls through it are counted for the closure
 * that answers them. Memory grows with principals, tokens and (issuer,
 * caller) pairs that broke, not with calls: a call is forgotten once it
 * settles.
 */
export class ReputationTally {
  readonly #issuerOf = new Map<string, Principal>();
  readonly #delegatorOf = new Map<string, Principal>();
  /** Calls on a known issuer's tokens by others, not settled yet: call → [issuer, token, caller]. */
  readonly #open = new Map<number, readonly [Principal, string, Principal]>();
  /** further token → the calls waiting on it */
  readonly #waiting = new Map<string, number[]>();
  /** `issuer caller` pairs whose one counted break has been counted. */
  readonly #brokeFor = new Set<string>();
  readonly #table = new Map<Principal, Reputation>();

  #row(issuer: Principal): Reputation {
    let r = this.#table.get(issuer);
    if (!r) this.#table.set(issuer, (r = { issuer, issued: 0, fulfilled: 0, broken: 0, refused: 0, pending: 0 }));
    return r;
  }

  #settle(call: number, weight: Weight) {
    const open = this.#open.get(call);
    if (!open) return;
    this.#open.delete(call);
    const [issuer, token, caller] = open;
    const row = this.#row(issuer);
    row.pending -= 1;
    if (weight === 'fulfilled') row.fulfilled += 1;
    else if (weight === 'refused') row.refused += 1;
    else if (weight === 'broken') {
      const pair = `${issuer} ${caller}`;
      if (!this.#brokeFor.has(pair)) {
        this.#brokeFor.add(pair);
        row.broken += 1;
      }
    }
    const waiters = this.#waiting.get(token);
    this.#waiting.delete(token);
    for (const waiter of waiters ?? []) this.#settle(waiter, weight);
  }

  add(entry: Entry): void {
    switch (entry.kind) {
      case 'issue':
        this.#issuerOf.set(entry.token, entry.issuer);
        this.#row(entry.issuer).issued += 1;
        break;
      case 'wrap':
        if (this.#delegatorOf.has(entry.token)) break;
        this.#delegatorOf.set(entry.token, entry.delegator);
        this.#row(entry.delegator).issued += 1;
        break;
      case 'call': {
        const issuer = this.#issuerOf.get(entry.token);
        if (!issuer || entry.caller === issuer) break;
        this.#open.set(entry.seq, [issuer, entry.token, entry.caller]);
        this.#row(issuer).pending += 1;
        break;
      }
      case 'hit': {
        const issuer = this.#issuerOf.get(entry.token);
        if (issuer && entry.caller !== issuer) this.#row(issuer).fulfilled += 1;
        break;
      }
      case 'fulfilled':
        this.#settle(entry.call, 'fulfilled');
        break;
      case 'revoked':
        this.#settle(entry.call, weightOfCause(entry.cause));
        break;
      case 'promised': {
        if (!this.#open.has(entry.call)) break;
        const list = this.#waiting.get(entry.token) ?? [];
        list.push(entry.call);
        this.#waiting.set(entry.token, list);
        break;
      }
      case 'revoke': {
        const issuer = this.#issuerOf.get(entry.token) ?? this.#delegatorOf.get(entry.token);
        if (issuer) this.#row(issuer).broken += 1;
        break;
      }
      case 'seal':
      case 'forwarded':
      case 'revocation':
      case 'screened':
      case 'policy-state':
      case 'replicated':
        break;
    }
  }

  /** Who issued (or delegated) `token`, if this journal has seen it. */
  issuerOf(token: string): Principal | undefined {
    return this.#issuerOf.get(token) ?? this.#delegatorOf.get(token);
  }

  of(principal: Principal): Reputation {
    return { ...(this.#table.get(principal) ?? { issuer: principal, issued: 0, fulfilled: 0, broken: 0, refused: 0, pending: 0 }) };
  }

  rows(): Reputation[] {
    return [...this.#table.values()].map((row) => ({ ...row }));
  }
}

export const reputation = (entries: readonly Entry[]): Reputation[] => {
  const tally = new ReputationTally();
  for (const entry of entries) tally.add(entry);
  return tally.rows();
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

/**
 * One line per record. Seals are left out of the listing — they vouch for
 * records rather than being events — and summarised in a last line.
 */
export const renderText = (entries: readonly Entry[], name: Namer = shortId, all: readonly Entry[] = entries): string => {
  const bySeq = new Map(all.map((entry) => [entry.seq, entry]));
  const lastSeal = all.findLast((entry) => entry.kind === 'seal');
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
    }
  });
  if (lastSeal?.kind === 'seal') lines.push(`(journal of ${all.length} records, signed through #${lastSeal.seq} by ${name(lastSeal.signer)})`);
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
      case 'policy-state':
      case 'seal':
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
