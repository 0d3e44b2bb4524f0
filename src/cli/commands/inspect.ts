/** `grid inspect`: decode bytes — a message, a block, a journal, a module — readably. */
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { listSegments } from '../../journal/segments.js';
import { concatBytes } from '../../identity/identity.js';
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
      else if (existsSync(from) && statSync(from).isDirectory()) bytes = await journalDirectory(from);
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

/** A home's journal directory (journal/segments.ts): its segments' bytes, one after another (from where the kept journal starts). */
const journalDirectory = async (dir: string): Promise<Uint8Array> => {
  const segments = await listSegments(dir).catch((error: Error) => {
    throw new UsageError(`cannot read ${dir}: ${error.message}`, 'ERR_READ');
  });
  if (segments.length === 0) throw new UsageError(`${dir} is a directory, not a journal's (it holds no segment)`, 'ERR_READ');
  return concatBytes(...(await Promise.all(segments.map(async (segment) => new Uint8Array(await readFile(segment.path))))));
};
