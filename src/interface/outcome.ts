import type { Token } from './ids.js';
import type { GridValue } from '../closures/values.js';
import { describeThrown } from './errors.js';

/**
 * How every call ends, in one shape for every layer: exactly one of
 * fulfilled (a value), revoked (a code and a reason), or promised (a further
 * token). `V` is how the value is carried: decoded grid data in the kernel's
 * API, canonical bytes between threads.
 */
export type Settlement<V, T extends string = string> =
  | { readonly status: 'fulfilled'; readonly value: V }
  | Revoked
  | { readonly status: 'promised'; readonly token: T };

/**
 * A broken promise: `code` says what happened, for programs to branch on
 * (one of REVOKE_CODES, stable); `reason` says it for people, and may change.
 */
export interface Revoked {
  readonly status: 'revoked';
  readonly code: RevokeCode;
  readonly reason: string;
}

/**
 * What ended a call revoked, the one closed set, each with the cause
 * (RevokeCause) it is weighed under unless the call's context says otherwise
 * (a peer's answer is `remote`; a time limit a nested call inherited from its
 * caller is `passed`). Codes and causes stay two things: a code is what
 * happened, for whoever called; a cause is whom it counts against, for the
 * journal's reputation tally. A cause is stored only where it differs from
 * its code's.
 */
const CODES = {
  /** No node on the way holds or knows the token. */
  'unknown-token': 'node',
  /** A forwarded call came back to a node it had passed. */
  loop: 'node',
  /** The call went past one of the node's structural limits: hops, nested calls, further promises, fan-out. */
  'call-limit': 'node',
  /** No answer could come: no peer that may know the token could be reached, or a peer did not answer in time. */
  unreachable: 'node',
  /** The connection the call travelled on dropped before its answer came. */
  disconnected: 'node',
  /** The caller cancelled the call. */
  cancelled: 'node',
  /** The node (its kernel or its vats) is shutting down. */
  'shut-down': 'node',
  /** The caller is over a quota: journal bytes, calls in flight, calls waiting for approval. */
  quota: 'node',
  /** The caller may not do this here (not an approver, not the caller who waits, a policy calling out, a request the side does not serve). */
  denied: 'node',
  /** No approval came within the time a waiting call is kept. */
  expired: 'node',
  /** The call itself is malformed: a bad token, arguments, delegation chain or forwarding path. */
  invalid: 'node',
  /** A peer or a policy answered with something that is not a valid answer. */
  malformed: 'node',
  /** The node's own trouble: its store, a vat that stopped or failed, the kernel failing mid-call. */
  internal: 'node',
  /** The call ran past its time limit. */
  'time-limit': 'limit',
  /** The call's vat ran out of its memory budget. */
  'memory-limit': 'limit',
  /** The closure refused the call (`ctx.revoke(reason)`, a WebAssembly export's own refusal); the reason is the closure's. */
  refused: 'refused',
  /** The closure threw, trapped, or answered with something that is not grid data. */
  crash: 'crash',
  /** The closure let the revocation of a call it made (`ctx.call`) end its own call. */
  'passed-on': 'passed',
  /** The token, or a delegation it goes through, was revoked by its issuer or delegator. */
  'token-revoked': 'revoked',
  /** A delegation's policy or chain refused the call. */
  screened: 'screened',
  /** A document has a conflict no merge step settled: a person holding its settle token must settle it first. */
  conflict: 'node',
  /** A code this node does not know: from a newer or misbehaving peer, or a journal record written before codes were kept. */
  other: 'node',
} as const satisfies Record<string, RevokeCause>;

export type RevokeCode = keyof typeof CODES;
export const REVOKE_CODES: readonly RevokeCode[] = Object.freeze(Object.keys(CODES) as RevokeCode[]);
/** What an unknown or missing code from outside (a peer, an old journal record) reads as. */
export const FALLBACK_CODE: RevokeCode = 'other';

const isRevokeCode = (code: unknown): code is RevokeCode => typeof code === 'string' && Object.hasOwn(CODES, code);
/** A code from outside, checked: anything but one of REVOKE_CODES is `fallback`. */
export const asRevokeCode = (code: unknown, fallback: RevokeCode = FALLBACK_CODE): RevokeCode => (isRevokeCode(code) ? code : fallback);

/**
 * Why a call ended revoked, written with its `revoked` record so that every
 * reader of the journal (the kernel live, the kernel replaying, the CLI, the
 * REPL) weighs it the same way (see ReputationTally):
 * - `refused`: the closure refused the call's input (`ctx.revoke`, a
 *   WebAssembly export's own refusal): the promise kept.
 * - `limit`: the call hit its time or memory limit; `crash`: the closure
 *   threw, trapped, or answered with something malformed. Broken promises.
 * - `revoked`: the token (or a layer above it) was revoked; the revocation
 *   itself is what counts.
 * - `passed`: the closure passed on a revocation from a call it made
 *   (`ctx.call`); the call that broke counts where it ran.
 * - `screened`: a delegation's policy or chain refused the call.
 * - `node`: this node's trouble, not the closure's (a vat stopped for another
 *   call, the kernel closing, an unknown token, a forwarding limit, the
 *   caller cancelling).
 * - `remote`: another node answered it (it journals its own cause).
 */
export type RevokeCause = 'refused' | 'limit' | 'crash' | 'revoked' | 'passed' | 'screened' | 'node' | 'remote';

/** How a call ends in the kernel's API: a value as grid data, a further promise as a token. */
export type Outcome = Settlement<GridValue, Token>;

/** Longest reason a revoked outcome carries. */
export const MAX_REASON = 500;

/**
 * Why a revoked outcome was revoked, for its journal record. Kept beside the
 * outcome, not in it, so outcomes keep the shape callers see; without one
 * given, it is its code's (see CODES).
 */
const causes = new WeakMap<object, RevokeCause>();

// Outcomes hold only primitives and deeply frozen values, so a shallow freeze hardens them.
/** The one way a revoked outcome is made (decoders included); `cause` only where the context overrides the code's. */
export const revoked = (code: RevokeCode, reason: string, cause?: RevokeCause): Revoked => {
  const outcome: Revoked = Object.freeze({ status: 'revoked', code, reason: reason.slice(0, MAX_REASON) });
  if (cause !== undefined && cause !== CODES[code]) causes.set(outcome, cause);
  return outcome;
};

/** The code an error thrown inside the node stands for, read from its own stable `code` (`invalid` if it has none of these). */
const ERROR_CODES: Readonly<Record<string, RevokeCode>> = Object.freeze({
  ERR_REVOKED: 'token-revoked',
  ERR_QUOTA: 'quota',
  ERR_CLOSED: 'shut-down',
  ERR_UNKNOWN_TOKEN: 'unknown-token',
  ERR_NO_NETWORK: 'unreachable',
  ERR_STORE: 'internal',
  ERR_NOT_AUDIENCE: 'denied',
  ERR_NOT_ISSUER: 'denied',
});

/**
 * A call ended by an error the node met (a bad chain, a revoked delegation
 * layer, its store): the error's message as the reason, never held against an
 * issuer (cause `node`).
 */
export const failed = (error: unknown, reason = describeThrown(error)): Revoked => {
  const errorCode = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return revoked((typeof errorCode === 'string' && Object.hasOwn(ERROR_CODES, errorCode) ? ERROR_CODES[errorCode] : undefined) ?? 'invalid', reason, 'node');
};

export const fulfilled = (value: GridValue): Outcome => Object.freeze({ status: 'fulfilled', value });
export const promised = (token: Token): Outcome => Object.freeze({ status: 'promised', token });

/** The cause a revoked outcome's journal record gives: the one it was built with, else its code's. */
export const causeOf = (outcome: Revoked): RevokeCause => causes.get(outcome) ?? CODES[asRevokeCode(outcome.code)];
