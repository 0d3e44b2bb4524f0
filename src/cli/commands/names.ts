/** `grid names` and `grid name`: the home's pet names. */
import { homePaths } from '../../home/home.js';
import { PetNames } from '../../home/names.js';
import { toJsonText } from '../format.js';
import { withHome } from '../home-ops.js';
import { EXIT, verb, type Session } from '../invocation.js';
import { resolveId, resolveTarget, setName } from '../resolve.js';

export const namesCommand = (session: Session) =>
  verb(
    session,
    'names',
    'list pet names',
    (c) => c,
    async (inv) => {
      const names = await PetNames.open(homePaths(inv.home).names);
      const entries = names.list();
      if (inv.json) inv.io.out(toJsonText({ names: Object.fromEntries(entries) }));
      else inv.io.out(entries.length === 0 ? '(no names)' : entries.map(([name, e]) => `${name}\t${e.kind}\t${e.id}`).join('\n'));
      return EXIT.ok;
    },
  );

export const nameCommand = (session: Session) =>
  verb(
    session,
    'name',
    'give a token, module or principal a pet name',
    (c) =>
      c
        .argument('<pet>', 'the name')
        .argument('<id>', 'a token or module CID, a did:key, a grid:// URL, or another pet name')
        .option('--force', 'take the name even if it names something else'),
    async (inv, [pet, id], opts) => {
      const petName = pet as string;
      const idText = id as string;
      const names = await PetNames.open(homePaths(inv.home).names);
      const target = idText.startsWith('grid://') ? resolveTarget(idText, names) : undefined;
      // A delegated token's chain is kept in the home, so the pet name alone is enough to call it.
      if (target?.chain) await withHome(inv, (home) => home.importChain(target.token, target.chain!));
      const entry = await setName(names, petName, target?.token ?? resolveId(idText, names), opts.force === true);
      inv.io.out(inv.json ? toJsonText({ name: petName, ...entry }) : `${petName} = ${entry.kind} ${entry.id}`);
      return EXIT.ok;
    },
  );
