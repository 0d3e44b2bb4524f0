/** `grid repl`: a REPL on the home. */
import { join } from 'node:path';
import { homePaths } from '../../home/home.js';
import { recordsAcross } from '../../journal/queries.js';
import { DEFAULT_LIMITS, REMOTE_GRACE_MS } from '../../kernel/kernel.js';
import { startRepl } from '../../repl/repl.js';
import { askRecords, connectAsHome, nodesToAsk, withHome } from '../home-ops.js';
import { EXIT, text, verb, type Session, viaUrl } from '../invocation.js';
import { resolvePrincipal, resolveTarget } from '../resolve.js';

export const replCommand = (session: Session) =>
  verb(
    session,
    'repl',
    'a REPL with E, grid.publish/issue/call/delegate/revoke, graph.show/who/pending/broken/calls/reputation/export/follow and doc.create/apply/show/log/conflicts/resolve',
    (c) => c.option('--via <url>', 'make calls through the node at this ws:// URL', viaUrl),
    async (inv, _args, opts) =>
      withHome(inv, async (home, names) => {
        const via = text(opts.via);
        // With --via, calls go to that node as this home's principal; the graph is still this home's.
        const remote = via ? await connectAsHome(inv, via) : undefined;
        try {
          await startRepl(home, {
            input: process.stdin,
            output: process.stdout,
            nameOf: (id) => names.nameOf(id),
            // Words name things as on the command line: pet names and grid URLs too.
            resolve: { token: (word) => resolveTarget(word, names), principal: (word) => resolvePrincipal(word, names) },
            // A grid URL's token is called where its URL says, as this home's principal (as `grid call` does).
            callAt: async (url, token, args, options) => {
              const at = await connectAsHome(inv, url);
              try {
                return await at.call(token, args, { ...options, timeoutMs: DEFAULT_LIMITS.callTimeoutMs + REMOTE_GRACE_MS });
              } finally {
                at.close();
              }
            },
            historyFile: join(homePaths(inv.home).root, 'repl_history'),
            ...(remote ? { call: (token: string, args: readonly unknown[], options: { follow?: boolean }) => remote.call(token, args, options) } : {}),
            across: async (token, from) => recordsAcross(token, await nodesToAsk(inv, via, from, home.nodeUrl), (url, asked) => askRecords(inv, url, asked)),
            pending: () => (remote ? remote.pending() : home.pending()),
          });
        } finally {
          remote?.close();
        }
        return EXIT.ok;
        // A REPL may stay open for hours: it serves the home to other commands (on loopback) instead of shutting them out.
      }, { serve: true }),
  );
