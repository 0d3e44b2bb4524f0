/** `grid repair`: a journal whose chain breaks part way keeps the records before the break; the rest moves aside. */
import { homePaths } from '../../home/home.js';
import { runningNode } from '../../home/running-node.js';
import { repairHome } from '../../home/open.js';
import { toJsonText, UsageError } from '../format.js';
import { EXIT, verb, type Session } from '../invocation.js';

export const repairCommand = (session: Session) =>
  verb(
    session,
    'repair',
    'keep the journal\'s verified records up to where its chain breaks and move the rest to a file beside it (named with the time); says what moved',
    (c) => c,
    async (inv) => {
      const running = await runningNode(homePaths(inv.home).node);
      if (running) throw new UsageError(`a node is running on this home (${running.url}, pid ${running.pid}): its journal opened, so it is whole; stop the node to repair`);
      const report = await repairHome({ home: inv.home, lockWaitMs: inv.lockWaitMs });
      if (inv.json) {
        inv.io.out(toJsonText(report));
        return EXIT.ok;
      }
      const sealed = report.sealed > 0 ? `; sealed the last ${report.sealed} kept records, which no seal covered yet` : '';
      const torn = report.tornBytes > 0 ? `; cut off a torn tail of ${report.tornBytes} bytes left by a crash` : '';
      if (!report.moved) {
        inv.io.out(`journal is whole: ${report.kept} records, nothing moved${torn}${sealed}`);
      } else {
        const { records, from, to, file } = report.moved;
        inv.io.out(
          [
            `journal broke at byte ${from}: ${report.reason!.replace(/^journal: /, "")}`,
            `kept the ${report.kept} records before it (bytes 0–${report.keptBytes})${sealed}`,
            `moved ${records} record${records === 1 ? '' : 's'} (bytes ${from}–${to}, ${to - from} bytes) to ${file}`,
          ].join('\n'),
        );
      }
      return EXIT.ok;
    },
  );
