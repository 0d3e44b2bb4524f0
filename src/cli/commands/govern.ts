/**
 * `grid propose` and `grid vote`: governance as the CLI offers it. A
 * proposal is a change to a governed document that applies only with its
 * members' consent: a further promise the quorum fulfils (the change is
 * applied) or breaks (rejected, or expired). A vote is signed by this home's
 * principal and counted once.
 */
import type { Command } from 'commander';
import type { GridValue } from '../../closures/values.js';
import { parseJsonArg, UsageError } from '../format.js';
import { withHome } from '../home-ops.js';
import { printOutcome, verb, type Session } from '../invocation.js';
import { ASK_ELSEWHERE, callDoc, docTarget } from './doc.js';
import { homePaths } from '../../home/home.js';
import { loadIdentity } from '../../identity/index.js';
import { signVote } from '../../docs/governance.js';

export const proposeCommand = (session: Session): Command =>
  verb(
    session,
    'propose',
    'propose a change to a governed document (a write or admin token); print the proposal, a further promise the members vote on',
    (c) => c.argument('<doc>', 'a document token: CID, pet name or grid:// URL').argument('<change>', 'the change, as JSON'),
    async (inv, [ref, changeText]) => {
      const change = parseJsonArg(changeText as string, 'CHANGE') as GridValue;
      const target = await docTarget(inv, ref as string);
      return withHome(inv, async (home) => printOutcome(inv, await callDoc(inv, home, target, ['propose', change])));
    },
  );

export const voteCommand = (session: Session): Command =>
  verb(
    session,
    'vote',
    'vote yes or no on a proposal, signed as this home; print where it stands (promised while the quorum is not reached)',
    (c) => c.argument('<proposal>', 'the proposal, as `grid propose` printed it (a CID, pet name or grid:// URL)').argument('<choice>', 'yes or no'),
    async (inv, [ref, choice]) => {
      if (choice !== 'yes' && choice !== 'no') throw new UsageError(`a vote is yes or no (got ${JSON.stringify(choice)})`);
      const target = await docTarget(inv, ref as string);
      return withHome(inv, async (home) => {
        let outcome = await home.vote(target.token, choice);
        // A proposal held at the node a grid URL names: the vote is signed here and cast there.
        if (outcome.status === 'revoked' && ASK_ELSEWHERE.has(outcome.code) && target.via && target.via !== home.nodeUrl) {
          const identity = await loadIdentity(homePaths(inv.home).identity);
          outcome = await callDoc(inv, home, target, ['vote', choice, await signVote(identity, target.token, choice)]);
        }
        return printOutcome(inv, outcome);
      });
    },
  );
