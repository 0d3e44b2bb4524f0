/** `grid web`: the address of the running node's web page. */
import { homePaths } from '../../home/home.js';
import { runningNode } from '../../home/running-node.js';
import { toJsonText, UsageError } from '../format.js';
import { EXIT, verb, type Session } from '../invocation.js';

export const webCommand = (session: Session) =>
  verb(
    session,
    'web',
    'print the address of this home\'s running node\'s web page (its access key included)',
    (c) => c,
    async (inv) => {
      const running = await runningNode(homePaths(inv.home).node);
      if (!running) throw new UsageError('no node is running on this home; start one with `grid start`');
      if (!running.web) throw new UsageError(`the node running on this home (${running.url}) serves no web page`);
      inv.io.out(inv.json ? toJsonText({ web: running.web, url: running.url }) : running.web);
      return EXIT.ok;
    },
  );
