/// <reference types="ses" />
/**
 * The kernel's public shapes: what it takes (limits, specs, call options),
 * what it gives (pending calls; answers, replicas and chains are the wire's,
 * wire/shapes.ts), and the one error class its owner API throws.
 */
import type { Principal, Token } from '../interface/ids.js';
import type { GridValue } from '../closures/values.js';
import { GridError } from '../interface/errors.js';
import type { Outcome } from '../interface/outcome.js';
import type { RevocationNotice } from './revocations.js';
import { STORAGE_QUOTA, type StorageQuota } from './quota.js';
import type { Answer, ChainBlocks, Replica } from '../wire/shapes.js';

export type { Outcome } from '../interface/outcome.js';
export type { Answer, ChainBlocks, Replica } from '../wire/shapes.js';


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
  /** How long each side of a vat's channel polls after its last message before sleeping, in µs (vat/pool.ts VAT_SPIN_US; 0: never polls). */
  readonly vatSpinUs?: number;
  /** How messages travel between the kernel and its vats: `shared-memory` rings or `postMessage` (vat/pool.ts VAT_TRANSPORT). */
  readonly vatTransport?: 'shared-memory' | 'postMessage';
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

/** The part of a call's state that nested calls share. */
export interface CallFrame {
  readonly caller: Principal;
  readonly path: readonly Principal[];
  readonly depth: number;
  readonly parent: number | undefined;
  deadline: number;
  /** The caller's cancel, shared by every call this one makes. */
  readonly signal?: AbortSignal;
  /** The delegation this node's own authority for the call came through, when it came through one (a document version names it). */
  readonly via?: Token;
}

/** One call's end, as the pipeline hands it up: `pure` if it may be cached, with its value's canonical bytes. */
export interface Invoked {
  readonly outcome: Outcome;
  readonly pure: boolean;
  readonly valueBytes?: Uint8Array;
}
/** An end no one may cache. */
export const impure = (outcome: Outcome): Invoked => ({ outcome, pure: false });

/** How much longer than a call's own limit a caller waits for another node's answer. */
export const REMOTE_GRACE_MS = 1000;
