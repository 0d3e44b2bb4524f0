/**
 * Questions asked of a promise graph, answered from indexes kept record by
 * record (`add` every record once, in order), so that each answer costs what
 * it returns rather than a pass over the journal:
 *
 *   who(token)      every principal that can reach a token, and through which delegation layers
 *   pending()       calls that have no outcome yet (running, or waiting on a further promise)
 *   broken()        calls that ended revoked, and tokens their issuers revoked
 *   calls(filter)   calls on a token, by a caller, since a time, with their outcomes
 *   show(token)     a token's issue, delegations, calls and outcomes, as a tree
 *
 * Memory grows with the records indexed, by a few references per record.
 */
import type { Principal, Token } from '../interface/ids.js';
import type { Entry } from './journal.js';
import type { Verified } from './disclosure.js';
import { describeThrown } from '../interface/errors.js';
import type { RevokeCause } from '../interface/outcome.js';

type CallEntry = Extract<Entry, { kind: 'call' }>;
type WrapEntry = Extract<Entry, { kind: 'wrap' }>;
type Settlement = Extract<Entry, { kind: 'fulfilled' } | { kind: 'revoked' } | { kind: 'promised' }>;

export interface CallView {
  readonly call: CallEntry;
  readonly outcome?: Settlement;
}

export interface Reach {
  readonly principal: Principal;
  /** The delegation layers a call from this principal passes, outermost first; empty for the issuer. */
  readonly through: readonly Token[];
}

export interface Broken {
  readonly seq: number;
  readonly token: Token;
  readonly reason: string;
  /** The caller whose call was broken; absent when the token itself was revoked. */
  readonly caller?: Principal;
  /** Why the call ended revoked (see RevokeCause): only `limit` and `crash` count against the issuer's reputation. */
  readonly cause?: RevokeCause;
}

export interface TreeNode {
  readonly label: string;
  readonly children: readonly TreeNode[];
}

export class GraphIndex {
  readonly #issuer = new Map<string, Entry & { kind: 'issue' }>();
  readonly #callsOn = new Map<string, CallEntry[]>();
  readonly #callsBy = new Map<string, CallEntry[]>();
  readonly #calls: CallEntry[] = [];
  readonly #outcome = new Map<number, Settlement>();
  readonly #open = new Set<number>();
  /** further token → calls waiting on it */
  readonly #waiting = new Map<string, number[]>();
  readonly #wrapsOf = new Map<string, WrapEntry[]>();
  readonly #wrap = new Map<string, WrapEntry>();
  readonly #broken: Broken[] = [];
  readonly #revoked = new Map<string, string>();
  /** call → the peer that answered it, for calls this node forwarded */
  readonly #answeredBy = new Map<number, Principal>();
  /** token → cache hits on it, and who made the last */
  readonly #hits = new Map<string, { count: number; last: Principal }>();
  /** token → calls on it that were not added (an index added only the latest) */
  readonly #earlier = new Map<string, number>();

  /**
   * What was left out of the records added about `token`: `earlier` calls on
   * it before those added, and its cache hits (their count and the last
   * caller), which are then not added one by one.
   */
  summarize(token: string, earlier: number, hits?: { count: number; last: Principal }): void {
    if (earlier > 0) this.#earlier.set(token, earlier);
    if (hits) this.#hits.set(token, { ...hits });
  }

  add(entry: Entry): void {
    switch (entry.kind) {
      case 'issue':
        this.#issuer.set(entry.token, entry);
        break;
      case 'call':
        this.#calls.push(entry);
        push(this.#callsOn, entry.token, entry);
        push(this.#callsBy, entry.caller, entry);
        this.#open.add(entry.seq);
        break;
      case 'fulfilled':
      case 'promised':
      case 'revoked': {
        this.#outcome.set(entry.call, entry);
        // A further promise keeps the call pending until a call on it settles.
        if (entry.kind === 'promised') push(this.#waiting, entry.token, entry.call);
        else this.#open.delete(entry.call);
        const call = this.#callBySeq(entry.call);
        if (entry.kind === 'revoked' && call) this.#broken.push({ seq: entry.seq, token: call.token, reason: entry.reason, caller: call.caller, ...(entry.cause ? { cause: entry.cause } : {}) });
        if (entry.kind !== 'promised' && call) this.#settleWaiting(call.token);
        break;
      }
      case 'wrap':
        if (this.#wrap.has(entry.token)) break;
        this.#wrap.set(entry.token, entry);
        push(this.#wrapsOf, entry.inner, entry);
        break;
      case 'revoke':
      case 'revocation':
        this.#revoked.set(entry.token, entry.reason);
        this.#broken.push({ seq: entry.seq, token: entry.token, reason: entry.reason });
        break;
      case 'forwarded':
        this.#answeredBy.set(entry.call, entry.to);
        break;
      case 'hit': {
        const hits = this.#hits.get(entry.token);
        if (hits) {
          hits.count += 1;
          hits.last = entry.caller;
        } else this.#hits.set(entry.token, { count: 1, last: entry.caller });
        break;
      }
      default:
        break;
    }
  }

  /** Calls waiting on `token` as a further promise are settled once a call on it is. */
  #settleWaiting(token: Token) {
    for (const seq of this.#waiting.get(token) ?? []) this.#open.delete(seq);
    this.#waiting.delete(token);
  }

  #callBySeq(seq: number): CallEntry | undefined {
    // Calls are appended in order: binary search by seq.
    let low = 0;
    let high = this.#calls.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      const candidate = this.#calls[mid]!;
      if (candidate.seq === seq) return candidate;
      if (candidate.seq < seq) low = mid + 1;
      else high = mid - 1;
    }
    return undefined;
  }

  #view(call: CallEntry): CallView {
    const outcome = this.#outcome.get(call.seq);
    return outcome ? { call, outcome } : { call };
  }

  /** Everyone who can call `token`: its issuer directly, and each delegate through the layers between. */
  who(token: Token): Reach[] {
    const reach: Reach[] = [];
    // A closure is called directly by its issuer; a delegation by its audience.
    const direct = this.#wrap.get(token)?.audience ?? [this.#issuer.get(token)?.issuer].filter((p) => p !== undefined);
    if (!this.#revoked.has(token)) for (const principal of direct) reach.push({ principal, through: [] });
    const walk = (inner: string, below: readonly Token[]) => {
      for (const wrap of this.#wrapsOf.get(inner) ?? []) {
        if (this.#revoked.has(wrap.token)) continue;
        const through = [wrap.token, ...below];
        for (const principal of wrap.audience) reach.push({ principal, through });
        walk(wrap.token, through);
      }
    };
    if (!this.#revoked.has(token)) walk(token, []);
    return reach;
  }

  pending(): CallView[] {
    return [...this.#open].map((seq) => this.#view(this.#callBySeq(seq)!));
  }

  broken(): readonly Broken[] {
    return this.#broken;
  }

  calls(filter: { token?: string; caller?: string; since?: number } = {}): CallView[] {
    const source = filter.token !== undefined ? this.#callsOn.get(filter.token) ?? [] : filter.caller !== undefined ? this.#callsBy.get(filter.caller) ?? [] : this.#calls;
    const since = filter.since ?? Number.NEGATIVE_INFINITY;
    // Newest last, in journal order: skip to `since` by binary search on the (sorted) record times.
    let start = 0;
    for (let high = source.length; start < high; ) {
      const mid = (start + high) >> 1;
      if (source[mid]!.at < since) start = mid + 1;
      else high = mid;
    }
    const out: CallView[] = [];
    for (let i = start; i < source.length; i++) {
      const call = source[i]!;
      if (filter.caller !== undefined && call.caller !== filter.caller) continue;
      out.push(this.#view(call));
    }
    return out;
  }

  /** A token's story as a tree: who issued it, what it was delegated as, and every call with its outcome. */
  show(token: Token, name: (id: string) => string = (id) => id, maxCalls = 20): TreeNode {
    const callNodes = (on: string): TreeNode[] => {
      const all = this.#callsOn.get(on) ?? [];
      const total = all.length + (this.#earlier.get(on) ?? 0);
      const nodes = all.slice(-maxCalls).map((call): TreeNode => {
        const outcome = this.#outcome.get(call.seq);
        const result = !outcome ? 'pending' : outcome.kind === 'fulfilled' ? 'fulfilled' : outcome.kind === 'revoked' ? `revoked: ${outcome.reason}` : `promised ${name(outcome.token)}`;
        const peer = this.#answeredBy.get(call.seq);
        return { label: `call #${call.seq} by ${name(call.caller)} → ${result}${peer ? ` (answered by ${name(peer)})` : ''}`, children: [] };
      });
      const hits = this.#hits.get(on);
      const hitNodes = hits ? [{ label: `${hits.count} answered from the cache (last by ${name(hits.last)})`, children: [] }] : [];
      return [...(total > maxCalls ? [{ label: `(${total - maxCalls} earlier calls)`, children: [] }] : []), ...nodes, ...hitNodes];
    };
    const delegations = (inner: string): TreeNode[] =>
      (this.#wrapsOf.get(inner) ?? []).map((wrap) => ({
        label: `delegated as ${name(wrap.token)} by ${name(wrap.delegator)} to ${wrap.audience.map(name).join(', ')}${this.#revoked.has(wrap.token) ? ` (revoked: ${this.#revoked.get(wrap.token)})` : ''}`,
        children: [...callNodes(wrap.token), ...delegations(wrap.token)],
      }));
    return { label: `${name(token)}: ${this.origin(token, name)}`, children: [...callNodes(token), ...delegations(token)] };
  }

  /** Where a token comes from, as far as these records tell: its issue or its delegation, and its revocation. */
  origin(token: Token, name: (id: string) => string = (id) => id): string {
    const issue = this.#issuer.get(token);
    const wrap = this.#wrap.get(token);
    const origin = issue ? `issued by ${name(issue.issuer)} (${name(issue.code)}#${issue.export})` : wrap ? `delegated by ${name(wrap.delegator)} over ${name(wrap.inner)}` : 'not issued here';
    const revoked = this.#revoked.get(token);
    return `${origin}${revoked !== undefined ? ` (revoked: ${revoked})` : ''}`;
  }
}

const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

const push = <K, V>(map: Map<K, V[]>, key: K, value: V) => {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
};

/** A tree drawn for a terminal, with box-drawing branches. */
export const renderTree = (node: TreeNode): string => {
  const lines = [node.label];
  node.children.forEach((child, index) => {
    const last = index === node.children.length - 1;
    const [head, ...rest] = renderTree(child).split('\n');
    lines.push(`${last ? '└─ ' : '├─ '}${head}`);
    for (const line of rest) lines.push(`${last ? '   ' : '│  '}${line}`);
  });
  return lines.join('\n');
};

/** What one node showed about a token: its checked records, or why there are none. */
export interface NodeRecords {
  readonly url: string;
  readonly verified?: Verified;
  readonly error?: string;
}

/** Ask every node in `urls` for its records about `token` (in parallel); a node that fails says why. */
export const recordsAcross = (token: Token, urls: readonly string[], ask: (url: string, token: Token) => Promise<Verified>): Promise<NodeRecords[]> =>
  Promise.all(
    [...new Set(urls)].map((url) =>
      ask(url, token).then(
        (verified): NodeRecords => ({ url, verified }),
        (error: unknown): NodeRecords => ({ url, error: describeThrown(error) }),
      ),
    ),
  );

/**
 * One view of a token across nodes: this home's own story of it, then each
 * node's verified records as that node's story, then every record that
 * failed verification — shown, with the reason, and never merged.
 */
export const acrossTree = (token: Token, here: TreeNode, nodes: readonly NodeRecords[], name: (id: string) => string = (id) => id): TreeNode => {
  const fromNode = ({ url, verified, error }: NodeRecords): TreeNode => {
    if (!verified) return { label: `✗ ${url}: ${error ?? 'no answer'}`, children: [] };
    const index = new GraphIndex();
    for (const entry of verified.entries) index.add(entry);
    const flagged = verified.flagged.map((f) => ({ label: `✗ record ${f.seq === undefined ? `at position ${f.index}` : `#${f.seq}`} fails verification, not merged: ${f.reason}`, children: [] }));
    const counts = `${plural(verified.entries.length, 'record')} verified${flagged.length ? `, ${flagged.length} failed` : ''}`;
    const story = verified.entries.length ? [{ label: index.origin(token, name), children: [] }, ...index.show(token, name).children] : [];
    return { label: `on ${name(verified.node)} (${url}): ${counts}`, children: [...story, ...flagged] };
  };
  return { label: `${name(token)} across ${nodes.length + 1} nodes`, children: [{ label: `here: ${here.label}`, children: here.children }, ...nodes.map(fromNode)] };
};
