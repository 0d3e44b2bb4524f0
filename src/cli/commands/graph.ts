/** `grid graph`: the promise graph, whole or around a token, here or across nodes. */
import { quote } from '../../interface/ids.js';
import { renderDot, renderMermaid, renderText } from '../../journal/graph.js';
import { acrossTree, recordsAcross, renderTree } from '../../journal/queries.js';
import type { Entry } from '../../journal/journal.js';
import { parseDuration, toJsonText, UsageError } from '../format.js';
import { askRecords, nodesToAsk, withHome } from '../home-ops.js';
import { EXIT, list, progressOf, repeatable, text, verb, type Session } from '../invocation.js';
import { resolvePrincipal, resolveTarget, resolveToken } from '../resolve.js';

const FORMATS = ['text', 'json', 'dot', 'mermaid'];

/** `--since`: a duration back from now (90s, 1h, 7d) or a time (2026-11-28T09:00Z); milliseconds since the epoch. */
const parseSince = (since: string, now: number): number => {
  if (/^\d+(ms|s|m|h|d)$/.test(since)) return now - parseDuration(since, '--since');
  const at = /^\d{4}-\d{2}-\d{2}/.test(since) ? Date.parse(since) : Number.NaN;
  if (!Number.isFinite(at)) throw new UsageError(`--since takes a duration such as 1h or a time such as 2026-11-28T09:00Z (got ${quote(since)})`);
  return at;
};

interface Narrowing {
  readonly since?: number;
  readonly caller?: string;
  readonly limit?: number;
}

/**
 * The records `--since`, `--caller` and `--limit` keep, in journal order:
 * written at or after `since`; the calls (and cache hits) `caller` made,
 * with their outcomes; the latest `limit` of what is left (seals, which
 * only sign, are not counted).
 */
const narrow = (entries: readonly Entry[], { since, caller, limit }: Narrowing): readonly Entry[] => {
  let kept = since === undefined ? entries : entries.filter((entry) => entry.at >= since);
  if (caller !== undefined) {
    const calls = new Set<number>();
    kept = kept.filter((entry) => {
      if (entry.kind === 'call' || entry.kind === 'hit') {
        if (entry.caller !== caller) return false;
        calls.add(entry.seq);
        return true;
      }
      return 'call' in entry && typeof entry.call === 'number' && calls.has(entry.call);
    });
  }
  if (limit === undefined) return kept;
  const events = kept.filter((entry) => entry.kind !== 'seal');
  const first = events.length > limit ? events[events.length - limit]!.seq : -1;
  return kept.filter((entry) => entry.kind !== 'seal' && entry.seq >= first);
};

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
        .option('--from <url>', 'ask this node too (repeatable)', repeatable)
        .option('--since <when>', 'only records since a duration ago (1h, 30m, 7d) or a time (2026-11-28T09:00Z)')
        .option('--caller <principal>', 'only the calls this principal (a did:key or pet name) made, and their outcomes')
        .option('--limit <n>', 'only the latest N records'),
    async (inv, [tokenRef], opts) => {
      const token = tokenRef as string | undefined;
      const format = inv.json ? 'json' : (text(opts.format) ?? 'text');
      if (!FORMATS.includes(format)) throw new UsageError(`--format must be text, json, dot or mermaid (got ${quote(format)})`);
      const from = list(opts.from);
      const across = opts.across === true || from.length > 0;
      if (across && !token) throw new UsageError('--across and --from need a TOKEN: nodes show records about a token its holder names');
      if (across && (format === 'dot' || format === 'mermaid')) throw new UsageError('--across prints text or json');
      const sinceText = text(opts.since);
      const since = sinceText === undefined ? undefined : parseSince(sinceText, Date.now());
      const limitText = text(opts.limit);
      const limit = limitText === undefined ? undefined : Number(limitText);
      if (limit !== undefined && !(Number.isSafeInteger(limit) && limit > 0)) throw new UsageError(`--limit takes a positive whole number (got ${quote(limitText)})`);
      const callerText = text(opts.caller);
      if (across && (since !== undefined || limit !== undefined || callerText !== undefined)) throw new UsageError('--since, --caller and --limit narrow this home\'s graph, not --across');
      return withHome(inv, async (home, names) => {
        const { journal, records } = await home.history();
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
          if (format === 'json') inv.io.out(toJsonText({ here: await records.around(target.token), nodes }));
          else {
            inv.io.out(renderTree(acrossTree(target.token, await records.show(target.token, name), nodes, name)));
          }
          // A record that failed verification is the louder news; a node that did not answer, the quieter.
          if (nodes.some((node) => node.verified && node.verified.flagged.length > 0)) return EXIT.revoked;
          return nodes.some((node) => !node.verified) ? EXIT.unreachable : EXIT.ok;
        }
        const caller = callerText === undefined ? undefined : resolvePrincipal(callerText, names);
        // Around a token, only the records the index says concern it are read; the whole graph reads the journal.
        let all: Entry[] | undefined;
        if (!token) {
          all = [];
          for await (const entry of journal.read(0)) all.push(entry);
        }
        const entries = narrow(token ? await records.around(resolveToken(token, names)) : all!, { since, caller, limit });
        if (format === 'json') inv.io.out(toJsonText({ entries }));
        else if (format === 'dot') inv.io.out(renderDot(entries, name));
        else if (format === 'mermaid') inv.io.out(renderMermaid(entries, name));
        else inv.io.out(entries.length === 0 ? '(no records)' : renderText(entries, name, all ?? (await records.textContext(entries))));
        return EXIT.ok;
      });
    },
  );
