/**
 * The kernel's cache of pure calls' answers: token → (canonical argument
 * bytes → outcome), bounded both in entries and in bytes, so that callers
 * with ever new arguments (or big ones: up to MAX_VALUE_BYTES each way)
 * cannot make a node hold more than `maxCacheBytes` of answers.
 *
 * Past either bound the least recently used answer goes first (a journaled
 * hit makes an answer the most recent). An entry bigger than the whole byte
 * bound is not kept at all.
 */
import type { Token } from '../interface/ids.js';
import { fulfilled, type Outcome } from '../interface/outcome.js';
import { bytesKey, decodeValue } from '../closures/values.js';

export interface CachedAnswer {
  readonly outcome: Outcome;
  /** The journal record of the call that answered it. */
  readonly from: number;
  readonly valueBytes: Uint8Array;
}

/**
 * The answers kept, least recently used first, laid end to end in one byte
 * string (not one CBOR item each: a snapshot is made while calls wait, and
 * a full cache holds 100,000 answers): each is its token's place in
 * `tokens` (u32; a token has many answers), the record that answered (f64),
 * its arguments' and value's lengths (u32 each), then those bytes.
 */
export interface CacheSnapshot {
  readonly tokens: readonly Token[];
  readonly answers: Uint8Array;
}
const ANSWER_HEADER = 20;
/** Answers a background restore takes in per turn of the event loop (~4 ms here). */
const RESTORE_CHUNK = 2_000;

export interface CacheBounds {
  readonly maxCacheEntries: number;
  readonly maxCacheBytes: number;
}

/**
 * What an entry is counted as: its key (one char per argument byte), its
 * value's bytes, the decoded value kept beside them (counted as as many
 * bytes again), and the maps' and objects' own overhead.
 */
const ENTRY_OVERHEAD = 200;
export const entryCost = (args: Uint8Array, valueBytes: Uint8Array): number => args.byteLength + 2 * valueBytes.byteLength + ENTRY_OVERHEAD;

/**
 * An answer kept from a journal record (replayed, live, or read back from a
 * snapshot): its value is decoded the first time it answers a call, not when
 * it is kept — a start restores up to maxCacheEntries of them, and most
 * answers a replay meets are pushed out before anyone asks for them.
 */
export class KeptAnswer implements CachedAnswer {
  #outcome: Outcome | undefined;
  constructor(
    readonly from: number,
    readonly valueBytes: Uint8Array,
  ) {}
  get outcome(): Outcome {
    return (this.#outcome ??= fulfilled(decodeValue(this.valueBytes)));
  }
}

/** One kept answer, in the recency list (oldest first). */
interface Node {
  readonly answer: CachedAnswer;
  readonly token: Token;
  readonly argsKey: string;
  readonly cost: number;
  older: Node | undefined;
  newer: Node | undefined;
}

export class PureCallCache {
  readonly #bounds: CacheBounds;
  readonly #byToken = new Map<Token, Map<string, Node>>();
  /** The same answers by the record that answered each. */
  readonly #byFrom = new Map<number, Node>();
  #oldest: Node | undefined;
  #newest: Node | undefined;
  #entries = 0;
  #bytes = 0;
  /** A snapshot's answers not taken in yet (see `restore`), and how to stop taking them in the background. */
  #unrestored: { tokens: readonly Token[]; answers: Uint8Array; view: DataView; at: number } | undefined;
  #restoreTimer: (() => void) | undefined;

  constructor(bounds: CacheBounds) {
    if (!(bounds.maxCacheEntries >= 0) || !(bounds.maxCacheBytes >= 0)) {
      throw new RangeError(`cache bounds must be whole numbers (got ${bounds.maxCacheEntries} entries, ${bounds.maxCacheBytes} bytes)`);
    }
    this.#bounds = bounds;
  }

  /** How much it holds now. */
  get use(): { entries: number; bytes: number; tokens: number } {
    this.#restoreRest();
    return { entries: this.#entries, bytes: this.#bytes, tokens: this.#byToken.size };
  }

  /**
   * The answer kept for these arguments (canonical bytes), which becomes the
   * most recently used. The arguments are turned into a key only for a token
   * with answers kept: a call on anything else — a made-up token with a
   * megabyte of arguments, say — costs a lookup, not a pass over its bytes.
   */
  get(token: Token, args: Uint8Array): CachedAnswer | undefined {
    this.#restoreRest();
    return this.#byToken.get(token)?.get(bytesKey(args))?.answer;
  }

  /**
   * The answer journaled as record `from` was used (a `hit` record): it
   * becomes the most recently used. Recency follows the journal's records,
   * not lookups, so that a cache rebuilt from them — by replay or from a
   * snapshot — is the live one, in the same order.
   */
  used(from: number): void {
    this.#restoreRest();
    const node = this.#byFrom.get(from);
    if (!node) return;
    this.#unlink(node);
    this.#append(node);
  }

  set(token: Token, args: Uint8Array, answer: CachedAnswer): void {
    this.#restoreRest();
    const cost = entryCost(args, answer.valueBytes);
    if (!this.#fits(cost) && !this.#byToken.has(token)) return;
    this.#keep(token, bytesKey(args), cost, answer);
  }

  #fits(cost: number): boolean {
    return cost <= this.#bounds.maxCacheBytes && this.#bounds.maxCacheEntries > 0;
  }

  #keep(token: Token, argsKey: string, cost: number, answer: CachedAnswer): void {
    const old = this.#byToken.get(token)?.get(argsKey);
    if (old) this.#drop(old);
    if (!this.#fits(cost)) return;
    const node: Node = { answer, token, argsKey, cost, older: undefined, newer: undefined };
    let kept = this.#byToken.get(token);
    if (!kept) this.#byToken.set(token, (kept = new Map()));
    kept.set(argsKey, node);
    this.#byFrom.set(answer.from, node);
    this.#append(node);
    this.#entries += 1;
    this.#bytes += cost;
    while (this.#entries > this.#bounds.maxCacheEntries || this.#bytes > this.#bounds.maxCacheBytes) this.#drop(this.#oldest!);
  }


  /** Every answer kept, least recently used first, as plain data (kernel/snapshot.ts): token, arguments, the record that answered, the value. */
  snapshot(): CacheSnapshot {
    this.#restoreRest();
    const tokens: Token[] = [];
    const numbers = new Map<Token, number>();
    let size = 0;
    for (let node = this.#oldest; node; node = node.newer) size += ANSWER_HEADER + node.argsKey.length + node.answer.valueBytes.byteLength;
    const answers = new Uint8Array(size);
    const view = new DataView(answers.buffer);
    let at = 0;
    for (let node = this.#oldest; node; node = node.newer) {
      let number = numbers.get(node.token);
      if (number === undefined) numbers.set(node.token, (number = tokens.push(node.token) - 1));
      const { argsKey } = node;
      const { from, valueBytes } = node.answer;
      view.setUint32(at, number);
      view.setFloat64(at + 4, from);
      view.setUint32(at + 12, argsKey.length);
      view.setUint32(at + 16, valueBytes.byteLength);
      at += ANSWER_HEADER;
      for (let i = 0; i < argsKey.length; i++) answers[at + i] = argsKey.charCodeAt(i);
      at += argsKey.length;
      answers.set(valueBytes, at);
      at += valueBytes.byteLength;
    }
    return { tokens, answers };
  }

  /**
   * Take back what `snapshot` gave (into an empty cache): the same answers,
   * in the same order of use. With `later`, they are taken in RESTORE_CHUNK
   * at a time on timers, after a start has gone on to serve (a full cache
   * holds 100,000 answers: a fifth of a second here); whatever uses the
   * cache first takes in the rest at once, so no lookup, change or snapshot
   * ever sees part of it.
   */
  restore({ tokens, answers }: CacheSnapshot, later?: (ms: number, callback: () => void) => () => void): void {
    const view = new DataView(answers.buffer, answers.byteOffset, answers.byteLength);
    // Checked whole now, so that taking it in later cannot fail.
    for (let at = 0; at < answers.length; ) {
      const end = at + ANSWER_HEADER > answers.length ? Infinity : at + ANSWER_HEADER + view.getUint32(at + 12) + view.getUint32(at + 16);
      if (end > answers.length || view.getUint32(at) >= tokens.length) throw new RangeError('a snapshot of the cache that does not hold together');
      at = end;
    }
    this.#unrestored = { tokens, answers, view, at: 0 };
    if (!later) return this.#restoreRest();
    const step = () => {
      if (!this.#unrestored) return;
      this.#restoreSome(RESTORE_CHUNK);
      this.#restoreTimer = this.#unrestored && later(0, step);
    };
    this.#restoreTimer = later(0, step);
  }

  /** Stop taking a snapshot in on timers (its kernel is closing): whatever uses the cache after takes in the rest at once. */
  stopRestoring(): void {
    this.#restoreTimer?.();
    this.#restoreTimer = undefined;
  }

  #restoreRest() {
    if (!this.#unrestored) return;
    this.stopRestoring();
    this.#restoreSome(Infinity);
  }

  #restoreSome(count: number) {
    const unrestored = this.#unrestored!;
    const { tokens, answers, view } = unrestored;
    let { at } = unrestored;
    for (let taken = 0; taken < count && at < answers.length; taken++) {
      const token = tokens[view.getUint32(at)]!;
      const from = view.getFloat64(at + 4);
      const argsLength = view.getUint32(at + 12);
      const valueLength = view.getUint32(at + 16);
      at += ANSWER_HEADER;
      const args = answers.subarray(at, (at += argsLength));
      // The value's own copy: the snapshot's bytes go once the cache is restored.
      const valueBytes = answers.slice(at, (at += valueLength));
      this.#keep(token, bytesKey(args), entryCost(args, valueBytes), new KeptAnswer(from, valueBytes));
    }
    unrestored.at = at;
    if (at >= answers.length) this.#unrestored = undefined;
  }

  /** Every answer kept for `token` (it was revoked). */
  forget(token: Token): void {
    this.#restoreRest();
    const byArgs = this.#byToken.get(token);
    if (!byArgs) return;
    for (const node of byArgs.values()) this.#drop(node);
  }

  #append(node: Node) {
    node.older = this.#newest;
    node.newer = undefined;
    if (this.#newest) this.#newest.newer = node;
    else this.#oldest = node;
    this.#newest = node;
  }

  #unlink(node: Node) {
    if (node.older) node.older.newer = node.newer;
    else this.#oldest = node.newer;
    if (node.newer) node.newer.older = node.older;
    else this.#newest = node.older;
    node.older = node.newer = undefined;
  }

  #drop(node: Node) {
    this.#unlink(node);
    const byArgs = this.#byToken.get(node.token)!;
    byArgs.delete(node.argsKey);
    if (this.#byFrom.get(node.answer.from) === node) this.#byFrom.delete(node.answer.from);
    if (byArgs.size === 0) this.#byToken.delete(node.token);
    this.#entries -= 1;
    this.#bytes -= node.cost;
  }
}
