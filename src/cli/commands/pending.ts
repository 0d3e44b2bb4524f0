/** `grid pending`: the calls waiting for this home's approval (or for it to collect) on a node. */
import { formatGridUrl } from '../../net/grid-url.js';
import type { PendingView } from '../../kernel/kernel.js';
import { toJsonText } from '../format.js';
import { connectAsHome, withHome } from '../home-ops.js';
import { EXIT, text, verb, type Invocation, type Session, viaUrl } from '../invocation.js';
import type { PetNames } from '../../home/names.js';

const argsText = (args: readonly unknown[]) =>
  JSON.stringify(args, (_key, x: unknown) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? `<${x.length} bytes>` : x)).slice(1, -1);

const print = (inv: Invocation, views: readonly PendingView[], url: string | undefined, names: PetNames): number => {
  // The grid URL of each waiting call: what to call with "approve", or to collect its answer.
  const rows = views.map((view) => ({ ...view, ...(url ? { url: formatGridUrl({ token: view.token, via: url }) } : {}) }));
  if (inv.json) {
    inv.io.out(toJsonText({ pending: rows }));
    return EXIT.ok;
  }
  if (rows.length === 0) {
    inv.io.out('(nothing waits for you)');
    return EXIT.ok;
  }
  const name = (id: string) => names.nameOf(id) ?? id;
  for (const row of rows) {
    inv.io.out(
      [
        `${row.yours === 'approve' ? 'to approve' : 'to collect'}: ${'url' in row ? row.url : row.token}`,
        `  ${name(row.caller)} called ${name(row.delegation)}(${argsText(row.args)}) at ${new Date(row.since).toISOString()}`,
        `  ${row.reason}${row.approvedBy.length ? `; approved by ${row.approvedBy.map(name).join(', ')}` : ''}`,
      ].join('\n'),
    );
  }
  return EXIT.ok;
};

export const pendingCommand = (session: Session) =>
  verb(
    session,
    'pending',
    'calls waiting for your approval (approve with grid call URL \'"approve"\'), or for you to collect',
    (c) => c.option('--via <url>', 'ask the node at this ws:// URL (default: this home\'s node)', viaUrl),
    async (inv, _args, opts) => {
      const via = text(opts.via);
      return withHome(inv, async (home, names) => {
        if (!via) return print(inv, await home.pending(), home.nodeUrl, names);
        const remote = await connectAsHome(inv, via);
        try {
          return print(inv, await remote.pending(), via, names);
        } finally {
          remote.close();
        }
      });
    },
  );
