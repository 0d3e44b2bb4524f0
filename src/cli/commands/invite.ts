/** `grid invite` and `grid join`: membership by invitation. */
import { homePaths } from '../../home/home.js';
import { rememberPeers } from '../../home/peers-file.js';
import { runningNode } from '../../home/running-node.js';
import { parseGridUrl } from '../../net/grid-url.js';
import { redeemInvitation, type Welcome } from '../../net/membership.js';
import { parseDuration, toJsonText, UsageError } from '../format.js';
import { connectAsHome, withOwnNode } from '../home-ops.js';
import { EXIT, progressOf, text, verb, type Session } from '../invocation.js';
import { whileWaiting } from '../progress.js';

export const inviteCommand = (session: Session) =>
  verb(
    session,
    'invite',
    'print an invitation to this home\'s running node: a grid URL, usable once (default: expires in 24h)',
    (c) => c.option('--expires <duration>', 'how long the invitation holds: 30m, 2h, 7d', '24h'),
    async (inv, _args, opts) => {
      const expiresInMs = parseDuration(text(opts.expires) ?? '24h', '--expires');
      return withOwnNode(inv, async (remote) => {
        const { invitation, expires } = await remote.invite(expiresInMs);
        inv.io.out(inv.json ? toJsonText({ invitation, expires }) : invitation);
        return EXIT.ok;
      });
    },
  );

export const joinCommand = (session: Session) =>
  verb(
    session,
    'join',
    'join the grid through an invitation (a grid URL): learn and remember the introducer and its peers',
    (c) => c.argument('<invitation>', 'the grid:// URL `grid invite` printed'),
    async (inv, [invitation]) => {
      const invitationUrl = invitation as string;
      const { token, via } = parseGridUrl(invitationUrl);
      if (!via) throw new UsageError('the invitation says nowhere to go (no ?via=)');
      const paths = homePaths(inv.home);
      const print = (welcome: Welcome) => {
        inv.io.out(inv.json ? toJsonText(welcome) : `joined ${welcome.introducer}; peers: ${welcome.peers.join(', ')}`);
        return EXIT.ok;
      };
      const progress = progressOf(inv);
      try {
        // With the home's node running, the node joins and starts using its new peers at once.
        if (await runningNode(paths.node)) {
          return await withOwnNode(inv, async (remote) => print(await whileWaiting(progress, `joining through this home's node: reaching ${via}`, remote.join(invitationUrl))));
        }
        progress(`joining: reaching ${via}`);
        const introducer = await connectAsHome(inv, via);
        try {
          progress(`joining: redeeming the invitation at ${via}`);
          const welcome = await redeemInvitation(introducer, token, undefined);
          progress(`joining: remembering ${welcome.peers.length} peers`);
          await rememberPeers(paths.peers, welcome.peers);
          progress(undefined); // the status line goes before the answer is printed
          return print(welcome);
        } finally {
          introducer.close();
        }
      } finally {
        progress(undefined);
      }
    },
  );
