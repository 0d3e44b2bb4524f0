import type { Token } from './ids.js';
import type { GridValue } from '../closures/values.js';

/**
 * How every call ends, in one shape for every layer: exactly one of
 * fulfilled (a value), revoked (a reason), or promised (a further token).
 * `V` is how the value is carried: decoded grid data in the kernel's API,
 * canonical bytes between threads.
 */
export type Settlement<V, T extends string = string> =
  | { readonly status: 'fulfilled'; readonly value: V }
  | { readonly status: 'revoked'; readonly reason: string }
  | { readonly status: 'promised'; readonly token: T };

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
export const REVOKE_CAUSES: readonly RevokeCause[] = Object.freeze(['refused', 'limit', 'crash', 'revoked', 'passed', 'screened', 'node', 'remote']);

/** How a call ends in the kernel's API: a value as grid data, a further promise as a token. */
export type Outcome = Settlement<GridValue, Token>;

/** Longest reason a revoked outcome carries. */
export const MAX_REASON = 500;

// Outcomes hold only primitives and deeply frozen values, so a shallow freeze hardens them.
export const revoked = (reason: string): Outcome => Object.freeze({ status: 'revoked', reason: reason.slice(0, MAX_REASON) });
export const fulfilled = (value: GridValue): Outcome => Object.freeze({ status: 'fulfilled', value });
export const promised = (token: Token): Outcome => Object.freeze({ status: 'promised', token });

/**
 * Why a revoked outcome was revoked, for its journal record. Kept beside the
 * outcome, not in it, so outcomes keep the shape callers see; a revocation the
 * kernel makes without naming a cause is the node's (`node`), never held
 * against an issuer.
 */
const causes = new WeakMap<Outcome, RevokeCause>();
export const revokedBecause = (reason: string, cause: RevokeCause): Outcome => {
  const outcome = revoked(reason);
  causes.set(outcome, cause);
  return outcome;
};
export const causeOf = (outcome: Outcome): RevokeCause => causes.get(outcome) ?? 'node';
