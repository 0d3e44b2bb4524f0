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
