/**
 * Cancelling a call: the caller's `AbortSignal` (kernel.call's `signal`, a
 * `cancel` frame on the wire, Ctrl-C in `grid call`) ends it with this
 * reason wherever it is — waiting for a vat, running in one (the vat is
 * stopped), or forwarded to a peer (which is told in turn). It is the
 * caller's act, not the issuer's: it never counts against a reputation.
 */
export const CANCELLED = 'cancelled by caller';
