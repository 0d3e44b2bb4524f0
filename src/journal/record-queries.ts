/**
 * The questions of queries.ts and graph.ts, answered from the record index
 * (db/records.ts): each reads from the journal only the records its answer
 * is made of, found through the index, and gives what the same question
 * asked of the whole journal gives (test/record-index.test.ts compares).
 *
 *   around(token)   `entriesAround` of the whole journal: what `grid graph TOKEN` and a disclosure show
 *   who/show/origin a token's delegation tree: its issue, wraps and revocations, and its latest calls
 *   calls(filter)   calls on a token or by a caller (every call without a filter: the journal is read)
 *   pending/broken  paginated: `{ after, limit }` (record numbers, in order)
 */
import type { Principal, Token } from '../interface/ids.js';
import { entriesAt, readU64, type Located, type Page, type RecordIndex } from '../db/records.js';
import { entriesAround, type TextContext } from './graph.js';
import { GraphIndex, type Broken, type CallView, type Reach, type TreeNode } from './queries.js';
import type { Entry, Journal } from './journal.js';

type CallEntry = Extract<Entry, { kind: 'call' }>;
type Settlement = Extract<Entry, { kind: 'fulfilled' } | { kind: 'revoked' } | { kind: 'promised' }>;

const bySeq = (a: Located, b: Located) => a.seq - b.seq;

export class RecordQueries {
  readonly #journal: Journal;
  readonly #index: RecordIndex;

  constructor(journal: Journal, index: RecordIndex) {
    this.#journal = journal;
    this.#index = index;
  }

  get index(): RecordIndex {
    return this.#index;
  }

  /** Until everything appended so far is in the file and indexed: what a query then reads is the whole journal so far. */
  async settled(): Promise<void> {
    await this.#journal.written();
    await this.#index.settled();
  }

  /** The records at `locations`, read from the journal, in record order (each once); those dropped behind a checkpoint are not there to read. */
  async #read(locations: Iterable<Located>): Promise<Entry[]> {
    const unique = new Map<number, Located>();
    const floor = this.#journal.floor().seq;
    for (const at of locations) if (at.seq >= floor) unique.set(at.seq, at);
    return entriesAt(this.#journal, [...unique.values()].sort(bySeq));
  }

  /**
   * A list of the index, without the records dropped behind a checkpoint
   * (the index may still name them: the answers are about what is kept;
   * the counts of `show` still count them).
   */
  #list(name: string, page?: Page): Located[] {
    const floor = this.#journal.floor().seq;
    if (floor === 0) return this.#index.list(name, page);
    if (!page?.reverse) return this.#index.list(name, { ...page, after: Math.max(page?.after ?? -1, floor - 1) });
    // Newest first: once one is before the floor, all after it are.
    return this.#index.list(name, page).filter((at) => at.seq >= floor);
  }

  /** What `renderText` says of the journal as a whole, and the records the hits among `entries` name. */
  async textContext(entries: readonly Entry[]): Promise<TextContext> {
    await this.settled();
    const seal = this.#index.lastSeal();
    const [lastSeal] = seal ? await this.#read([seal]) : [];
    const named = new Map<number, Entry>(entries.map((entry) => [entry.seq, entry]));
    const wanted = entries.flatMap((entry) => (entry.kind === 'hit' && !named.has(entry.from) ? [entry.from] : []));
    for (const entry of await this.#journal.recordsBySeq(wanted)) named.set(entry.seq, entry);
    const calls = [...named.values()].flatMap((entry) => (entry.kind === 'fulfilled' && !named.has(entry.call) ? [entry.call] : []));
    for (const entry of await this.#journal.recordsBySeq(calls)) named.set(entry.seq, entry);
    return { bySeq: named, total: this.#journal.length, ...(lastSeal ? { lastSeal } : {}) };
  }

  /** `entriesAround(every record, token, also)`, reading only the records the index says may concern it. */
  async around(token: Token, also: readonly string[] = []): Promise<Entry[]> {
    await this.settled();
    const found = new Map<number, Entry>();
    const ids = new Set<string>();
    const calls = new Set<number>();
    let idQueue: string[] = [];
    let callQueue: number[] = [];
    const addId = (id: string) => {
      if (!ids.has(id)) (ids.add(id), idQueue.push(id));
    };
    const addCall = (seq: number) => {
      if (!calls.has(seq)) (calls.add(seq), callQueue.push(seq));
    };
    // The chain of delegations `token` was made through.
    for (let below: string | undefined = token, steps = 0; below !== undefined && steps < 1000; steps++) {
      const wraps = await this.#read(this.#list(`W${below}`));
      for (const wrap of wraps) found.set(wrap.seq, wrap);
      const last = wraps.at(-1);
      below = last?.kind === 'wrap' && last.inner !== below ? last.inner : undefined;
    }
    for (const id of [token, ...also]) addId(id);
    while (idQueue.length > 0 || callQueue.length > 0) {
      const locations: Located[] = [];
      for (const id of idQueue) for (const name of ['T', 'Q', 'K', 'H']) locations.push(...this.#list(`${name}${id}`));
      for (const call of callQueue) for (const name of ['S', 'P']) locations.push(...this.#list(`${name}${call}`));
      idQueue = [];
      callQueue = [];
      for (const entry of await this.#read(locations.filter((at) => !found.has(at.seq)))) {
        found.set(entry.seq, entry);
        switch (entry.kind) {
          case 'wrap':
            addId(entry.token);
            break;
          case 'call':
          case 'hit':
            addCall(entry.seq);
            break;
          case 'promised':
            addId(entry.token);
            break;
          case 'doc-conflict':
            addId(entry.conflict);
            break;
          case 'proposal':
            addId(entry.proposal);
            break;
          default:
            break;
        }
      }
    }
    // What may concern the token, in record order: the one pass of entriesAround decides, as over the whole journal.
    return entriesAround([...found.values()].sort((a, b) => a.seq - b.seq), token, also);
  }

  /**
   * A small GraphIndex holding what who/show/origin read about `token`:
   * the records about each token of its delegation tree (issue, wraps,
   * revocations), the wraps that made those tokens, and — for `show` — the
   * latest `maxCalls` calls on each with what settled them, the rest
   * summarised as counts.
   */
  async #tree(token: Token, maxCalls?: number): Promise<GraphIndex> {
    await this.settled();
    const found = new Map<number, Entry>();
    const seen = new Set<string>();
    let queue: string[] = [token];
    const summaries: Array<() => Promise<void>> = [];
    const graph = new GraphIndex();
    while (queue.length > 0) {
      const locations: Located[] = [];
      for (const id of queue) {
        seen.add(id);
        locations.push(...this.#list(`T${id}`), ...this.#list(`W${id}`));
        if (maxCalls !== undefined) {
          const latest = this.#list(`K${id}`, { reverse: true, limit: maxCalls });
          locations.push(...latest);
          for (const call of latest) locations.push(...this.#list(`S${call.seq}`));
          const counts = this.#index.counts(id);
          const lastHit = counts.lastHit;
          summaries.push(async () => {
            const [hit] = lastHit ? await this.#read([lastHit]) : [];
            graph.summarize(id, counts.calls - latest.length, hit?.kind === 'hit' ? { count: counts.hits, last: hit.caller } : undefined);
          });
        }
      }
      queue = [];
      const fresh = await this.#read(locations.filter((at) => !found.has(at.seq)));
      const wrapsOf: Located[] = [];
      for (const entry of fresh) {
        found.set(entry.seq, entry);
        if (entry.kind === 'wrap' && !seen.has(entry.token)) {
          seen.add(entry.token);
          queue.push(entry.token);
        } else if (entry.kind === 'wrap') wrapsOf.push(...this.#list(`W${entry.token}`));
      }
      // Which wrap of a token counts is the first made: the wraps that made each token are read with it.
      for (const entry of await this.#read(wrapsOf.filter((at) => !found.has(at.seq)))) found.set(entry.seq, entry);
    }
    for (const entry of [...found.values()].sort((a, b) => a.seq - b.seq)) graph.add(entry);
    for (const summarize of summaries) await summarize();
    return graph;
  }

  async who(token: Token): Promise<Reach[]> {
    return (await this.#tree(token)).who(token);
  }

  async show(token: Token, name: (id: string) => string = (id) => id, maxCalls = 20): Promise<TreeNode> {
    return (await this.#tree(token, maxCalls)).show(token, name, maxCalls);
  }

  async origin(token: Token, name: (id: string) => string = (id) => id): Promise<string> {
    return (await this.#tree(token)).origin(token, name);
  }

  /**
   * Calls on a token or by a caller (both: by that caller on that token), since a time, with their outcomes;
   * every call without a token or caller. With a token or a caller, `{ after, limit }` pages (record numbers,
   * as pending and broken do) through the calls on the token — or by the caller, without a token — and the
   * other filters narrow each page, so a page may hold fewer than `limit`.
   */
  async calls(filter: { token?: string; caller?: string; since?: number; after?: number; limit?: number } = {}): Promise<CallView[]> {
    await this.settled();
    const graph = new GraphIndex();
    if (filter.token === undefined && filter.caller === undefined) {
      for await (const entry of this.#journal.read(0)) {
        if (entry.kind === 'call' || entry.kind === 'fulfilled' || entry.kind === 'revoked' || entry.kind === 'promised') graph.add(entry);
      }
      return graph.calls(filter);
    }
    const page = { ...(filter.after !== undefined ? { after: filter.after } : {}), ...(filter.limit !== undefined ? { limit: filter.limit } : {}) };
    const source = filter.token !== undefined ? this.#list(`K${filter.token}`, page) : this.#list(`B${filter.caller}`, page);
    let callsRead = await this.#read(source);
    if (filter.since !== undefined) callsRead = callsRead.filter((call) => call.at >= filter.since!);
    if (filter.caller !== undefined) callsRead = callsRead.filter((call) => call.kind === 'call' && call.caller === filter.caller);
    const settlements = await this.#read(callsRead.flatMap((call) => this.#list(`S${call.seq}`)));
    for (const entry of [...callsRead, ...settlements].sort((a, b) => a.seq - b.seq)) graph.add(entry);
    return graph.calls(filter);
  }

  /** Calls with no outcome yet (running, or waiting on a further promise), in order: `limit` of them after call `after`. */
  async pending(page: { after?: number; limit?: number } = {}): Promise<CallView[]> {
    await this.settled();
    const open = this.#list('O', page);
    const calls = (await this.#read(open)) as CallEntry[];
    const settled = await this.#read(open.flatMap((call) => this.#list(`S${call.seq}`)));
    const outcome = new Map<number, Settlement>();
    for (const entry of settled) if (entry.kind === 'fulfilled' || entry.kind === 'revoked' || entry.kind === 'promised') outcome.set(entry.call, entry);
    return calls.map((call) => {
      const settlement = outcome.get(call.seq);
      return settlement ? { call, outcome: settlement } : { call };
    });
  }

  /** Calls that ended revoked and tokens revoked, in order: `limit` of them after record `after`. */
  async broken(page: { after?: number; limit?: number } = {}): Promise<Broken[]> {
    await this.settled();
    const rows = this.#list('X', page);
    const records = await this.#read(rows);
    const callAt = new Map<number, Located>();
    const unknown: number[] = [];
    rows.forEach((row, i) => {
      const record = records[i]!;
      if (record.kind !== 'revoked') return;
      const value = this.#index.item('X', row.seq)?.value;
      if (value) callAt.set(record.call, { seq: record.call, offset: readU64(value, 0) });
      else unknown.push(record.call);
    });
    const calls = new Map<number, Entry>();
    for (const call of await this.#read(callAt.values())) calls.set(call.seq, call);
    for (const call of await this.#journal.recordsBySeq(unknown)) calls.set(call.seq, call);
    return records.flatMap((record): Broken[] => {
      if (record.kind === 'revoke' || record.kind === 'revocation') return [{ seq: record.seq, token: record.token, reason: record.reason }];
      if (record.kind !== 'revoked') return [];
      const call = calls.get(record.call);
      if (call?.kind !== 'call') return [];
      return [{ seq: record.seq, token: call.token, reason: record.reason, caller: call.caller as Principal, ...(record.cause ? { cause: record.cause } : {}) }];
    });
  }

  /** The last delegation (wrap) that made `token`, if one did. */
  async delegation(token: string): Promise<Extract<Entry, { kind: 'wrap' }> | undefined> {
    await this.settled();
    const [wrap] = await this.#read(this.#list(`W${token}`, { reverse: true, limit: 1 }));
    return wrap?.kind === 'wrap' ? wrap : undefined;
  }

  /** Whether `token` was made by a delegation recorded here. */
  isDelegation(token: string): boolean {
    return this.#list(`W${token}`, { limit: 1 }).length > 0;
  }

  /** The seals numbered among `seqs`, read. */
  async seals(seqs: readonly number[]): Promise<Entry[]> {
    return this.#read(seqs.flatMap((seq) => this.#index.item('Z', seq) ?? []));
  }

  /** Where each of the records numbered `seqs` starts, if the index knows (records named in its lists). */
  locate(entries: readonly Entry[]): Located[] | undefined {
    const out: Located[] = [];
    for (const entry of entries) {
      const at = this.#where(entry);
      if (!at) return undefined;
      out.push(at);
    }
    return out;
  }

  #where(entry: Entry): Located | undefined {
    const name = listOf(entry);
    return name === undefined || entry.seq < this.#journal.floor().seq ? undefined : this.#index.item(name, entry.seq);
  }
}

/** One list each kind of record is in (see db/records.ts), to find where it starts. */
const listOf = (entry: Entry): string | undefined => {
  switch (entry.kind) {
    case 'issue':
    case 'revoke':
    case 'revocation':
    case 'revocation-early':
    case 'revoked-at':
      return `T${entry.token}`;
    case 'policy-state':
    case 'replicated':
      return `Q${entry.token}`;
    case 'wrap':
      return `W${entry.token}`;
    case 'call':
      return `K${entry.token}`;
    case 'hit':
      return `H${entry.token}`;
    case 'fulfilled':
    case 'revoked':
    case 'promised':
    case 'forwarded':
    case 'screened':
      return `S${entry.call}`;
    case 'doc':
    case 'doc-head':
    case 'doc-rules':
    case 'doc-conflict':
    case 'proposal':
      return `T${entry.doc}`;
    case 'doc-settled':
      return `T${entry.conflict}`;
    case 'vote':
    case 'proposal-ended':
      return `T${entry.proposal}`;
    case 'seal':
      return 'Z';
    case 'doc-token':
      return undefined;
  }
};
