/** `grid reputation`: promises kept and broken, per issuer. */
import { ReputationTally } from '../../journal/reputation.js';
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
        // A tally per issuer, from the journal read a window at a time (after what a checkpoint summarized, if the home has one).
        const tally = new ReputationTally();
        const { journal, base } = await home.history();
        if (base) tally.restore(base.reputation);
        for await (const entry of journal.read(base?.seq ?? 0)) tally.add(entry);
        let rows = tally.rows();
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
