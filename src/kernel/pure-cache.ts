/**
 * The kernel's cache of pure calls' answers: token → (canonical argument
 * bytes → outcome), bounded both in entries and in bytes, so that callers
 * with ever new arguments (or big ones: up to MAX_VALUE_BYTES each way)
 * cannot make a node hold more than `maxCacheBytes` of answers.
 *
 * Past either bound the least recently used answer goes first (a journaled
 * hit makes an answer the most recent). An entry bigger than the whole byte bound is
 * not kept at all.
 */
import type { Token } from '../interface/ids.js';
import { fulfilled, type Outcome } from '../interface/outcome.js';
import { bytesKey, decodeValue } from '../closures/values.js';

/** The bytes a `bytesKey` stands for (one char per byte). */
const keyBytes = (key: string): Uint8Array => {
  const bytes = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) bytes[i] = key.charCodeAt(i);
  return bytes;
};

export interface CachedAnswer {
  readonly outcome: Outcome;
  /** The journal record of the call that answered it. */
  readonly from: number;
  readonly valueBytes: Uint8Array;
}

/** The answers kept, least recently used first: each names its token by its place in `tokens` (a token has many answers), then its arguments, the record that answered and the value. */
export interface CacheSnapshot {
  readonly tokens: readonly Token[];
  readonly answers: ReadonlyArray<readonly [number, Uint8Array, number, Uint8Array]>;
}

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

  constructor(bounds: CacheBounds) {
    if (!(bounds.maxCacheEntries >= 0) || !(bounds.maxCacheBytes >= 0)) {
      throw new RangeError(`cache bounds must be whole numbers (got ${bounds.maxCacheEntries} entries, ${bounds.maxCacheBytes} bytes)`);
    }
    this.#bounds = bounds;
  }

  /** How much it holds now. */
  get use(): { entries: number; bytes: number; tokens: number } {
    return { entries: this.#entries, bytes: this.#bytes, tokens: this.#byToken.size };
  }

  /**
   * The answer kept for these arguments (canonical bytes), which becomes the
   * most recently used. The arguments are turned into a key only for a token
   * with answers kept: a call on anything else — a made-up token with a
   * megabyte of arguments, say — costs a lookup, not a pass over its bytes.
   */
  get(token: Token, args: Uint8Array): CachedAnswer | undefined {
    return this.#byToken.get(token)?.get(bytesKey(args))?.answer;
  }

  /**
   * The answer journaled as record `from` was used (a `hit` record): it
   * becomes the most recently used. Recency follows the journal's records,
   * not lookups, so that a cache rebuilt from them — by replay or from a
   * snapshot — is the live one, in the same order.
   */
  used(from: number): void {
    const node = this.#byFrom.get(from);
    if (!node) return;
    this.#unlink(node);
    this.#append(node);
  }

  set(token: Token, args: Uint8Array, answer: CachedAnswer): void {
    const cost = entryCost(args, answer.valueBytes);
    const fits = cost <= this.#bounds.maxCacheBytes && this.#bounds.maxCacheEntries > 0;
    const byArgs = this.#byToken.get(token);
    if (!fits && !byArgs) return;
    const argsKey = bytesKey(args);
    const old = byArgs?.get(argsKey);
    if (old) this.#drop(old);
    if (!fits) return;
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
    const tokens: Token[] = [];
    const numbers = new Map<Token, number>();
    const answers: Array<readonly [number, Uint8Array, number, Uint8Array]> = [];
    for (let node = this.#oldest; node; node = node.newer) {
      let number = numbers.get(node.token);
      if (number === undefined) numbers.set(node.token, (number = tokens.push(node.token) - 1));
      answers.push([number, keyBytes(node.argsKey), node.answer.from, node.answer.valueBytes]);
    }
    return { tokens, answers };
  }

  /** Take back what `snapshot` gave (into an empty cache): the same answers, in the same order of use. */
  restore({ tokens, answers }: CacheSnapshot): void {
    for (const [number, args, from, valueBytes] of answers) this.set(tokens[number]!, args, new KeptAnswer(from, valueBytes));
  }

  /** Every answer kept for `token` (it was revoked). */
  forget(token: Token): void {
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
