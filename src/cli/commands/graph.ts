/** `grid graph`: the promise graph, whole or around a token, here or across nodes. */
import { quote } from '../../caps/ids.js';
import { entriesAround, renderDot, renderMermaid, renderText } from '../../journal/graph.js';
import { acrossTree, GraphIndex, recordsAcross, renderTree } from '../../journal/queries.js';
import { toJsonText, UsageError } from '../format.js';
import { askRecords, nodesToAsk, withHome } from '../home-ops.js';
import { EXIT, list, progressOf, repeatable, text, verb, type Session } from '../invocation.js';
import { resolveTarget, resolveToken } from '../resolve.js';

const FORMATS = ['text', 'json', 'dot', 'mermaid'];

export const graphCommand = (session: Session) =>
  verb(
    session,
    'graph',
    'show the promise graph, or the part of it that touches TOKEN; --across adds the records of the nodes this home knows (and --from URL), verified',
    (c) =>
      c
        .argument('[token]', 'a token CID, pet name or grid:// URL')
        .option('--format <format>', 'text, json, dot or mermaid', 'text')
        .option('--across', 'ask the nodes this home knows for their records about TOKEN')
        .option('--from <url>', 'ask this node too (repeatable)', repeatable),
    async (inv, [tokenRef], opts) => {
      const token = tokenRef as string | undefined;
      const format = inv.json ? 'json' : (text(opts.format) ?? 'text');
      if (!FORMATS.includes(format)) throw new UsageError(`--format must be text, json, dot or mermaid (got ${quote(format)})`);
      const from = list(opts.from);
      const across = opts.across === true || from.length > 0;
      if (across && !token) throw new UsageError('--across and --from need a TOKEN: nodes show records about a token its holder names');
      if (across && (format === 'dot' || format === 'mermaid')) throw new UsageError('--across prints text or json');
      return withHome(inv, async (home, names) => {
        const all = await home.entries();
        const name = (id: string) => names.nameOf(id) ?? (id.length > 24 ? `${id.slice(0, 10)}…${id.slice(-6)}` : id);
        if (across) {
          const target = resolveTarget(token, names);
          const urls = await nodesToAsk(inv, target.via, from, home.nodeUrl);
          const progress = progressOf(inv);
          let answered = 0;
          progress(`asking ${urls.length} nodes for their records`);
          const nodes = await recordsAcross(target.token, urls, (url, asked) =>
            askRecords(inv, url, asked).finally(() => progress(`asking ${urls.length} nodes for their records: ${++answered} answered`)),
          ).finally(() => progress(undefined));
          if (format === 'json') inv.io.out(toJsonText({ here: entriesAround(all, target.token), nodes }));
          else {
            const here = new GraphIndex();
            for (const entry of all) here.add(entry);
            inv.io.out(renderTree(acrossTree(target.token, here.show(target.token, name), nodes, name)));
          }
          // A record that failed verification is the louder news; a node that did not answer, the quieter.
          if (nodes.some((node) => node.verified && node.verified.flagged.length > 0)) return EXIT.revoked;
          return nodes.some((node) => !node.verified) ? EXIT.unreachable : EXIT.ok;
        }
        const entries = token ? entriesAround(all, resolveToken(token, names)) : all;
        if (format === 'json') inv.io.out(toJsonText({ entries }));
        else if (format === 'dot') inv.io.out(renderDot(entries, name));
        else if (format === 'mermaid') inv.io.out(renderMermaid(entries, name));
        else inv.io.out(entries.length === 0 ? '(no records)' : renderText(entries, name, all));
        return EXIT.ok;
      });
    },
  );
