/** `grid inspect`: decode bytes — a message, a block, a journal, a module — readably. */
import { existsSync } from 'node:fs';
import { parseCid } from '../../interface/ids.js';
import { homePaths } from '../../home/home.js';
import { PetNames } from '../../home/names.js';
import { openFsBlockStore } from '../../store/index.js';
import { quote } from '../../interface/ids.js';
import { toJsonText, UsageError } from '../format.js';
import { inspectBytes } from '../inspect.js';
import { EXIT, verb, type Session } from '../invocation.js';
import { isCid, isPathLike, readInput, resolveId } from '../resolve.js';

export const inspectCommand = (session: Session) =>
  verb(
    session,
    'inspect',
    'decode a grid message or block and print it readably',
    (c) => c.argument('[source]', 'hex bytes, a file, a CID or pet name in the home\'s store, or - for stdin', '-'),
    async (inv, [source]) => {
      const from = source as string;
      let bytes: Uint8Array;
      if (from === '-') bytes = await inv.io.stdin();
      else if (existsSync(from) || isPathLike(from)) bytes = await readInput(from);
      else {
        // A pet name stands for its CID; hex that is not a name is bytes.
        const names = await PetNames.open(homePaths(inv.home).names);
        const id = names.get(from) || !/^([0-9a-f]{2})+$/i.test(from) ? resolveId(from, names) : undefined;
        if (id === undefined) bytes = new Uint8Array(Buffer.from(from, 'hex'));
        // Blocks are immutable and every read is verified: no need for the home's lock.
        else if (isCid(id)) bytes = await openFsBlockStore(homePaths(inv.home).blocks).get(parseCid(id));
        else if (names.get(from)) throw new UsageError(`${quote(from)} names a ${names.get(from)!.kind}, not a block`);
        else bytes = await readInput(from);
      }
      const report = inspectBytes(bytes);
      inv.io.out(inv.json ? toJsonText(report) : report.text);
      return EXIT.ok;
    },
  );
