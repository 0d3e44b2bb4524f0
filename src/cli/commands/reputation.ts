/** `grid reputation`: promises kept and broken, per issuer. */
import { toJsonText } from '../format.js';
import { withHome } from '../home-ops.js';
import { EXIT, verb, type Session } from '../invocation.js';
import { resolvePrincipal } from '../resolve.js';

export const reputationCommand = (session: Session) =>
  verb(
    session,
    'reputation',
    'fulfilled / broken / refused / pending promises per issuer (see README: Reputation)',
    (c) => c.argument('[principal]', 'only this issuer (a did:key or pet name)'),
    async (inv, [who]) =>
      withHome(inv, async (home, names) => {
        // The tally per issuer the kernel keeps (here, or in the running node), not the journal read again.
        let rows = await home.reputation();
        if (typeof who === 'string') {
          const principal = resolvePrincipal(who, names);
          rows = rows.filter((r) => r.issuer === principal);
        }
        if (inv.json) inv.io.out(toJsonText({ reputation: rows }));
        else if (rows.length === 0) inv.io.out('(no issuers)');
        else {
          inv.io.out(['issuer\tissued\tfulfilled\tbroken\trefused\tpending', ...rows.map((r) => `${names.nameOf(r.issuer) ?? r.issuer}\t${r.issued}\t${r.fulfilled}\t${r.broken}\t${r.refused}\t${r.pending}`)].join('\n'));
        }
        return EXIT.ok;
      }),
  );
