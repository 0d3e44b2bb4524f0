/** `grid revoke`: break a promise, and tell the node that answers the token. */
import { DEFAULT_LIMITS } from '../../kernel/kernel.js';
import type { RevocationNotice } from '../../kernel/revocations.js';
import { toJsonText } from '../format.js';
import { connectAsHome, withHome } from '../home-ops.js';
import { EXIT, text, UnreachableError, verb, type Invocation, type Session, viaUrl } from '../invocation.js';
import { resolveTarget } from '../resolve.js';

/** Hand a revocation to the node at `via`; a refusal or no answer is an error (the revocation holds here either way). */
const tellRevocation = async (inv: Invocation, via: string, notice: RevocationNotice) => {
  const remote = await connectAsHome(inv, via, (message) => `revoked here, but ${message}`);
  try {
    const { outcome } = await remote.session.revoke(notice, DEFAULT_LIMITS.callTimeoutMs);
    if (outcome.status === 'revoked') throw new UnreachableError(`revoked here, but ${via} did not take the notice: ${outcome.reason}`);
  } finally {
    remote.close();
  }
};

export const revokeCommand = (session: Session) =>
  verb(
    session,
    'revoke',
    'break the promise: every later call through TOKEN is revoked (a delegation: that layer and what was delegated through it)',
    (c) =>
      c
        .argument('<token>', 'a token CID, pet name or grid:// URL')
        .option('--reason <text>', 'why, for the graph and for callers')
        .option('--via <url>', 'tell the node at this ws:// URL at once', viaUrl),
    async (inv, [tokenRef], opts) =>
      withHome(inv, async (home, names) => {
        const target = resolveTarget(tokenRef as string, names);
        await home.revoke(target.token, text(opts.reason));
        // The node that answers the token (its URL's, or --via) is told at once, peer or not.
        // (Not this home's own node, which made the revocation.)
        const given = text(opts.via) ?? target.via;
        const via = given === home.nodeUrl ? undefined : given;
        const notice = via ? await home.revocationNotice(target.token) : undefined;
        if (via && notice) await tellRevocation(inv, via, notice);
        inv.io.out(inv.json ? toJsonText({ revoked: target.token, ...(notice ? { told: via } : {}) }) : `revoked ${target.token}${notice ? `; told ${via}` : ''}`);
        return EXIT.ok;
      }),
  );
