/** `grid gc`: delete the blocks nothing in the home needs (home/gc.ts says what keeps one). */
import { collectGarbage, type GcReport, type Tally } from '../../home/gc.js';
import { parseDuration, toJsonText } from '../format.js';
import { EXIT, text, verb, type Session } from '../invocation.js';
import { formatBytes } from '../progress.js';

const count = ({ blocks, bytes }: Tally) => `${blocks} block${blocks === 1 ? '' : 's'} (${formatBytes(bytes)})`;

const summary = (report: GcReport): string => {
  const kinds = Object.entries(report.collected.byKind)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([kind, tally]) => `${tally.blocks} ${kind}${tally.blocks === 1 ? '' : 's'}`);
  const what = `${report.dryRun ? 'would collect' : 'collected'} ${count(report.collected)}${kinds.length > 0 ? `: ${kinds.join(', ')}` : ''}`;
  const fresh = report.fresh > 0 ? `; ${report.fresh} written meanwhile kept` : '';
  return `${what}; kept ${count(report.kept)} of ${report.total.blocks} in ${(report.ms / 1000).toFixed(2)} s${fresh}${report.dryRun ? '; nothing deleted (dry run)' : ''}`;
};

export const gcCommand = (session: Session) =>
  verb(
    session,
    'gc',
    'delete the blocks no live closure, delegation, document, cached answer or pet name needs (a node on the home must be stopped first)',
    (c) =>
      c
        .option('--dry-run', 'list what would be collected, with counts and bytes; delete nothing')
        .option('--keep-modules <dur>', 'keep modules nothing uses yet if published within DUR, e.g. 7d or 0 (default 30d)'),
    async (inv, _args, opts) => {
      const keep = text(opts.keepModules);
      const report = await collectGarbage({
        home: inv.home,
        dryRun: opts.dryRun === true,
        ...(keep === undefined ? {} : { keepModulesMs: keep === '0' ? 0 : parseDuration(keep, '--keep-modules') }),
        ...(inv.lockWaitMs === undefined ? {} : { lockWaitMs: inv.lockWaitMs }),
      });
      // A damaged block in use stops the collection: the user must know, and scripts too.
      const inUse = report.damaged.filter((block) => block.inUse).length;
      const code = inUse > 0 ? EXIT.usage : EXIT.ok;
      if (inv.json) {
        inv.io.out(toJsonText(report));
        return code;
      }
      for (const { cid, reason, inUse } of report.damaged) inv.io.err(`grid gc: block ${cid}${inUse ? ', in use,' : ''} left in place: ${reason}`);
      if (inUse > 0) {
        inv.io.err(`grid gc: collected nothing: ${inUse} block${inUse === 1 ? '' : 's'} in use ${inUse === 1 ? 'is' : 'are'} damaged, and what ${inUse === 1 ? 'it names' : 'they name'} is unknown; put ${inUse === 1 ? 'it' : 'them'} back (from a peer or a backup) and collect again`);
        return code;
      }
      if (report.blocks) for (const { cid, bytes, kind } of report.blocks) inv.io.out(`${cid}\t${kind}\t${bytes}`);
      inv.io.out(summary(report));
      return code;
    },
  );
