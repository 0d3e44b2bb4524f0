/// <reference types="ses" />
/**
 * The kernel core: publish modules, issue closures, answer calls, revoke.
 *
 * It holds no ambient authority of its own: the block store, identity,
 * journal, clock, randomness and timers are passed in as powers, so the same
 * core runs on a Node home directory, in memory for tests, or in a browser
 * tab. Every call ends in exactly one outcome — fulfilled, revoked or
 * promised — and never throws: a bad token, bad arguments or a closure that
 * throws all end as `revoked` with a reason a person can read.
 */
import { CID } from 'multiformats/cid';
import { asModuleId, asToken, isToken, quote, RAW_CODEC, type ModuleId, type Principal, type Token } from '../caps/ids.js';
import { blockCid } from '../store/hashing.js';
import type { BlockStore } from '../store/types.js';
import type { Identity } from '../identity/identity.js';
import { analyzeModule, classifyModule, moduleKindOf, ModuleRunner, PublishError } from '../closures/modules.js';
import { assertExportName, makeClosure, readClosure, ClosureError, type Closure } from '../closures/closure.js';
import { bytesKey, copyValue, encodeValue, isLink, link, type GridValue, type Link } from '../closures/values.js';
import { encodedPayload, type Entry, type Journal } from '../journal/journal.js';
import { GridError } from '../caps/errors.js';

export type Outcome =
  | { readonly status: 'fulfilled'; readonly value: GridValue }
  | { readonly status: 'revoked'; readonly reason: string }
  | { readonly status: 'promised'; readonly token: Token };

export interface KernelLimits {
  /** Wall-clock budget for one call, nested calls included. */
  readonly callTimeoutMs: number;
  /** How deep `ctx.call` may nest. */
  readonly maxCallDepth: number;
  /** How many `ctx.call`s one call may make. */
  readonly maxFanOut: number;
  /** How many further promises `follow` chases before giving up. */
  readonly maxFollow: number;
  /** Pure-call results kept in memory; past it, the oldest tokens' entries go first. */
  readonly maxCacheEntries: number;
}

export const DEFAULT_LIMITS: KernelLimits = harden({
  callTimeoutMs: 5000,
  maxCallDepth: 16,
  maxFanOut: 64,
  maxFollow: 16,
  maxCacheEntries: 100_000,
});

export interface KernelPowers {
  readonly store: BlockStore;
  readonly identity: Identity;
  readonly journal: Journal;
  readonly clock: () => number;
  readonly randomBytes: (length: number) => Uint8Array;
  readonly setTimer: (ms: number, callback: () => void) => () => void;
  readonly limits?: Partial<KernelLimits>;
  /** Called once the journal is closed (e.g. to release the home lock). */
  readonly onClose?: () => Promise<void>;
}

export interface CallOptions {
  /** Chase further promises until fulfilled or revoked. */
  readonly follow?: boolean;
}

export interface IssueSpec {
  readonly code: string;
  readonly export: string;
  readonly env?: unknown;
}

export class KernelError extends GridError {}

/** Thrown by `ctx.revoke` to end the current call as revoked. */
class RevokeSignal {
  constructor(readonly reason: string) {}
}

const MAX_REASON = 500;
// Outcomes hold only primitives and deeply frozen values, so a shallow freeze hardens them.
const revoked = (reason: string): Outcome => Object.freeze({ status: 'revoked', reason: reason.slice(0, MAX_REASON) });
const fulfilled = (value: GridValue): Outcome => Object.freeze({ status: 'fulfilled', value });
const promised = (token: Token): Outcome => Object.freeze({ status: 'promised', token });

/** Describe whatever a hostile closure threw without trusting it. */
const describeThrown = (thrown: unknown): string => {
  try {
    if (thrown instanceof RevokeSignal) return thrown.reason;
    if (typeof thrown === 'object' && thrown !== null) {
      const message = (thrown as { message?: unknown }).message;
      if (typeof message === 'string') return message;
    }
    return String(thrown);
  } catch {
    return 'unprintable error';
  }
};

const isThenable = (value: unknown): value is PromiseLike<unknown> => {
  try {
    return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
  } catch {
    return false;
  }
};

/** The part of a call's state that nested calls share. */
interface CallFrame {
  readonly caller: Principal;
  readonly depth: number;
  readonly parent: number | undefined;
  readonly deadline: number;
}

/** What one running call knows about itself. */
interface CallState {
  readonly frame: CallFrame;
  readonly closure: Closure;
  readonly seq: number;
  pure: boolean;
  done: boolean;
  fanOut: number;
}

/**
 * `ctx`, the one object a closure gets besides its arguments. Its methods
 * live on a hardened prototype and its state in a private field, so a closure
 * can neither reach another call's state nor keep using its own after the
 * call has ended.
 */
class CallContext {
  readonly #kernel: Kernel;
  readonly #state: CallState;
  readonly env: GridValue;

  constructor(kernel: Kernel, state: CallState) {
    this.#kernel = kernel;
    this.#state = state;
    this.env = state.closure.env;
  }

  /** Who is calling. Reading it makes the call depend on the caller, so not cacheable. */
  get caller(): Principal {
    this.#state.pure = false;
    return this.#state.frame.caller;
  }

  call(token: unknown, ...args: unknown[]): Promise<GridValue> {
    const state = this.#state;
    state.pure = false;
    if (state.done) return Promise.reject(new Error('this call has ended; its ctx can no longer call'));
    state.fanOut += 1;
    if (state.fanOut > this.#kernel.limits.maxFanOut) {
      return Promise.reject(new RangeError(`fan-out limit: at most ${this.#kernel.limits.maxFanOut} ctx.call per call`));
    }
    const target = isLink(token) ? token['/'] : token;
    const frame: CallFrame = {
      caller: state.closure.issuer,
      depth: state.frame.depth + 1,
      parent: state.seq,
      deadline: state.frame.deadline,
    };
    return this.#kernel.invokeNested(target, args, frame).then((outcome) => {
      if (outcome.status === 'fulfilled') return outcome.value;
      throw new Error(`revoked: ${outcome.status === 'revoked' ? outcome.reason : 'unresolved further promise'}`);
    });
  }

  revoke(reason: unknown = 'revoked by closure'): never {
    throw new RevokeSignal(typeof reason === 'string' ? reason : 'revoked by closure');
  }

  async issue(spec: { export: string; env?: unknown }): Promise<Link> {
    const state = this.#state;
    state.pure = false;
    if (state.done) throw new Error('this call has ended; its ctx can no longer issue');
    const token = await this.#kernel.issueFor(state.closure, spec);
    return link(token);
  }
}
harden(CallContext);

export class Kernel {
  readonly #powers: KernelPowers;
  readonly limits: KernelLimits;
  readonly #runner: ModuleRunner;
  readonly #closures = new Map<Token, Closure>();
  readonly #revoked = new Map<Token, string>();
  /** token → (canonical args bytes → outcome) for pure fulfilled calls. */
  readonly #cache = new Map<Token, Map<string, { outcome: Outcome; from: number }>>();
  #cacheEntries = 0;
  #closed = false;

  constructor(powers: KernelPowers) {
    this.#powers = powers;
    this.limits = harden({ ...DEFAULT_LIMITS, ...powers.limits });
    // The closure-side API, what `import … from 'promisegrid'` gives a module.
    this.#runner = new ModuleRunner({
      isToken: (x: unknown) => isLink(x) && isToken(x['/']),
      link: (cid: string) => link(asToken(cid)),
    });
    this.#replay(powers.journal.entries());
  }

  get principal(): Principal {
    return this.#powers.identity.principal;
  }

  get journal(): Journal {
    return this.#powers.journal;
  }

  /** Rebuild revocations and the pure-call cache from the journal. */
  #replay(entries: readonly Entry[]) {
    const calls = new Map<number, Extract<Entry, { kind: 'call' }>>();
    for (const entry of entries) {
      if (entry.kind === 'call') calls.set(entry.seq, entry);
      else if (entry.kind === 'revoke') {
        this.#revoked.set(entry.token, entry.reason);
        this.#forget(entry.token);
      } else if (entry.kind === 'fulfilled' && entry.pure) {
        const call = calls.get(entry.call);
        if (call && !this.#revoked.has(call.token)) this.#remember(call.token, bytesKey(encodedPayload(call)!), fulfilled(entry.value), entry.seq);
      }
    }
  }

  #remember(token: Token, argsKey: string, outcome: Outcome, from: number) {
    let byArgs = this.#cache.get(token);
    if (!byArgs) this.#cache.set(token, (byArgs = new Map()));
    if (!byArgs.has(argsKey)) this.#cacheEntries += 1;
    byArgs.set(argsKey, { outcome, from });
    for (const oldest of this.#cache.keys()) {
      if (this.#cacheEntries <= this.limits.maxCacheEntries) break;
      this.#forget(oldest);
    }
  }

  #forget(token: Token) {
    this.#cacheEntries -= this.#cache.get(token)?.size ?? 0;
    this.#cache.delete(token);
  }

  /** Store a JS or WebAssembly module; returns its CID. Refuses forbidden imports. */
  async publish(payload: string | Uint8Array): Promise<ModuleId> {
    this.#assertOpen();
    const { kind, bytes, text } = classifyModule(payload);
    if (kind === 'js') {
      const analyzed = analyzeModule(text!);
      for (const dep of analyzed.dependencies) await this.#loadModule(dep);
      // Compile before storing, so a module that SES refuses is never written.
      this.#runner.compile(asModuleId(blockCid(bytes, RAW_CODEC).toString()), analyzed);
    }
    const cid = await this.#powers.store.put(bytes, { codec: RAW_CODEC });
    return asModuleId(cid.toString());
  }

  async #loadModule(id: ModuleId): Promise<void> {
    if (this.#runner.get(id)) return;
    const bytes = await this.#powers.store.get(CID.parse(id)).catch((error: Error & { code?: string }) => {
      throw new KernelError(error.code === 'ERR_NOT_FOUND' ? 'ERR_UNKNOWN_MODULE' : 'ERR_STORE', error.code === 'ERR_NOT_FOUND' ? `unknown module ${id}` : error.message);
    });
    if (moduleKindOf(bytes) === 'wasm') {
      throw new KernelError('ERR_WASM_VAT', `module ${id} is WebAssembly; WebAssembly closures run in vats, which this node does not have yet`);
    }
    const analyzed = analyzeModule(new TextDecoder().decode(bytes));
    for (const dep of analyzed.dependencies) await this.#loadModule(dep);
    this.#runner.compile(id, analyzed);
  }

  /** Make a closure over a published module; returns its token. */
  async issue(spec: IssueSpec): Promise<Token> {
    this.#assertOpen();
    const code = asModuleId(spec.code);
    return this.#issue(code, spec.export, spec.env ?? {});
  }

  /** `ctx.issue`: a closure may mint closures over its own module only. */
  issueFor(parent: Closure, spec: { export: string; env?: unknown }): Promise<Token> {
    if (parent.issuer !== this.#powers.identity.principal) {
      throw new KernelError('ERR_NOT_ISSUER', 'this node cannot sign for the closure\'s issuer');
    }
    return this.#issue(parent.code, spec?.export, spec?.env ?? {});
  }

  async #issue(code: ModuleId, exportName: string, env: unknown): Promise<Token> {
    assertExportName(exportName);
    await this.#loadModule(code);
    const compiled = this.#runner.get(code)!;
    if (!compiled.exports.includes(exportName)) {
      throw new KernelError(
        'ERR_NO_EXPORT',
        `module ${code} has no export ${quote(exportName)} (it exports: ${compiled.exports.join(', ') || 'nothing'})`,
      );
    }
    const { bytes, closure } = makeClosure({ code, export: exportName, env }, this.#powers.identity, this.#powers.randomBytes(16));
    await this.#powers.store.putVerified(CID.parse(closure.token), bytes);
    this.#closures.set(closure.token, closure);
    this.#powers.journal.append({ kind: 'issue', token: closure.token, code, export: exportName, issuer: closure.issuer });
    return closure.token;
  }

  /** Read a closure record (verifying its signature). */
  async closure(token: string): Promise<Closure> {
    const checked = asToken(token);
    const cached = this.#closures.get(checked);
    if (cached) return cached;
    let bytes: Uint8Array;
    try {
      bytes = await this.#powers.store.get(CID.parse(checked));
    } catch (error) {
      const code = (error as { code?: string }).code;
      throw new KernelError(code === 'ERR_NOT_FOUND' ? 'ERR_UNKNOWN_TOKEN' : 'ERR_STORE', code === 'ERR_NOT_FOUND' ? 'unknown token' : (error as Error).message);
    }
    const closure = readClosure(checked, bytes);
    this.#closures.set(checked, closure);
    return closure;
  }

  /** Break the promise: every later call through `token` is revoked. */
  async revoke(token: string, reason = 'revoked by issuer'): Promise<void> {
    this.#assertOpen();
    const closure = await this.closure(token);
    if (closure.issuer !== this.#powers.identity.principal) {
      throw new KernelError('ERR_NOT_ISSUER', `only the issuer (${closure.issuer}) can revoke this token`);
    }
    if (this.#revoked.has(closure.token)) return;
    const text = String(reason).slice(0, MAX_REASON);
    this.#revoked.set(closure.token, text);
    this.#forget(closure.token);
    this.#powers.journal.append({ kind: 'revoke', token: closure.token, reason: text, by: this.#powers.identity.principal });
  }

  isRevoked(token: Token): boolean {
    return this.#revoked.has(token);
  }

  /** Call a token. Never throws: every failure is a revoked outcome. */
  async call(token: string, args: readonly unknown[] = [], options: CallOptions = {}): Promise<Outcome> {
    try {
      return await this.#call(token, args, options);
    } catch (error) {
      // Only the kernel's own failures land here (e.g. closed mid-call);
      // closures' failures are outcomes already.
      return revoked(`kernel: ${describeThrown(error)}`);
    }
  }

  async #call(token: string, args: readonly unknown[], options: CallOptions): Promise<Outcome> {
    if (this.#closed) return revoked('kernel is closed');
    const frame: CallFrame = {
      caller: this.#powers.identity.principal,
      depth: 0,
      parent: undefined,
      deadline: this.#powers.clock() + this.limits.callTimeoutMs,
    };
    let outcome = await this.#invoke(token, args, frame);
    if (options.follow) {
      for (let hops = 0; outcome.status === 'promised'; hops += 1) {
        if (hops >= this.limits.maxFollow) return revoked(`further promises nested deeper than ${this.limits.maxFollow}`);
        outcome = await this.#invoke(outcome.token, [], { ...frame, deadline: this.#powers.clock() + this.limits.callTimeoutMs });
      }
    }
    return outcome;
  }

  /** `ctx.call`: nested calls follow further promises within the same deadline. */
  async invokeNested(token: unknown, args: readonly unknown[], frame: CallFrame): Promise<Outcome> {
    if (frame.depth > this.limits.maxCallDepth) return revoked(`call depth limit (${this.limits.maxCallDepth})`);
    let outcome = await this.#invoke(token, args, frame);
    for (let hops = 0; outcome.status === 'promised' && hops < this.limits.maxFollow; hops += 1) {
      outcome = await this.#invoke(outcome.token, [], frame);
    }
    return outcome;
  }

  async #invoke(tokenText: unknown, args: readonly unknown[], frame: CallFrame): Promise<Outcome> {
    let token: Token;
    if (typeof tokenText === 'string' && this.#closures.has(tokenText as Token)) {
      token = tokenText as Token; // already checked when its closure was loaded
    } else {
      try {
        token = asToken(tokenText);
      } catch (error) {
        return revoked((error as Error).message);
      }
    }
    let argsBytes: Uint8Array;
    try {
      if (!Array.isArray(args)) throw new TypeError('arguments must be an array');
      argsBytes = encodeValue(args);
    } catch (error) {
      return revoked(`bad arguments: ${(error as Error).message}`);
    }
    const journal = this.#powers.journal;
    const argsKey = bytesKey(argsBytes);
    const hit = this.#cache.get(token)?.get(argsKey);
    if (hit) {
      // The arguments are those of the call that `from` answered: same bytes, same key.
      journal.append({ kind: 'hit', token, caller: frame.caller, from: hit.from, parent: frame.parent });
      return hit.outcome;
    }
    const call = journal.append({ kind: 'call', token, caller: frame.caller, args: argsBytes, parent: frame.parent });
    const { outcome, pure, valueBytes } = await this.#run(token, argsBytes, frame, call.seq);
    if (outcome.status === 'fulfilled') {
      const entry = journal.append({ kind: 'fulfilled', call: call.seq, value: valueBytes!, pure });
      // A revocation may have landed while the call ran.
      if (pure && !this.#revoked.has(token)) this.#remember(token, argsKey, outcome, entry.seq);
    } else if (outcome.status === 'revoked') {
      journal.append({ kind: 'revoked', call: call.seq, reason: outcome.reason });
    } else {
      journal.append({ kind: 'promised', call: call.seq, token: outcome.token });
    }
    return outcome;
  }

  async #run(
    token: Token,
    argsBytes: Uint8Array,
    frame: CallFrame,
    seq: number,
  ): Promise<{ outcome: Outcome; pure: boolean; valueBytes?: Uint8Array }> {
    const impure = (outcome: Outcome) => ({ outcome, pure: false });
    const reason = this.#revoked.get(token);
    if (reason !== undefined) return impure(revoked(reason));
    let closure: Closure;
    let entry: unknown;
    try {
      // Warm calls find closure and module in memory and never await here.
      closure = this.#closures.get(token) ?? (await this.closure(token));
      if (!this.#runner.get(closure.code)) await this.#loadModule(closure.code);
      entry = this.#runner.instantiate(closure.code)[closure.export];
    } catch (error) {
      if (error instanceof KernelError || error instanceof ClosureError || error instanceof PublishError) return impure(revoked(error.message));
      return impure(revoked(`could not load closure: ${describeThrown(error)}`));
    }
    if (typeof entry !== 'function') return impure(revoked(`export ${quote(closure.export)} is not a function`));
    const state: CallState = { frame, closure, seq, pure: true, done: false, fanOut: 0 };
    // The prototype is hardened once and `env` is deeply frozen: freezing the instance hardens it.
    const ctx = Object.freeze(new CallContext(this, state));
    try {
      let result = entry(ctx, ...(copyValue(argsBytes) as GridValue[]));
      if (isThenable(result)) result = await this.#withDeadline(result, frame.deadline);
      if (isLink(result)) {
        const further = asToken(result['/']);
        return impure(promised(further));
      }
      const valueBytes = encodeValue(result === undefined ? null : result);
      return { outcome: fulfilled(copyValue(valueBytes)), pure: state.pure, valueBytes };
    } catch (error) {
      return impure(revoked(describeThrown(error)));
    } finally {
      state.done = true;
    }
  }

  #withDeadline<T>(promise: PromiseLike<T>, deadline: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cancel = this.#powers.setTimer(Math.max(0, deadline - this.#powers.clock()), () =>
        reject(new RevokeSignal('time limit')),
      );
      Promise.resolve(promise).then(
        (value) => {
          cancel();
          resolve(value);
        },
        (error) => {
          cancel();
          reject(error);
        },
      );
    });
  }

  #assertOpen() {
    if (this.#closed) throw new KernelError('ERR_CLOSED', 'kernel is closed');
  }

  /** Make the journal durable. */
  flush(): Promise<void> {
    return this.#powers.journal.flush();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#powers.journal.close();
    } finally {
      await this.#powers.onClose?.();
    }
  }
}
