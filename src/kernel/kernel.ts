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
import { asModuleId, asToken, quote, RAW_CODEC, type ModuleId, type Principal, type Token } from '../caps/ids.js';
import { blockCid } from '../store/hashing.js';
import type { BlockStore } from '../store/types.js';
import type { Identity } from '../identity/identity.js';
import { analyzeModule, classifyModule, moduleKindOf } from '../closures/modules.js';
import { ModuleRunner } from '../closures/runner.js';
import { assertExportName, makeClosure, readClosure, type Closure } from '../closures/closure.js';
import { bytesKey, CLOSURE_API, decodeValue, encodeValue, MAX_VALUE_BYTES, type GridValue } from '../closures/values.js';
import { encodedPayload, type Entry, type Journal } from '../journal/journal.js';
import { describeThrown, GridError } from '../caps/errors.js';
import { abortReason, CANCELLED, onAbort } from '../caps/cancel.js';
import { REVOKE_CAUSES, type RevokeCause, type Settlement } from '../caps/outcome.js';
import { VatPool } from '../vat/pool.js';
import type { Answer as VatAnswer, WasmRecord } from '../vat/protocol.js';
import { capMemory, shapeOf } from '../vat-wasm/binary.js';
import { assertGrantedImports, conventionOf } from '../vat-wasm/vat.js';
import { isSignedRevocation, signRevocation, type RevocationNotice } from './revocations.js';
import { DAG_CBOR_CODEC } from '../caps/ids.js';
import { decode, encode } from '../wire/index.js';
import { isDelegationRecord, makeDelegation, MAX_CHAIN, readDelegation, sealToken, verifyChain, type Delegation, type PolicyRef } from '../screener/delegation.js';
import { ReputationTally, type Reputation } from '../journal/graph.js';
import { PureCallCache } from './pure-cache.js';
import { makeQuotaKeeper, RECORD_BYTES, STORAGE_QUOTA, type QuotaKeeper, type StorageQuota } from './quota.js';
import { disclose, type Disclosure } from '../journal/disclosure.js';
import { Screens, type PolicyRequest, type Position, type Screening } from '../screener/screen.js';

export type Outcome = Settlement<GridValue, Token>;

/** An outcome as a node gives it to a peer: may whoever receives it cache it, or fetch the closure itself? */
export interface Answer {
  readonly outcome: Outcome;
  readonly cacheable: boolean;
  /** The closure is replicable: the receiver may fetch it and answer it on its own. */
  readonly replicable?: boolean;
  /** The fulfilled value's canonical bytes, when the kernel holds them already: a reply need not encode it again. */
  readonly valueBytes?: Uint8Array;
}

/** A replicable closure's blocks: its record, and its modules with dependencies first. */
export interface Replica {
  readonly closure: Uint8Array;
  readonly modules: readonly Uint8Array[];
}

/**
 * What a call through a delegation brings, so that the node that answers it
 * needs nothing from the delegators: the chain's records (outermost first)
 * and the policy modules it uses that are not shipped with every node.
 */
export interface ChainBlocks {
  readonly links: readonly Uint8Array[];
  readonly modules: readonly Uint8Array[];
}

export interface DelegateSpec {
  /** The token to delegate: one this node issued, or one delegated to it. */
  readonly token: string;
  /** Who may call the new token. */
  readonly to: readonly string[];
  /** Policies, each a module exporting `screen` (or the name of a shipped policy) with its settings. */
  readonly policies?: ReadonlyArray<{ readonly module: string; readonly settings?: unknown }>;
}

/** A call waiting for approvals, as `pendingFor` shows it to an approver or its caller. */
export interface PendingView {
  /** The further promise: approvers call it with "approve", the caller calls it to collect. */
  readonly token: Token;
  /** The delegation the call came through. */
  readonly delegation: Token;
  readonly caller: Principal;
  readonly args: readonly GridValue[];
  /** Why it waits, as its policy says. */
  readonly reason: string;
  /** Whose approvals count (empty if the policy does not say), and who has approved. */
  readonly approvers: readonly Principal[];
  readonly approvedBy: readonly Principal[];
  /** When it began to wait (the node's clock). */
  readonly since: number;
  /** What the principal asking may do: approve it, or collect its answer. */
  readonly yours: 'approve' | 'collect';
}

/** A call waiting for approvals: a further promise whose token is `token`. */
interface PendingCall {
  readonly token: Token;
  readonly chain: readonly Delegation[];
  readonly root: Closure;
  readonly caller: Principal;
  readonly args: readonly GridValue[];
  /** The call that made it wait. */
  readonly call: number;
  at: Position;
  /** Approvals that counted (or, under a policy that names no approvers, every approval). */
  readonly approvals: Set<Principal>;
  /** Whose approval the policy it waits on counts, if it names them; why it waits. */
  approvers: ReadonlySet<Principal> | undefined;
  reason: string;
  /** When it began to wait. */
  readonly since: number;
  /** Approvals are applied one at a time. */
  turn: Promise<void>;
  settled?: Outcome;
  readonly settle: (outcome: Outcome) => void;
  readonly done: Promise<Outcome>;
  /** Stops its timer: a waiting call is kept PENDING_TTL_MS, then forgotten (revoked if still waiting). */
  cancelExpiry: () => void;
}

/** How long a call may wait for approvals, and how long its answer is kept for its caller after. */
const PENDING_TTL_MS = 60 * 60 * 1000;

/** How often changed policy state is written to the journal. */
const POLICY_STATE_MS = 100;
/** Most revocations of delegations not yet seen here that a node keeps, waiting to see them. */
const MAX_UNSEEN_REVOCATIONS = 10_000;
/** Most signers whose notices for one unseen delegation are kept: a flood of forged ones cannot grow without bound. */
const MAX_SIGNERS_PER_UNSEEN = 16;
/** Most calls that may wait for approvals on one node at once. */
const MAX_PENDING_CALLS = 10_000;

/** Most modules a replica may bring along. */
const MAX_REPLICA_MODULES = 64;

export interface KernelLimits {
  /** Wall-clock budget for one call, nested calls included. */
  readonly callTimeoutMs: number;
  /** How deep `ctx.call` may nest. */
  readonly maxCallDepth: number;
  /** How many `ctx.call`s one call may make. */
  readonly maxFanOut: number;
  /** How many further promises `follow` chases before giving up. */
  readonly maxFollow: number;
  /** How many nodes a forwarded call may pass through. */
  readonly maxHops: number;
  /** Pure-call results kept in memory; past it, the least recently used go first (pure-cache.ts). */
  readonly maxCacheEntries: number;
  /** Bytes of pure-call results (arguments and values) kept in memory, at most. */
  readonly maxCacheBytes: number;
  /** Vat worker threads. */
  readonly vats: number;
  /** Heap budget of one vat, in MiB. */
  readonly vatMemoryMb: number;
  /** Most 64 KiB pages a WebAssembly closure's memory may grow to. */
  readonly wasmMaxPages: number;
  /**
   * Most calls one caller may have waiting for approvals on this node at
   * once: the node's own limit (10,000) is shared, and one caller must not
   * fill it for everyone else.
   */
  readonly maxWaitingPerCaller: number;
  /** What one caller, and all callers but this node together, may make it store (quota.ts). */
  readonly storage: StorageQuota;
}

export const DEFAULT_LIMITS: KernelLimits = harden({
  callTimeoutMs: 5000,
  maxCallDepth: 16,
  maxFanOut: 64,
  maxFollow: 16,
  maxHops: 8,
  maxCacheEntries: 100_000,
  maxCacheBytes: 64 * 1024 * 1024,
  vats: 2,
  vatMemoryMb: 256,
  wasmMaxPages: 256,
  maxWaitingPerCaller: 1000,
  storage: STORAGE_QUOTA,
});

export interface KernelPowers {
  readonly store: BlockStore;
  readonly identity: Identity;
  readonly journal: Journal;
  readonly clock: () => number;
  readonly randomBytes: (length: number) => Uint8Array;
  readonly setTimer: (ms: number, callback: () => void) => () => void;
  readonly limits?: Partial<KernelLimits>;
  /** The policies shipped with the node, by name (`expiry`, `rate`, …): module source text. */
  readonly policies?: Readonly<Record<string, string>>;
  /** Called once the journal is closed (e.g. to release the home lock). */
  readonly onClose?: () => Promise<void>;
  /** Where lines logged by closures (grid.log) go; dropped if absent. */
  readonly log?: (token: Token, line: string) => void;
  /** Peers to ask about tokens this node does not hold (forwarding); none if absent. */
  readonly forward?: Forwarder;
  /** Serving this kernel to the network and calling other nodes; the kernel has no network without it. */
  readonly network?: Network;
}

/** What the kernel needs of a network: the Node wiring gives WebSockets. */
export interface Network {
  /** Serve `kernel` to peers and clients; resolves once it listens. */
  listen(kernel: Kernel, options: { host?: string; port?: number }): Promise<{ readonly url: string; close(): Promise<void> }>;
  /** Call a token on the node at `url`, as this kernel's principal. Never rejects. */
  call(url: string, token: string, args: readonly unknown[], options: { follow?: boolean; timeoutMs: number; signal?: AbortSignal }): Promise<Outcome>;
  /** Drop every connection it opened. */
  close(): Promise<void>;
}

export interface CallOptions {
  /** Chase further promises until fulfilled or revoked. */
  readonly follow?: boolean;
  /**
   * With `follow`: how long to keep waiting on a further promise that is
   * still pending (a call waiting for approvals), in milliseconds. Without
   * it a call waits one call limit; past it the further promise is the answer.
   */
  readonly waitMs?: number;
  /** Who is calling, when it is not this node (an authenticated connection's principal). */
  readonly caller?: Principal;
  /** The nodes a forwarded call has already passed through, first to last. */
  readonly path?: readonly Principal[];
  /** Make the call on the node at this URL (`ws://host:port`) rather than here. */
  readonly via?: string;
  /** The delegation chain of the token called, for a node that has not seen it. */
  readonly chain?: ChainBlocks;
  /**
   * Cancels the call: it ends `revoked: cancelled by caller` wherever it is
   * (its vat is stopped; calls it made, and a forwarded call's peer, are
   * cancelled too). Journaled as the node's doing, never the issuer's.
   */
  readonly signal?: AbortSignal;
}

export interface AnswerOptions extends CallOptions {
  /** `args` as they arrived, canonical CBOR the strict decoder accepted: the kernel need not encode them again. */
  readonly argsBytes?: Uint8Array;
}

/**
 * Ask peers to answer a call this node has no closure for, before the
 * clock reads `deadline`; `undefined` if no peer knows the token.
 */
export type Forwarder = (request: {
  readonly token: Token;
  readonly args: readonly GridValue[];
  readonly path: readonly Principal[];
  readonly deadline: number;
  readonly chain?: ChainBlocks;
  readonly signal?: AbortSignal;
}) => Promise<{ readonly answer: Answer; readonly peer?: Principal; readonly replica?: Replica } | undefined>;

/**
 * Told of every revocation this node makes or hears, with the principals it
 * gave cacheable answers for the token: they must hear of it too.
 */
export type RevocationListener = (notice: RevocationNotice, audience: ReadonlySet<Principal>) => Promise<void> | void;

export interface IssueSpec {
  readonly code: string;
  readonly export: string;
  readonly env?: unknown;
  /** A time limit for each call, below the node's own (`limits.callTimeoutMs`). */
  readonly timeLimitMs?: number;
  /** Let holders of the token fetch the closure and run it themselves (its env is then public to them). */
  readonly replicable?: boolean;
}

export class KernelError extends GridError {}

/** One call's end, as #invoke hands it up: `pure` if it may be cached, with its value's canonical bytes. */
interface Invoked {
  readonly outcome: Outcome;
  readonly pure: boolean;
  readonly valueBytes?: Uint8Array;
}

const MAX_REASON = 500;
/** Tokens remembered as not in the store, at most; past it the memory starts over. */
const MAX_ABSENT = 10_000;
/** How much longer than a call's own limit a caller waits for another node's answer. */
export const REMOTE_GRACE_MS = 1000;
// Outcomes hold only primitives and deeply frozen values, so a shallow freeze hardens them.
const revoked = (reason: string): Outcome => Object.freeze({ status: 'revoked', reason: reason.slice(0, MAX_REASON) });
const fulfilled = (value: GridValue): Outcome => Object.freeze({ status: 'fulfilled', value });
const promised = (token: Token): Outcome => Object.freeze({ status: 'promised', token });
/**
 * Why a revoked outcome was revoked, for its journal record. Kept beside the
 * outcome, not in it, so outcomes keep the shape callers see; a revocation the
 * kernel makes without naming a cause is the node's (`node`), never held
 * against an issuer.
 */
const causes = new WeakMap<Outcome, RevokeCause>();
const revokedBecause = (reason: string, cause: RevokeCause): Outcome => {
  const outcome = revoked(reason);
  causes.set(outcome, cause);
  return outcome;
};
/** A vat's cause for a revocation, checked like the rest of its answer; none is the node's. */
const vatCause = (cause: unknown): RevokeCause => (cause === undefined ? 'node' : REVOKE_CAUSES.includes(cause as RevokeCause) ? (cause as RevokeCause) : 'crash');

/** Least time between two calls on a further promise that is still waiting. */
const FOLLOW_FLOOR_MS = 250;

/**
 * Follow a further promise that is still pending by calling it again (each
 * call waits up to a call limit where the promise lives) until it settles or
 * `waitMs` passes; then the further promise is the answer. A call still out
 * then is left to end on its own.
 */
export const untilSettled = async (
  first: Outcome,
  callAgain: (token: Token) => Promise<Outcome>,
  waitMs: number,
  setTimer: (ms: number, callback: () => void) => () => void,
  clock: () => number,
): Promise<Outcome> => {
  let outcome = first;
  if (outcome.status !== 'promised') return outcome;
  let expire!: () => void;
  const expired = new Promise<undefined>((resolve) => (expire = () => resolve(undefined)));
  const cancel = setTimer(Math.max(0, waitMs), expire);
  try {
    while (outcome.status === 'promised') {
      const asked = clock();
      const next: Outcome | undefined = await Promise.race([callAgain(outcome.token), expired]);
      if (next === undefined) break;
      outcome = next;
      // A node that answers "still waiting" at once (a very short call limit) is not asked again in a tight loop.
      const early = outcome.status === 'promised' ? FOLLOW_FLOOR_MS - (clock() - asked) : 0;
      if (early > 0 && (await Promise.race([new Promise<true>((resolve) => setTimer(early, () => resolve(true))), expired])) === undefined) break;
    }
  } finally {
    cancel();
  }
  return outcome;
};

const toVatAnswer = (outcome: Outcome): VatAnswer =>
  outcome.status === 'fulfilled' ? { status: 'fulfilled', value: encodeValue(outcome.value) } : outcome;

/** The part of a call's state that nested calls share. */
interface CallFrame {
  readonly caller: Principal;
  readonly path: readonly Principal[];
  readonly depth: number;
  readonly parent: number | undefined;
  deadline: number;
  /** The caller's cancel, shared by every call this one makes. */
  readonly signal?: AbortSignal;
}

export class Kernel {
  readonly #powers: KernelPowers;
  readonly limits: KernelLimits;
  /** Compiles modules at publish time, to refuse what vats would refuse. */
  readonly #runner: ModuleRunner;
  readonly #vats: VatPool;
  /** WebAssembly modules, checked and with their memory capped. */
  readonly #wasm = new Map<ModuleId, WasmRecord>();
  readonly #closures = new Map<Token, Closure>();
  readonly #revoked = new Map<Token, string>();
  /** token → (canonical args bytes → outcome) for pure fulfilled calls. */
  readonly #cache: PureCallCache;
  /** Tokens the store was found not to hold (see #tokenBlock), and a count of stores begun and ended. */
  readonly #absent = new Set<Token>();
  #stores = 0;
  /** The peer whose answers this node cached, per token it holds no closure for: revocations it relays are believed. */
  readonly #upstream = new Map<Token, Principal>();
  /** Who got cacheable answers from this node, per token: they hear of its revocation. */
  readonly #servedTo = new Map<Token, Set<Principal>>();
  /** Signed revocations, heard from peers or (lazily) signed here. */
  readonly #notices = new Map<Token, RevocationNotice>();
  readonly #revocationListeners = new Set<RevocationListener>();
  readonly #servers: Array<{ close(): Promise<void> }> = [];
  /** Delegation records seen here, their signatures checked. */
  readonly #delegations = new Map<Token, Delegation>();
  /** Shipped policies: module id → source bytes. They run in the kernel's thread, with no vat hop. */
  readonly #shippedPolicies = new Map<ModuleId, Uint8Array>();
  readonly #policyNames = new Map<string, ModuleId>();
  readonly #screens: Screens;
  readonly #pending = new Map<Token, PendingCall>();
  /** Signed revocations of delegations not seen here yet: applied if the delegation turns up and its delegator signed them. */
  readonly #unseenRevocations = new Map<Token, Map<Principal, { notice: RevocationNotice; from: Principal }>>();
  /** Calls in #pending not answered yet (answered ones stay a while for their callers to collect). */
  #waitingCalls = 0;
  /** Of those, per caller. */
  readonly #waitingBy = new Map<Principal, number>();
  /** Chains verified once, by their outermost token: their links are immutable, only revocations need checking again. */
  readonly #chains = new Map<Token, Delegation[]>();
  readonly #reputation = new ReputationTally();
  /** Sealed reference → token, for the closures this node holds (see sealToken). */
  readonly #sealed = new Map<string, Token>();
  readonly #changedStates = new Map<string, { layer: Token; index: number; state: GridValue }>();
  readonly #quota: QuotaKeeper;
  #stateTimer: (() => void) | undefined;
  #closed = false;

  constructor(powers: KernelPowers) {
    this.#powers = powers;
    this.limits = harden({ ...DEFAULT_LIMITS, ...powers.limits });
    this.#cache = new PureCallCache(this.limits);
    this.#quota = makeQuotaKeeper({ quota: this.limits.storage, clock: powers.clock, exempt: powers.identity.principal });
    this.#runner = new ModuleRunner(CLOSURE_API);
    this.#vats = new VatPool(
      {
        moduleRecord: async (id) => {
          await this.#loadModule(id);
          const wasm = this.#wasm.get(id);
          return wasm ? { wasm } : { js: this.#runner.get(id)!.record };
        },
        setTimer: powers.setTimer,
      },
      this.limits,
    );
    for (const [name, source] of Object.entries(powers.policies ?? {})) {
      const bytes = new TextEncoder().encode(source);
      const id = asModuleId(blockCid(bytes, RAW_CODEC).toString());
      this.#shippedPolicies.set(id, bytes);
      this.#policyNames.set(name, id);
    }
    this.#screens = new Screens({
      clock: powers.clock,
      runPolicy: (policy, caller, request) => this.#runPolicy(policy, caller, request),
      reputation: (principal) => this.#reputation.of(principal),
      stateChanged: (layer, index, state) => this.#policyStateChanged(layer, index, state),
      issuerOf: (token) => this.#reputation.issuerOf(token),
    });
    this.#replay(powers.journal.entries());
    powers.journal.onAppend((entry) => this.#reputation.add(entry));
  }

  /**
   * Policy state is written to the journal at most every POLICY_STATE_MS
   * (and at every flush), the latest state of each policy that changed: a
   * record per call would cost more than the screening. A crash loses at
   * most that much of it.
   */
  #policyStateChanged(layer: Token, index: number, state: GridValue) {
    this.#changedStates.set(`${layer} ${index}`, { layer, index, state });
    this.#stateTimer ??= this.#powers.setTimer(POLICY_STATE_MS, () => this.#writePolicyStates());
  }

  #writePolicyStates() {
    this.#stateTimer?.();
    this.#stateTimer = undefined;
    for (const { layer, index, state } of this.#changedStates.values()) {
      this.#powers.journal.append({ kind: 'policy-state', token: layer, index, state });
    }
    this.#changedStates.clear();
  }

  /** Fulfilled, broken and pending promises per issuer, from this node's promise graph. */
  reputation(): Reputation[] {
    return this.#reputation.rows();
  }

  /** The policies shipped with this node: name → module id. */
  get policies(): ReadonlyMap<string, ModuleId> {
    return this.#policyNames;
  }

  get principal(): Principal {
    return this.#powers.identity.principal;
  }

  get journal(): Journal {
    return this.#powers.journal;
  }

  /** Rebuild revocations, the pure-call cache and who was served what from the journal. */
  #replay(entries: readonly Entry[]) {
    const calls = new Map<number, Extract<Entry, { kind: 'call' }>>();
    /** The peer each forwarded call went to: its source for the token only if it answered cacheably (as live, in #forward). */
    const forwardedTo = new Map<number, Principal>();
    for (const entry of entries) {
      this.#reputation.add(entry);
      if (entry.kind === 'call') calls.set(entry.seq, entry);
      // Closures issued here answer delegated calls that name them by their sealed reference.
      else if (entry.kind === 'issue') this.#sealed.set(sealToken(entry.token), entry.token);
      else if (entry.kind === 'revoke' || entry.kind === 'revocation') {
        this.#revoked.set(entry.token, entry.reason);
        this.#forget(entry.token);
        if (entry.kind === 'revocation') this.#notices.set(entry.token, Object.freeze({ token: entry.token, reason: entry.reason, by: entry.by, signature: entry.signature }));
      } else if (entry.kind === 'fulfilled' && entry.pure) {
        const call = calls.get(entry.call);
        if (!call) continue;
        const upstream = forwardedTo.get(entry.call);
        if (upstream) this.#upstream.set(call.token, upstream);
        this.#served(call.token, call.caller);
        if (!this.#revoked.has(call.token)) this.#remember(call.token, bytesKey(encodedPayload(call)!), fulfilled(entry.value), entry.seq, encodedPayload(entry)!);
      } else if (entry.kind === 'hit') this.#served(entry.token, entry.caller);
      // The original closure's issuer answers calls through a delegation: it must hear of its revocation.
      else if (entry.kind === 'wrap') this.#served(entry.token, entry.issuer);
      else if (entry.kind === 'policy-state') this.#screens.restore(entry.token, entry.index, entry.state);
      else if (entry.kind === 'forwarded') forwardedTo.set(entry.call, entry.to);
    }
  }

  /** Note that `caller` got a cacheable answer for `token` (this node's own calls need no notice). */
  #served(token: Token, caller: Principal) {
    if (caller === this.#powers.identity.principal) return;
    let audience = this.#servedTo.get(token);
    if (!audience) this.#servedTo.set(token, (audience = new Set()));
    audience.add(caller);
  }

  #remember(token: Token, argsKey: string, outcome: Outcome, from: number, valueBytes: Uint8Array) {
    this.#cache.set(token, argsKey, { outcome, from, valueBytes });
  }

  #forget(token: Token) {
    this.#cache.forget(token);
  }

  /** Store a JS or WebAssembly module; returns its CID. Refuses forbidden imports. */
  async publish(payload: string | Uint8Array): Promise<ModuleId> {
    this.#assertOpen();
    const { bytes, text } = classifyModule(payload);
    // Check and compile before storing, so a module no vat would run is never written.
    await this.#prepareModule(asModuleId(blockCid(bytes, RAW_CODEC).toString()), bytes, text);
    const cid = await this.#powers.store.put(bytes, { codec: RAW_CODEC });
    return asModuleId(cid.toString());
  }

  #isLoaded(id: ModuleId): boolean {
    return this.#runner.get(id) !== undefined || this.#wasm.has(id);
  }

  async #loadModule(id: ModuleId): Promise<void> {
    if (this.#isLoaded(id)) return;
    const bytes = await this.#powers.store.get(CID.parse(id)).catch((error: Error & { code?: string }) => {
      throw new KernelError(error.code === 'ERR_NOT_FOUND' ? 'ERR_UNKNOWN_MODULE' : 'ERR_STORE', error.code === 'ERR_NOT_FOUND' ? `unknown module ${id}` : error.message);
    });
    await this.#prepareModule(id, bytes);
  }

  /** Analyze and compile a module the way vats will run it; throws what would stop it. */
  async #prepareModule(id: ModuleId, bytes: Uint8Array, text?: string): Promise<void> {
    if (moduleKindOf(bytes) === 'wasm') {
      const shape = shapeOf(bytes);
      assertGrantedImports(shape);
      const capped = capMemory(bytes, this.limits.wasmMaxPages);
      new WebAssembly.Module(capped as Uint8Array<ArrayBuffer>);
      this.#wasm.set(id, { bytes: capped, shape });
      return;
    }
    const analyzed = await analyzeModule(text ?? new TextDecoder().decode(bytes));
    for (const dep of analyzed.dependencies) await this.#loadModule(dep);
    this.#runner.compile(id, analyzed);
  }

  /** Keep a closure in memory, findable by its token and by its sealed reference. */
  #hold(closure: Closure) {
    this.#closures.set(closure.token, closure);
    this.#sealed.set(sealToken(closure.token), closure.token);
  }

  /** Make a closure over a published module; returns its token. */
  async issue(spec: IssueSpec): Promise<Token> {
    this.#assertOpen();
    const code = asModuleId(spec.code);
    return this.#issue(code, spec.export, spec.env ?? {}, { timeLimitMs: spec.timeLimitMs, replicable: spec.replicable === true });
  }

  /** `ctx.issue`: a closure may mint closures over its own module only. */
  issueFor(parent: Closure, spec: { export: string; env?: unknown }): Promise<Token> {
    if (parent.issuer !== this.#powers.identity.principal) {
      throw new KernelError('ERR_NOT_ISSUER', 'this node cannot sign for the closure\'s issuer');
    }
    return this.#issue(parent.code, spec?.export, spec?.env ?? {});
  }

  async #issue(code: ModuleId, exportName: string, env: unknown, options: { timeLimitMs?: number; replicable?: boolean } = {}): Promise<Token> {
    assertExportName(exportName);
    await this.#loadModule(code);
    const wasm = this.#wasm.get(code);
    const exports = wasm ? [...wasm.shape.functions.keys()] : this.#runner.get(code)!.exports;
    if (!exports.includes(exportName)) {
      throw new KernelError('ERR_NO_EXPORT', `module ${code} has no export ${quote(exportName)} (it exports: ${exports.join(', ') || 'nothing'})`);
    }
    if (wasm && !conventionOf(wasm.shape, exportName)) {
      throw new KernelError('ERR_NO_EXPORT', `export ${quote(exportName)} has a signature vats cannot call: use numbers, or (i32, i32) -> i64 with memory and alloc exported`);
    }
    const { bytes, closure } = makeClosure({ code, export: exportName, env, ...options }, this.#powers.identity, this.#powers.randomBytes(16));
    await this.#putToken(closure.token, bytes);
    this.#hold(closure);
    this.#powers.journal.append({ kind: 'issue', token: closure.token, code, export: exportName, issuer: closure.issuer });
    return closure.token;
  }

  /** Read a closure record (verifying its signature). */
  async closure(token: string): Promise<Closure> {
    const closure = await this.#closureHere(asToken(token));
    if (!closure) throw new KernelError('ERR_UNKNOWN_TOKEN', 'unknown token');
    return closure;
  }

  /**
   * The closure `token` names, if this node has it; undefined rather than
   * an error when not, because a forwarding node asks that of every call
   * it passes on, and an Error costs more under lockdown than the rest.
   */
  async #closureHere(token: Token): Promise<Closure | undefined> {
    const cached = this.#closures.get(token);
    if (cached) return cached;
    let bytes: Uint8Array | undefined;
    try {
      bytes = await this.#tokenBlock(token);
    } catch (error) {
      throw new KernelError('ERR_STORE', (error as Error).message);
    }
    if (!bytes) return undefined;
    const closure = readClosure(token, bytes);
    this.#hold(closure);
    return closure;
  }

  /**
   * A replicable closure's blocks, for `peer`, who holds its token. Refused
   * for a closure that is not replicable, not here, or revoked. The peer
   * hears of a later revocation as it would of cached answers.
   */
  async replica(token: string, peer: Principal): Promise<Replica> {
    const closure = await this.closure(token);
    if (!closure.replicable) throw new KernelError('ERR_NOT_REPLICABLE', 'this closure is not replicable: call it instead');
    const reason = this.#revoked.get(closure.token);
    if (reason !== undefined) throw new KernelError('ERR_REVOKED', reason);
    const modules = await this.#moduleBlocks([closure.code]);
    this.#served(closure.token, peer);
    return { closure: await this.#powers.store.get(CID.parse(closure.token)), modules };
  }

  /** The blocks of modules `ids` and everything they import, dependencies first. */
  async #moduleBlocks(ids: readonly ModuleId[]): Promise<Uint8Array[]> {
    const modules = new Map<ModuleId, Uint8Array>();
    const collect = async (id: ModuleId) => {
      if (modules.has(id)) return;
      await this.#loadModule(id);
      for (const dependency of this.#wasm.has(id) ? [] : this.#runner.get(id)!.record.dependencies) await collect(dependency);
      modules.set(id, await this.#powers.store.get(CID.parse(id)));
    };
    for (const id of ids) await collect(id);
    return [...modules.values()];
  }

  /**
   * Delegate a token this node issued, or one delegated to it: a screener
   * around it for `to`, applying `policies` in order. Returns the new token.
   */
  async delegate(spec: DelegateSpec): Promise<Token> {
    this.#assertOpen();
    const inner = asToken(spec.token);
    const self = this.#powers.identity.principal;
    const below = await this.#delegationOf(inner);
    let issuer: Principal;
    if (below) {
      if (!below.audience.includes(self)) {
        throw new KernelError('ERR_NOT_AUDIENCE', `${inner} is delegated to ${below.audience.join(', ')}, not to ${self}`);
      }
      issuer = (await this.#chainOf(below)).at(-1)!.delegator;
    } else {
      const closure = await this.closure(inner);
      if (closure.issuer !== self) {
        throw new KernelError('ERR_NOT_ISSUER', `you can delegate only tokens you issued or that were delegated to you (${inner} was issued by ${closure.issuer})`);
      }
      issuer = self;
    }
    const revokedReason = this.#revoked.get(inner);
    if (revokedReason !== undefined) throw new KernelError('ERR_REVOKED', `${inner} is revoked: ${revokedReason}`);
    const policies: PolicyRef[] = [];
    for (const { module, settings } of spec.policies ?? []) {
      const id = this.#policyNames.get(module) ?? asModuleId(module);
      await this.#loadPolicy(id);
      if (!(this.#runner.get(id)?.exports ?? []).includes('screen')) throw new KernelError('ERR_NOT_A_POLICY', `module ${id} exports no screen function`);
      policies.push({ module: id, settings: (settings ?? null) as GridValue });
    }
    // A closure is named by its sealed reference: the chain must not hand its holders the original token.
    const wrapped = below ? inner : sealToken(inner);
    const { bytes, delegation } = makeDelegation({ inner: wrapped, audience: spec.to, policies }, this.#powers.identity, this.#powers.randomBytes(16));
    await this.#putToken(delegation.token, bytes);
    this.#learnDelegation(delegation);
    this.#recordWrap(delegation, issuer);
    return delegation.token;
  }

  /**
   * What a call through delegated `token` must carry for a node that has
   * never seen its chain: the records, and the policy modules not shipped
   * with every node. Undefined for a token that is not a delegation.
   */
  async chainBlocks(token: string): Promise<ChainBlocks | undefined> {
    const outer = await this.#delegationOf(asToken(token));
    if (!outer) return undefined;
    const chain = await this.#chainOf(outer);
    const links = await Promise.all(chain.map((link) => this.#powers.store.get(CID.parse(link.token))));
    const policyModules = chain.flatMap((link) => link.policies.map((p) => p.module)).filter((id) => !this.#shippedPolicies.has(id));
    return { links, modules: await this.#moduleBlocks([...new Set(policyModules)]) };
  }

  /**
   * Take in the chain of delegated `token` (from a grid URL, or sent with a
   * call): links outermost first, each wrapping the next, every signature
   * checked. Throws what is wrong, naming the link. A chain that ends at a
   * closure held here must hold up (each link made by one its inner link
   * names; revocations are checked at each call) before anything of it is
   * stored; one that ends elsewhere is stored only for this node's own
   * principal — for anyone else it is passed on with the call (false).
   * Either way what is stored counts against `importer`'s storage quota.
   */
  async importChain(token: string, blocks: ChainBlocks, importer: Principal = this.#powers.identity.principal): Promise<boolean> {
    if (blocks.links.length === 0 || blocks.links.length > MAX_CHAIN) throw new KernelError('ERR_BAD_CHAIN', `a delegation chain has 1 to ${MAX_CHAIN} links`);
    if (blocks.modules.length > MAX_REPLICA_MODULES) throw new KernelError('ERR_BAD_CHAIN', `a chain brings at most ${MAX_REPLICA_MODULES} modules`);
    // Links this home has (in memory or stored) are not checked again; the others are read from the bytes sent.
    const links: Delegation[] = [];
    const fresh = new Set<Delegation>();
    for (const bytes of blocks.links) {
      const linkToken = blockCid(bytes, DAG_CBOR_CODEC).toString() as Token;
      const known = await this.#delegationOf(linkToken);
      const link = known ?? readDelegation(linkToken, bytes);
      if (!known) fresh.add(link);
      links.push(link);
    }
    if (links[0]!.token !== asToken(token)) throw new KernelError('ERR_BAD_CHAIN', `the chain sent starts with ${links[0]!.token}, not with the token called`);
    links.forEach((link, index) => {
      const next = links[index + 1];
      if (next && link.inner !== next.token) {
        throw new KernelError('ERR_BAD_CHAIN', `delegation link ${index + 1} of ${links.length} (${link.token}) wraps ${link.inner}, not the next link ${next.token}`);
      }
    });
    const rootToken = this.#sealed.get(links.at(-1)!.inner);
    const root = rootToken && (this.#closures.get(rootToken) ?? (await this.#closureHere(rootToken).catch(() => undefined)));
    if (root) verifyChain(links, root, () => undefined);
    else if (importer !== this.#powers.identity.principal) return false;
    const bytes = [...blocks.links.filter((_, index) => fresh.has(links[index]!)), ...blocks.modules].reduce((sum, block) => sum + block.length, 0);
    const refusal = this.#quota.take(importer, bytes);
    if (refusal) throw new KernelError('ERR_QUOTA', refusal);
    await this.#takeModules(blocks.modules);
    for (const [index, link] of links.entries()) {
      if (!fresh.has(link)) continue;
      await this.#putToken(link.token, blocks.links[index]!);
      this.#learnDelegation(link);
      this.#recordWrap(link, links.at(-1)!.delegator);
    }
    return true;
  }

  /** Modules that came from a peer (a replica, a chain): checked and compiled as if published here, then stored. */
  async #takeModules(modules: readonly Uint8Array[]) {
    for (const bytes of modules) {
      const id = asModuleId(blockCid(bytes, RAW_CODEC).toString());
      if (this.#isLoaded(id)) continue;
      await this.#prepareModule(id, bytes);
      await this.#powers.store.put(bytes, { codec: RAW_CODEC });
    }
  }

  /**
   * The promise graph keeps every delegation made or seen here; the original
   * closure's issuer, who answers calls through it, is to hear of its
   * revocation (as #replay derives from the same record after a restart).
   */
  #recordWrap(link: Delegation, issuer: Principal) {
    this.#served(link.token, issuer);
    this.#powers.journal.append({
      kind: 'wrap',
      token: link.token,
      // This node's own graph names the closure when it holds it; the record itself never does.
      inner: this.#sealed.get(link.inner) ?? link.inner,
      delegator: link.delegator,
      audience: link.audience,
      policies: link.policies.map((p) => p.module),
      issuer,
    });
  }

  /**
   * The block a token names, or undefined if the store has none. A node
   * that forwards calls is asked again and again for tokens it does not
   * hold, and a store miss is a file system round trip: misses are
   * remembered until this kernel next stores a token's block (no one else
   * writes its store). `#stores` tells a miss from one that raced a store.
   */
  async #tokenBlock(token: Token): Promise<Uint8Array | undefined> {
    if (this.#absent.has(token)) return undefined;
    const stores = this.#stores;
    try {
      return await this.#powers.store.get(CID.parse(token));
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_NOT_FOUND') throw error;
      if (stores === this.#stores) {
        if (this.#absent.size >= MAX_ABSENT) this.#absent.clear();
        this.#absent.add(token);
      }
      return undefined;
    }
  }

  async #putToken(token: string, bytes: Uint8Array): Promise<void> {
    this.#stores += 1;
    try {
      await this.#powers.store.putVerified(CID.parse(token), bytes);
    } finally {
      this.#stores += 1;
      this.#absent.delete(token as Token);
    }
  }

  /** A delegation record, from memory or the store; undefined if `token` names anything else. */
  async #delegationOf(token: Token): Promise<Delegation | undefined> {
    const known = this.#delegations.get(token);
    if (known || this.#closures.has(token)) return known;
    let bytes: Uint8Array | undefined;
    let record: unknown;
    try {
      bytes = await this.#tokenBlock(token);
      if (!bytes) return undefined;
      record = decode(bytes);
    } catch {
      return undefined;
    }
    if (!isDelegationRecord(record)) {
      // A closure record, read anyway: keep it, so that loading it next does not read it again.
      try {
        this.#hold(readClosure(token, bytes));
      } catch {
        // Not a valid closure either: whoever loads it as one gets the reason.
      }
      return undefined;
    }
    const delegation = readDelegation(token, bytes);
    this.#learnDelegation(delegation);
    return delegation;
  }

  #learnDelegation(delegation: Delegation) {
    this.#delegations.set(delegation.token, delegation);
    // Only the delegator's own notice counts: one by anyone else cannot stand in for it or push it out.
    const unseen = this.#unseenRevocations.get(delegation.token)?.get(delegation.delegator);
    this.#unseenRevocations.delete(delegation.token);
    if (unseen) this.#believe(unseen.notice, unseen.from);
  }

  /** The chain from `outer` down to the link that wraps the original closure, outermost first. */
  async #chainOf(outer: Delegation): Promise<Delegation[]> {
    const chain = [outer];
    const below = async (link: Delegation) => (this.#sealed.has(link.inner) ? undefined : this.#delegationOf(link.inner as Token));
    for (let next = await below(outer); next; next = await below(next)) {
      if (chain.length >= MAX_CHAIN) throw new KernelError('ERR_BAD_CHAIN', `a delegation chain has at most ${MAX_CHAIN} links`);
      chain.push(next);
    }
    return chain;
  }

  /** Compile a policy module: a shipped one from the node's own copy, any other from the store. */
  async #loadPolicy(id: ModuleId) {
    if (this.#isLoaded(id)) return;
    const shipped = this.#shippedPolicies.get(id);
    if (shipped) await this.#prepareModule(id, shipped);
    else await this.#loadModule(id);
  }

  /**
   * One policy's verdict. Shipped policies are the node's own code and run
   * in its thread (no vat hop: a layer costs microseconds); any other policy
   * is untrusted and runs in a vat, within the node's time limit.
   */
  async #runPolicy(policy: PolicyRef, caller: Principal, request: PolicyRequest): Promise<unknown> {
    await this.#loadPolicy(policy.module);
    if (this.#shippedPolicies.has(policy.module)) {
      const screen = this.#runner.instantiate(policy.module).screen as (ctx: object, request: PolicyRequest) => unknown;
      return screen(Object.freeze({ caller, env: policy.settings }), request);
    }
    const record = encode({ policy: CID.parse(policy.module), settings: decode(encodeValue(policy.settings)) });
    const closure: Closure = harden({
      token: blockCid(record, DAG_CBOR_CODEC).toString() as Token,
      code: policy.module,
      export: 'screen',
      env: policy.settings,
      issuer: caller,
    });
    const refuse = async (): Promise<VatAnswer> => ({ status: 'revoked', reason: 'a policy cannot call or issue' });
    const { answer } = await this.#vats.run({ closure, args: encodeValue([request]), caller, timeLimitMs: this.limits.callTimeoutMs, call: refuse, issue: refuse, log: () => {} });
    if (answer.status !== 'fulfilled') throw new Error(answer.status === 'revoked' ? answer.reason : 'it answered with a further promise');
    return decodeValue(answer.value);
  }

  /** A call on delegation `outer`: screened here if this node holds the original closure, else forwarded with its chain. */
  async #screened(outer: Delegation, argsBytes: Uint8Array, frame: CallFrame, seq: number): Promise<{ outcome: Outcome; pure: boolean }> {
    const impure = (outcome: Outcome) => ({ outcome, pure: false });
    let chain: Delegation[];
    try {
      chain = this.#chains.get(outer.token) ?? (await this.#chainOf(outer));
    } catch (error) {
      return impure(revoked(describeThrown(error)));
    }
    const rootToken = this.#sealed.get(chain.at(-1)!.inner);
    const root = rootToken && (this.#closures.get(rootToken) ?? (await this.#closureHere(rootToken).catch(() => undefined)));
    if (!root) {
      if (!this.#powers.forward) return impure(revoked('unknown token'));
      // Screening is the business of the node that holds the closure, not of whoever passes the call on.
      return impure((await this.#forwardCall(outer.token, argsBytes, frame, seq, await this.chainBlocks(outer.token))).outcome);
    }
    try {
      verifyChain(chain, root, (token) => this.#revoked.get(token));
    } catch (error) {
      return impure(revoked(describeThrown(error)));
    }
    this.#chains.set(outer.token, chain);
    const args = decodeValue(argsBytes) as GridValue[];
    const screening = await this.#screens.screen(chain, frame.caller, args);
    return impure(await this.#afterScreening(screening, { chain, root, caller: frame.caller, args, call: seq }, frame));
  }

  /** Act on a screening: refuse, answer, wait for approvals, or call the original closure. */
  async #afterScreening(
    screening: Screening,
    call: { chain: readonly Delegation[]; root: Closure; caller: Principal; args: readonly GridValue[]; call: number },
    frame: CallFrame,
  ): Promise<Outcome> {
    switch (screening.kind) {
      case 'refuse':
        return revokedBecause(screening.reason, 'screened');
      case 'answer':
        try {
          return fulfilled(decodeValue(encodeValue(screening.value)));
        } catch (error) {
          return revoked(`a policy answered with something that is not grid data: ${describeThrown(error)}`);
        }
      case 'wait':
        return this.#wait(call, screening);
      case 'pass': {
        for (const layer of screening.audited) this.#powers.journal.append({ kind: 'screened', call: call.call, token: layer.token, caller: layer.caller });
        const inner: CallFrame = { caller: call.caller, path: frame.path, depth: frame.depth + 1, parent: call.call, deadline: frame.deadline, signal: frame.signal };
        return (await this.#invoke(call.root.token, call.args, inner)).outcome;
      }
    }
  }

  /** Park a call that waits for approvals; its further promise is a fresh token. */
  #wait(call: Omit<PendingCall, 'token' | 'at' | 'approvals' | 'approvers' | 'reason' | 'since' | 'turn' | 'settle' | 'done' | 'cancelExpiry'>, screening: Extract<Screening, { kind: 'wait' }>): Outcome {
    if (this.#waitingCalls >= MAX_PENDING_CALLS) return revoked(`too many calls wait for approval here (limit ${MAX_PENDING_CALLS})`);
    const mine = this.#waitingBy.get(call.caller) ?? 0;
    if (mine >= this.limits.maxWaitingPerCaller) return revoked(`${call.caller} has ${mine} calls waiting for approval here (limit ${this.limits.maxWaitingPerCaller} per caller)`);
    const token = blockCid(encode({ pending: CID.parse(call.chain[0]!.token), nonce: this.#powers.randomBytes(16) }), DAG_CBOR_CODEC).toString() as Token;
    let resolve!: (outcome: Outcome) => void;
    const done = new Promise<Outcome>((r) => (resolve = r));
    const pending: PendingCall = {
      ...call,
      token,
      at: screening.at,
      approvals: new Set(),
      approvers: screening.approvers && new Set(screening.approvers),
      reason: screening.reason,
      since: this.#powers.clock(),
      turn: Promise.resolve(),
      done,
      settle: (outcome) => {
        if (pending.settled) return;
        pending.settled = outcome;
        this.#waitingCalls -= 1;
        const left = (this.#waitingBy.get(pending.caller) ?? 1) - 1;
        if (left > 0) this.#waitingBy.set(pending.caller, left);
        else this.#waitingBy.delete(pending.caller);
        resolve(outcome);
      },
      cancelExpiry: this.#powers.setTimer(PENDING_TTL_MS, () => {
        pending.settle(revoked(`no approval within ${PENDING_TTL_MS / 60_000} minutes`));
        this.#pending.delete(token);
      }),
    };
    this.#pending.set(token, pending);
    this.#waitingCalls += 1;
    this.#waitingBy.set(call.caller, mine + 1);
    return promised(token);
  }

  /**
   * A call on a waiting call's token: `"approve"` from one of the approvers
   * the waiting policy names counts them as approving (from anyone else it
   * is refused, and never listed); from the caller who made the call,
   * anything else waits for its answer until the deadline (a forwarded
   * call, until a little before it, so that the answer reaches the node that
   * forwarded it in time), then is the same further promise again.
   */
  async #onPending(pending: PendingCall, argsBytes: Uint8Array, frame: CallFrame): Promise<Outcome> {
    const args = decodeValue(argsBytes) as GridValue[];
    // A layer revoked while the call waited ends it, whoever asks.
    this.#endIfRevoked(pending);
    if (args.length === 1 && args[0] === 'approve') {
      if (pending.settled === undefined) {
        if (pending.approvers && !pending.approvers.has(frame.caller)) return revoked(`${frame.caller} is not one of the approvers this call waits for`);
        pending.approvals.add(frame.caller);
        pending.turn = pending.turn.then(() => this.#resume(pending));
        await pending.turn;
      }
      // `status`: still `waiting`, or how the call ended once it could go ahead (or was refused).
      return fulfilled(harden({ approvedBy: [...pending.approvals], status: pending.settled?.status ?? 'waiting' }));
    }
    if (frame.caller !== pending.caller) return revoked(`only ${pending.caller}, who made the call, can collect its answer`);
    if (pending.settled) return pending.settled;
    const outcome = await new Promise<Outcome | undefined>((resolve) => {
      const margin = frame.path.length > 0 ? Math.min(REMOTE_GRACE_MS, this.limits.callTimeoutMs / 2) : 0;
      const cancel = this.#powers.setTimer(Math.max(0, frame.deadline - margin - this.#powers.clock()), () => resolve(undefined));
      // The caller stops waiting for the answer; the call itself still waits for its approvals.
      const stop = () => {
        cancel();
        resolve(revoked(abortReason(frame.signal)));
      };
      const stopListening = frame.signal ? onAbort(frame.signal, stop) : () => {};
      void pending.done.then((settled) => {
        cancel();
        stopListening();
        resolve(settled);
      });
    });
    return outcome ?? promised(pending.token);
  }

  /** End a waiting call whose chain no longer holds; true if it has ended (now or before). */
  #endIfRevoked(pending: PendingCall): boolean {
    if (pending.settled) return true;
    try {
      verifyChain(pending.chain, pending.root, (token) => this.#revoked.get(token));
      return false;
    } catch (error) {
      pending.settle(revoked(describeThrown(error)));
      return true;
    }
  }

  /**
   * The calls waiting here for approvals that concern `principal`: those it
   * may approve (the waiting policy names it and it has not approved yet)
   * and those it made (to collect). A policy that names no approvers shows
   * its calls to their callers only.
   */
  pendingFor(principal: Principal): PendingView[] {
    const views: PendingView[] = [];
    for (const pending of this.#pending.values()) {
      if (pending.settled || this.#endIfRevoked(pending)) continue;
      const approver = pending.approvers?.has(principal) === true && !pending.approvals.has(principal);
      if (!approver && pending.caller !== principal) continue;
      views.push(
        harden({
          token: pending.token,
          delegation: pending.chain[0]!.token,
          caller: pending.caller,
          args: pending.args,
          reason: pending.reason,
          approvers: [...(pending.approvers ?? [])],
          approvedBy: [...pending.approvals],
          since: pending.since,
          yours: approver ? 'approve' : 'collect',
        }),
      );
    }
    return views;
  }

  /** Screen a waiting call again with the approvals it has; proceed if every policy now lets it. */
  async #resume(pending: PendingCall) {
    if (this.#endIfRevoked(pending)) return;
    const screening = await this.#screens.screen(pending.chain, pending.caller, pending.args, pending.at, [...pending.approvals]);
    if (screening.kind === 'wait') {
      pending.at = screening.at;
      pending.approvers = screening.approvers && new Set(screening.approvers);
      pending.reason = screening.reason;
      return;
    }
    const frame: CallFrame = { caller: pending.caller, path: [], depth: 0, parent: pending.call, deadline: this.#powers.clock() + this.limits.callTimeoutMs };
    pending.settle(await this.#afterScreening(screening, pending, frame));
  }

  /**
   * Take in a replica fetched from a peer: every block is checked as if it
   * were published here (hash, analysis, compilation), the record's
   * signature is verified, and it must say the issuer allowed replication.
   */
  async adopt(token: Token, replica: Replica): Promise<Closure> {
    if (replica.modules.length > MAX_REPLICA_MODULES) throw new KernelError('ERR_BAD_REPLICA', `a replica brings at most ${MAX_REPLICA_MODULES} modules`);
    await this.#takeModules(replica.modules);
    const closure = readClosure(token, replica.closure);
    if (!closure.replicable) throw new KernelError('ERR_BAD_REPLICA', 'the closure does not allow replication');
    if (!this.#isLoaded(closure.code)) throw new KernelError('ERR_BAD_REPLICA', `the replica lacks module ${closure.code}`);
    // Its CID is checked here: a record that does not hash to the token is refused.
    await this.#putToken(token, replica.closure);
    this.#hold(closure);
    return closure;
  }

  /** Break the promise: every later call through `token` is revoked. */
  async revoke(token: string, reason?: string): Promise<void> {
    this.#assertOpen();
    const checked = asToken(token);
    // A delegation is revoked by its delegator: that breaks it and what was delegated through it, nothing else.
    const delegation = await this.#delegationOf(checked);
    const authority = delegation ? delegation.delegator : (await this.closure(checked)).issuer;
    if (authority !== this.#powers.identity.principal) {
      throw new KernelError('ERR_NOT_ISSUER', delegation ? `only the delegator (${authority}) can revoke this delegation` : `only the issuer (${authority}) can revoke this token`);
    }
    if (this.#revoked.has(checked)) return;
    const text = String(reason ?? (delegation ? 'revoked by delegator' : 'revoked by issuer')).slice(0, MAX_REASON);
    this.#revoked.set(checked, text);
    this.#forget(checked);
    this.#powers.journal.append({ kind: 'revoke', token: checked, reason: text, by: this.#powers.identity.principal });
    // Revocation is final: on disk before anyone is told, so that no crash undoes it.
    await this.#powers.journal.flush();
    await this.#announce(this.#noticeOf(checked)!);
  }

  isRevoked(token: Token): boolean {
    return this.#revoked.has(token);
  }

  /**
   * A revocation from peer `from`. Believed if its issuer's signature checks
   * out and the issuer is the one this node knows for the token: from the
   * closure record if it holds it, else from the peer whose answers it cached
   * (that peer was this node's only source for the token in the first place).
   * Returns whether it was news; throws what makes it unbelievable.
   */
  async hearRevocation(notice: RevocationNotice, from: Principal): Promise<boolean> {
    if (this.#revoked.has(notice.token)) return false;
    if (!isSignedRevocation(notice)) throw new KernelError('ERR_BAD_REVOCATION', `revocation of ${notice.token}: the signature does not prove ${notice.by}`);
    const delegation = await this.#delegationOf(notice.token).catch(() => undefined);
    const closure = delegation ? undefined : await this.#closureHere(notice.token).catch(() => undefined);
    if (!delegation && !closure && !this.#upstream.has(notice.token)) {
      // Most likely a delegation whose calls have not reached this node yet: kept until one does,
      // and believed then if its delegator signed it.
      let bySigner = this.#unseenRevocations.get(notice.token);
      if (!bySigner) {
        if (this.#unseenRevocations.size >= MAX_UNSEEN_REVOCATIONS) this.#unseenRevocations.delete(this.#unseenRevocations.keys().next().value!);
        this.#unseenRevocations.set(notice.token, (bySigner = new Map()));
      }
      if (bySigner.size < MAX_SIGNERS_PER_UNSEEN && !bySigner.has(notice.by)) bySigner.set(notice.by, { notice, from });
      return false;
    }
    const vouched = delegation ? delegation.delegator === notice.by : closure ? closure.issuer === notice.by : this.#upstream.get(notice.token) === from;
    if (!vouched) {
      const why = delegation ? `${notice.by} is not its delegator` : closure ? `${notice.by} is not its issuer` : `this node did not get it from ${from}`;
      throw new KernelError('ERR_BAD_REVOCATION', `revocation of ${notice.token}: ${why}`);
    }
    if (!this.#believe(notice, from)) return false;
    // On disk before the sender hears it was taken, and before anyone else hears it.
    await this.#powers.journal.flush();
    await this.#announce(notice);
    return true;
  }

  /** Apply a revocation already proven; false if it was no news. */
  #believe(notice: RevocationNotice, from: Principal): boolean {
    if (this.#revoked.has(notice.token)) return false;
    this.#revoked.set(notice.token, notice.reason);
    this.#forget(notice.token);
    this.#notices.set(notice.token, notice);
    this.#powers.journal.append({ kind: 'revocation', ...notice, from });
    return true;
  }

  /** This journal's records about `token` that `requester` may see, signed by this node (journal/disclosure.ts). */
  disclose(token: string, requester: Principal): Promise<Disclosure> {
    this.#assertOpen();
    return disclose(this.#powers.journal, this.#powers.identity, asToken(token), requester, this.#powers.clock());
  }

  /** Revocations that `peer` was given cacheable answers for: what it must hear on connecting. */
  revocationsFor(peer: Principal): RevocationNotice[] {
    const notices: RevocationNotice[] = [];
    for (const [token, audience] of this.#servedTo) {
      if (audience.has(peer) && this.#revoked.has(token)) notices.push(this.#noticeOf(token)!);
    }
    return notices;
  }

  /** Listen for revocations made or heard here; returns a function that stops listening. */
  onRevocation(listener: RevocationListener): () => void {
    this.#revocationListeners.add(listener);
    return () => this.#revocationListeners.delete(listener);
  }

  /** The signed notice of a revocation made or heard here, to hand to a node that must hear it. */
  revocationNotice(token: string): RevocationNotice | undefined {
    return this.#noticeOf(asToken(token));
  }

  #noticeOf(token: Token): RevocationNotice | undefined {
    let notice = this.#notices.get(token);
    const reason = this.#revoked.get(token);
    if (!notice && reason !== undefined) this.#notices.set(token, (notice = signRevocation(token, reason, this.#powers.identity)));
    return notice;
  }

  async #announce(notice: RevocationNotice) {
    const audience = this.#servedTo.get(notice.token) ?? new Set<Principal>();
    // A listener's failure (a peer gone) must not undo the revocation here.
    await Promise.all([...this.#revocationListeners].map(async (listener) => listener(notice, audience)).map((p) => p.catch(() => {})));
  }

  /**
   * Call a token, as this node or as `options.caller` (an authenticated
   * peer, with `options.path` the nodes a forwarded call passed). Never
   * throws: every failure is a revoked outcome.
   */
  async call(token: string, args: readonly unknown[] = [], options: CallOptions = {}): Promise<Outcome> {
    if (options.follow && options.waitMs !== undefined) {
      const { waitMs, ...once } = options;
      return untilSettled(await this.call(token, args, once), (further) => this.call(further, [], { ...once, chain: undefined }), waitMs, this.#powers.setTimer, this.#powers.clock);
    }
    if (options.via !== undefined) {
      if (this.#closed) return revoked('kernel is closed');
      if (!this.#powers.network) return revoked('this kernel has no network');
      // The other node's own limit decides; this one only stops waiting on a node that does not answer at all.
      return this.#powers.network.call(options.via, token, args, { follow: options.follow, timeoutMs: this.limits.callTimeoutMs + REMOTE_GRACE_MS, ...(options.signal ? { signal: options.signal } : {}) });
    }
    return (await this.answer(token, args, options)).outcome;
  }

  /** Serve this kernel on a WebSocket; resolves with its URL (`ws://host:port`). Stops when the kernel closes. */
  async listen(options: { host?: string; port?: number } = {}): Promise<string> {
    this.#assertOpen();
    if (!this.#powers.network) throw new KernelError('ERR_NO_NETWORK', 'this kernel has no network');
    const server = await this.#powers.network.listen(this, options);
    this.#servers.push(server);
    return server.url;
  }

  /** `call`, and whether whoever receives the outcome may cache it (the answer a node gives a peer). */
  async answer(token: string, args: readonly unknown[] = [], options: AnswerOptions = {}): Promise<Answer> {
    if (this.#closed) return { outcome: revoked('kernel is closed'), cacheable: false };
    const frame = (): CallFrame => ({
      caller: options.caller ?? this.#powers.identity.principal,
      path: options.path ?? [],
      depth: 0,
      parent: undefined,
      deadline: this.#powers.clock() + this.limits.callTimeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    // Cancelled before it started: no call was made, so none is journaled.
    if (options.signal?.aborted) return { outcome: revoked(CANCELLED), cacheable: false };
    try {
      // A chain whose closure is held elsewhere is passed on with the call, not stored here.
      let passOnChain: ChainBlocks | undefined;
      if (options.chain) {
        try {
          if (!(await this.importChain(token, options.chain, options.caller))) passOnChain = options.chain;
        } catch (error) {
          return { outcome: revoked(describeThrown(error)), cacheable: false };
        }
      }
      const first = await this.#invoke(token, args, frame(), options.argsBytes, passOnChain);
      let outcome = first.outcome;
      // A call on a waiting call's own token that answers with that token again has waited already: it is the answer for now.
      for (let hops = 0; options.follow && outcome.status === 'promised' && outcome.token !== token; hops += 1) {
        if (options.signal?.aborted) return { outcome: revoked(CANCELLED), cacheable: false };
        if (hops >= this.limits.maxFollow) return { outcome: revoked(`further promises nested deeper than ${this.limits.maxFollow}`), cacheable: false };
        const next = (await this.#invoke(outcome.token, [], frame())).outcome;
        // The same promise again: it is still waiting (for approvals), and it is the answer for now.
        if (next.status === 'promised' && next.token === outcome.token) break;
        outcome = next;
      }
      const replicable = outcome.status === 'fulfilled' && this.#closures.get(token as Token)?.replicable === true;
      const own = outcome === first.outcome;
      return { outcome, cacheable: own && first.pure, ...(replicable ? { replicable } : {}), ...(own && first.valueBytes ? { valueBytes: first.valueBytes } : {}) };
    } catch (error) {
      // Only the kernel's own failures land here (e.g. closed mid-call);
      // closures' failures are outcomes already.
      return { outcome: revoked(`kernel: ${describeThrown(error)}`), cacheable: false };
    }
  }

  /** `ctx.call`: nested calls follow further promises within the same deadline. */
  async invokeNested(token: unknown, args: readonly unknown[], frame: CallFrame): Promise<Outcome> {
    if (frame.depth > this.limits.maxCallDepth) return revoked(`call depth limit (${this.limits.maxCallDepth})`);
    let { outcome } = await this.#invoke(token, args, frame);
    for (let hops = 0; outcome.status === 'promised' && hops < this.limits.maxFollow; hops += 1) {
      ({ outcome } = await this.#invoke(outcome.token, [], frame));
    }
    return outcome;
  }

  /** One call, without following further promises; `pure` if its answer may be cached (its value's bytes come with it). */
  async #invoke(tokenText: unknown, args: readonly unknown[], frame: CallFrame, encodedArgs?: Uint8Array, chain?: ChainBlocks): Promise<Invoked> {
    let token: Token;
    if (typeof tokenText === 'string' && this.#closures.has(tokenText as Token)) {
      token = tokenText as Token; // already checked when its closure was loaded
    } else {
      try {
        token = asToken(tokenText);
      } catch (error) {
        return { outcome: revoked((error as Error).message), pure: false };
      }
    }
    let argsBytes: Uint8Array;
    try {
      if (!Array.isArray(args)) throw new TypeError('arguments must be an array');
      argsBytes = encodedArgs && encodedArgs.length <= MAX_VALUE_BYTES ? encodedArgs : encodeValue(args);
    } catch (error) {
      return { outcome: revoked(`bad arguments: ${(error as Error).message}`), pure: false };
    }
    const journal = this.#powers.journal;
    const argsKey = bytesKey(argsBytes);
    const hit = this.#cache.get(token, argsKey);
    if (hit) {
      const refusal = this.#quota.take(frame.caller, RECORD_BYTES);
      if (refusal) return { outcome: revoked(refusal), pure: false };
      // The arguments are those of the call that `from` answered: same bytes, same key.
      journal.append({ kind: 'hit', token, caller: frame.caller, from: hit.from, parent: frame.parent });
      this.#served(token, frame.caller);
      return { outcome: hit.outcome, pure: true, valueBytes: hit.valueBytes };
    }
    // Nothing is journaled before it is known to concern this node: a
    // stranger's calls on made-up tokens leave no record to fill its disk.
    const here = chain === undefined && (await this.#concernsHere(token));
    if (!here && !this.#powers.forward) return { outcome: revoked('unknown token'), pure: false };
    const refusal = this.#quota.take(frame.caller, RECORD_BYTES + argsBytes.length);
    if (refusal) return { outcome: revoked(refusal), pure: false };
    if (!here) {
      const forwarded = await this.#forward(token, argsBytes, frame, chain);
      // No peer answered: the call concerned no node this one knows.
      if (!forwarded.peer) return forwarded;
      const call = journal.append({ kind: 'call', token, caller: frame.caller, args: argsBytes, parent: frame.parent });
      journal.append({ kind: 'forwarded', call: call.seq, to: forwarded.peer });
      return this.#settle(call.seq, token, argsKey, frame.caller, forwarded);
    }
    const call = journal.append({ kind: 'call', token, caller: frame.caller, args: argsBytes, parent: frame.parent });
    return this.#settle(call.seq, token, argsKey, frame.caller, await this.#run(token, argsBytes, frame, call.seq));
  }

  /** Whether `token` names something this node holds or knows of: a closure, a delegation, a revocation, a call waiting for approvals. */
  async #concernsHere(token: Token): Promise<boolean> {
    if (this.#closures.has(token) || this.#delegations.has(token) || this.#revoked.has(token) || this.#pending.has(token)) return true;
    try {
      return (await this.#tokenBlock(token)) !== undefined;
    } catch {
      return true; // the store's trouble, which #run reports
    }
  }

  /** Journal how call `seq` ended, and keep a pure answer in the cache. */
  #settle(seq: number, token: Token, argsKey: string, caller: Principal, { outcome, pure, valueBytes }: Invoked): Invoked {
    const journal = this.#powers.journal;
    if (outcome.status === 'fulfilled') {
      const value = valueBytes ?? encodeValue(outcome.value);
      this.#quota.charge(caller, RECORD_BYTES + value.length);
      const entry = journal.append({ kind: 'fulfilled', call: seq, value, pure });
      // A revocation may have landed while the call ran: then the answer is no longer one to keep.
      if (pure && !this.#revoked.has(token)) {
        this.#remember(token, argsKey, outcome, entry.seq, value);
        this.#served(token, caller);
        return { outcome, pure: true, valueBytes: value };
      }
    } else if (outcome.status === 'revoked') {
      journal.append({ kind: 'revoked', call: seq, reason: outcome.reason, cause: causes.get(outcome) ?? 'node' });
    } else {
      journal.append({ kind: 'promised', call: seq, token: outcome.token });
    }
    return { outcome, pure: false };
  }

  /**
   * No closure here: ask the peers, unless the call has been around already.
   * A cacheable answer is cached here like one computed here; the peer that
   * gave it is remembered as the token's upstream, whose revocation notices
   * this node then believes (see hearRevocation).
   */
  async #forward(token: Token, argsBytes: Uint8Array, frame: CallFrame, chain?: ChainBlocks): Promise<Invoked & { peer?: Principal }> {
    const impure = (outcome: Outcome, peer?: Principal) => ({ outcome, pure: false, ...(peer ? { peer } : {}) });
    const self = this.#powers.identity.principal;
    if (frame.path.includes(self)) return impure(revoked('forwarding loop'));
    if (frame.path.length >= this.limits.maxHops) return impure(revoked(`hop limit (${this.limits.maxHops})`));
    const forwarded = await this.#powers.forward!({
      token,
      args: decodeValue(argsBytes) as GridValue[],
      path: [...frame.path, self],
      deadline: frame.deadline,
      ...(chain ? { chain } : {}),
      ...(frame.signal ? { signal: frame.signal } : {}),
    });
    if (!forwarded) return impure(revoked('unknown token'));
    const { answer, peer, replica } = forwarded;
    if (replica && peer) {
      // From now on this node answers the token itself; the peer is where its revocation will come from.
      await this.adopt(token, replica).then(
        () => this.#upstream.set(token, peer),
        (error: unknown) => this.#powers.log?.(token, `replica from ${peer} refused: ${describeThrown(error)}`),
      );
    }
    // Answers through a delegation are screened each time: never cached on the way.
    // The node that ran the call journals why it was revoked; here it is another node's answer.
    if (answer.outcome.status === 'revoked') return impure(revokedBecause(answer.outcome.reason, 'remote'), peer);
    if (answer.outcome.status !== 'fulfilled' || chain) return impure(answer.outcome, peer);
    let valueBytes: Uint8Array;
    try {
      // A peer's answer is input like any other: it must be grid data within limits.
      valueBytes = encodeValue(answer.outcome.value);
    } catch (error) {
      return impure(revoked(`peer answered with something malformed: ${describeThrown(error)}`), peer);
    }
    const cacheable = answer.cacheable && peer !== undefined;
    if (cacheable) this.#upstream.set(token, peer);
    return { outcome: fulfilled(decodeValue(valueBytes)), pure: cacheable, valueBytes, ...(peer ? { peer } : {}) };
  }

  /** #forward for call `seq`, journaled already: which peer answered it is journaled too. */
  async #forwardCall(token: Token, argsBytes: Uint8Array, frame: CallFrame, seq: number, chain?: ChainBlocks): Promise<Invoked> {
    const forwarded = await this.#forward(token, argsBytes, frame, chain);
    if (forwarded.peer) this.#powers.journal.append({ kind: 'forwarded', call: seq, to: forwarded.peer });
    return forwarded;
  }

  async #run(
    token: Token,
    argsBytes: Uint8Array,
    frame: CallFrame,
    seq: number,
  ): Promise<Invoked> {
    const impure = (outcome: Outcome) => ({ outcome, pure: false });
    const reason = this.#revoked.get(token);
    if (reason !== undefined) return impure(revokedBecause(reason, 'revoked'));
    const pending = this.#pending.get(token);
    if (pending) return impure(await this.#onPending(pending, argsBytes, frame));
    // A warm call on a closure held here does not wait a turn to learn it is not a delegation.
    if (!this.#closures.has(token)) {
      let delegation: Delegation | undefined;
      try {
        delegation = await this.#delegationOf(token);
      } catch (error) {
        return impure(revoked(describeThrown(error)));
      }
      if (delegation) return this.#screened(delegation, argsBytes, frame, seq);
    }
    let closure: Closure | undefined;
    try {
      // Warm calls find closure and module in memory and never await here.
      closure = this.#closures.get(token) ?? (await this.#closureHere(token));
      if (closure && !this.#isLoaded(closure.code)) await this.#loadModule(closure.code);
    } catch (error) {
      if (error instanceof GridError) return impure(revoked(error.message));
      return impure(revoked(`could not load closure: ${describeThrown(error)}`));
    }
    if (!closure) return this.#powers.forward ? this.#forwardCall(token, argsBytes, frame, seq) : impure(revoked('unknown token'));
    const timeLimitMs = Math.min(frame.deadline - this.#powers.clock(), closure.timeLimitMs ?? Number.POSITIVE_INFINITY);
    // Nested calls share this call's deadline, which starts when its vat has it.
    const nested: CallFrame = { caller: closure.issuer, path: [], depth: frame.depth + 1, parent: seq, deadline: frame.deadline, signal: frame.signal };
    const { answer, pure } = await this.#vats.run({
      closure,
      args: argsBytes,
      caller: frame.caller,
      nested: frame.depth > 0,
      timeLimitMs,
      ...(frame.signal ? { signal: frame.signal } : {}),
      started: () => (nested.deadline = this.#powers.clock() + timeLimitMs),
      call: async (target, args) => toVatAnswer(await this.invokeNested(target, decodeValue(args) as GridValue[], nested)),
      log: (line) => this.#powers.log?.(closure.token, line),
      issue: async (exportName, env) => {
        try {
          return { status: 'promised', token: await this.issueFor(closure, { export: exportName, env: decodeValue(env) }) };
        } catch (error) {
          return { status: 'revoked', reason: describeThrown(error) };
        }
      },
    });
    // A vat is hostile territory: what it sends back is checked like input from a peer.
    try {
      if (answer.status === 'revoked') {
        let cause = vatCause(answer.cause);
        // A call made by a closure that ran out of its caller's remaining time did not fail on its own budget.
        if (cause === 'limit' && frame.depth > 0 && answer.reason === 'time limit' && timeLimitMs < Math.min(this.limits.callTimeoutMs, closure.timeLimitMs ?? Infinity)) cause = 'passed';
        return impure(revokedBecause(String(answer.reason), cause));
      }
      if (answer.status === 'promised') return impure(promised(asToken(answer.token)));
      return { outcome: fulfilled(decodeValue(answer.value)), pure, valueBytes: answer.value };
    } catch (error) {
      return impure(revokedBecause(`vat answered with something malformed: ${describeThrown(error)}`, 'crash'));
    }
  }

  #assertOpen() {
    if (this.#closed) throw new KernelError('ERR_CLOSED', 'kernel is closed');
  }

  /** Make the journal durable. */
  flush(): Promise<void> {
    this.#writePolicyStates();
    return this.#powers.journal.flush();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      for (const server of this.#servers) await server.close();
      await this.#powers.network?.close();
      await this.#vats.close();
      for (const pending of this.#pending.values()) {
        pending.cancelExpiry();
        pending.settle(revoked('kernel is closed'));
      }
      this.#writePolicyStates();
      await this.#powers.journal.close();
    } finally {
      await this.#powers.onClose?.();
    }
  }
}
