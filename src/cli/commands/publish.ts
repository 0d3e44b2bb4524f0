/** `grid publish`: store modules in the home's block store. */
import { toJsonText, UsageError } from '../format.js';
import { withHome } from '../home-ops.js';
import { EXIT, progressOf, text, verb, type Session } from '../invocation.js';
import { formatBytes } from '../progress.js';
import { readModuleFile, setName } from '../resolve.js';

export const publishCommand = (session: Session) =>
  verb(
    session,
    'publish',
    'store JS or WebAssembly modules; print each CID',
    (c) => c.argument('<file...>', 'module files (.js or .wasm)').option('--name <pet>', 'give the module a pet name (one FILE only)')
        .option('--force', 'take the pet name even if it names something else'),
    async (inv, [files], opts) => {
      const paths = files as string[];
      const name = text(opts.name);
      if (name !== undefined && paths.length > 1) throw new UsageError('--name takes exactly one FILE');
      return withHome(inv, async (home, names) => {
        const published: Array<{ file: string; cid: string }> = [];
        const progress = progressOf(inv);
        let total = 0;
        try {
          for (const [index, file] of paths.entries()) {
            const bytes = await readModuleFile(file);
            total += bytes.length;
            progress(`publishing ${index + 1}/${paths.length}: ${file} (${formatBytes(bytes.length)}; ${formatBytes(total)} so far)`);
            published.push({ file, cid: await home.publish(bytes) });
          }
        } finally {
          progress(undefined);
        }
        if (name !== undefined) await setName(names, name, published[0]!.cid, opts.force === true);
        inv.io.out(inv.json ? toJsonText({ modules: published }) : published.map((p) => p.cid).join('\n'));
        return EXIT.ok;
      }, { analyzes: true });
    },
  );
