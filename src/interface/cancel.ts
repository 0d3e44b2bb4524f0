import { revoked, type Revoked } from './outcome.js';

/**
 * Cancelling a call: the caller's `AbortSignal` (kernel.call's `signal`, a
 * `cancel` frame on the wire, Ctrl-C in `grid call`) ends it with this
 * reason wherever it is — waiting for a vat, running in one (the vat is
 * stopped), or forwarded to a peer (which is told in turn). It is the
 * caller's act, not the issuer's: it never counts against a reputation.
 */
export const CANCELLED = 'cancelled by caller';

/**
 * Why a call ends when the connection it came on drops: its caller can no
 * longer hear the answer, so it is cancelled like any other (queued or
 * running, its vat stopped), but under this reason.
 */
export const DISCONNECTED = 'disconnected';

/** What a session aborts its peer's calls with when the connection drops (`controller.abort(DROPPED)`). */
export const DROPPED: object = Object.freeze({ reason: DISCONNECTED });

/** The reason a call ends when `signal` aborts: DISCONNECTED if it was aborted with DROPPED, else CANCELLED. */
export const abortReason = (signal: AbortSignal | undefined): string => (signal?.reason === DROPPED ? DISCONNECTED : CANCELLED);

/** How a call ends when `signal` aborts: code `disconnected` or `cancelled`, under abortReason's reason. */
export const aborted = (signal: AbortSignal | undefined): Revoked =>
  signal?.reason === DROPPED ? revoked('disconnected', DISCONNECTED) : revoked('cancelled', CANCELLED);

/**
 * Run `handler` once when `signal` aborts (at once if it has); returns the
 * function that stops listening. Every call a call makes — nested, fanned
 * out, forwarded — listens on the caller's one signal: here they share a
 * single listener per signal, so a wide call tree neither trips the
 * runtime's listener-leak warning (Node warns past 10 on an AbortSignal) nor
 * leaves listeners behind on a signal its caller keeps.
 */
export const onAbort = (signal: AbortSignal, handler: () => void): (() => void) => {
  if (signal.aborted) {
    handler();
    return () => {};
  }
  let handlers = listening.get(signal);
  if (!handlers) {
    const set = new Set<() => void>();
    handlers = set;
    const fire = () => {
      listening.delete(signal);
      for (const each of set) each();
    };
    listening.set(signal, set);
    signal.addEventListener('abort', fire, { once: true });
    stoppers.set(signal, () => signal.removeEventListener('abort', fire));
  }
  const mine = () => handler();
  handlers.add(mine);
  return () => {
    const set = listening.get(signal);
    if (!set?.delete(mine) || set.size > 0) return;
    listening.delete(signal);
    stoppers.get(signal)?.();
    stoppers.delete(signal);
  };
};
const listening = new WeakMap<AbortSignal, Set<() => void>>();
const stoppers = new WeakMap<AbortSignal, () => void>();
