/** `grid run`: run a WASI command module, or a JS module's main export. */
import { existsSync } from 'node:fs';
import { parseCid, quote } from '../../interface/ids.js';
import { moduleKindOf } from '../../closures/modules.js';
import { homePaths } from '../../home/home.js';
import { PetNames } from '../../home/names.js';
import { DEFAULT_LIMITS } from '../../kernel/kernel.js';
import { openFsBlockStore } from '../../store/index.js';
import { runWasiCommand } from '../../vat-wasm/wasi.js';
import { UsageError } from '../format.js';
import { withHome } from '../home-ops.js';
import { printOutcome, verb, type Session } from '../invocation.js';
import { isPathLike, readModuleFile, resolveId } from '../resolve.js';

/** A module's bytes: a file, else a pet name or CID in the home's store. */
const moduleBytes = async (home: string, ref: string): Promise<Uint8Array> => {
  if (existsSync(ref)) return readModuleFile(ref);
  if (isPathLike(ref)) throw new UsageError(`no such file: ${ref}`, 'ERR_NO_SUCH_FILE');
  const names = await PetNames.open(homePaths(home).names);
  const named = names.get(ref);
  if (named && named.kind !== 'module') throw new UsageError(`${quote(ref)} names a ${named.kind}, not a module`);
  return openFsBlockStore(homePaths(home).blocks).get(parseCid(resolveId(ref, names), 'module'));
};

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
      const args = commandArgs as string[];
      const bytes = await moduleBytes(inv.home, moduleRef as string);
      if (moduleKindOf(bytes) === 'wasm') {
        return runWasiCommand(bytes, { args, clock: opts.clock === true, random: opts.random === true, maxPages: DEFAULT_LIMITS.wasmMaxPages });
      }
      return withHome(
        inv,
        async (home) => {
          const token = await home.issue({ code: await home.publish(bytes), export: 'main' });
          return printOutcome(inv, await home.call(token, args, { follow: true }));
        },
        { analyzes: true },
      );
    },
  );
