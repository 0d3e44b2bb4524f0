/** `grid run`: run a WASI command module, or a JS module's main export. */
import { existsSync } from 'node:fs';
import { parseCid } from '../../caps/ids.js';
import { moduleKindOf } from '../../closures/modules.js';
import { homePaths } from '../../home/home.js';
import { PetNames } from '../../home/names.js';
import { DEFAULT_LIMITS } from '../../kernel/kernel.js';
import { openFsBlockStore } from '../../store/index.js';
import { runWasiCommand } from '../../vat-wasm/wasi.js';
import { withHome } from '../home-ops.js';
import { printOutcome, verb, type Session } from '../invocation.js';
import { readInput } from '../resolve.js';

export const runCommand = (session: Session) =>
  verb(
    session,
    'run',
    'run a WASI command module, or a JS module\'s main export, from a file, CID or pet name (ARGs after -- are passed as they are)',
    (c) =>
      c
        .argument('<module>', 'a module file, CID or pet name')
        .argument('[args...]', 'the command\'s arguments')
        .option('--clock', 'let the command read the clock')
        .option('--random', 'let the command read random bytes'),
    async (inv, [moduleRef, commandArgs], opts) => {
      const ref = moduleRef as string;
      const args = commandArgs as string[];
      const bytes = existsSync(ref)
        ? await readInput(ref)
        : await openFsBlockStore(homePaths(inv.home).blocks).get(parseCid((await PetNames.open(homePaths(inv.home).names)).get(ref)?.id ?? ref, 'module'));
      if (moduleKindOf(bytes) === 'wasm') {
        return runWasiCommand(bytes, { args, clock: opts.clock === true, random: opts.random === true, maxPages: DEFAULT_LIMITS.wasmMaxPages });
      }
      return withHome(inv, async (home) => {
        const token = await home.issue({ code: await home.publish(bytes), export: 'main' });
        return printOutcome(inv, await home.call(token, args, { follow: true }));
      });
    },
  );
