/** `grid inspect`: decode bytes — a message, a block, a journal, a module — readably. */
import { existsSync } from 'node:fs';
import { parseCid } from '../../caps/ids.js';
import { homePaths } from '../../home/home.js';
import { openFsBlockStore } from '../../store/index.js';
import { toJsonText } from '../format.js';
import { inspectBytes } from '../inspect.js';
import { EXIT, verb, type Session } from '../invocation.js';
import { isCid, readInput } from '../resolve.js';

export const inspectCommand = (session: Session) =>
  verb(
    session,
    'inspect',
    'decode a grid message or block and print it readably',
    (c) => c.argument('[source]', 'hex bytes, a file, a CID in the home\'s store, or - for stdin', '-'),
    async (inv, [source]) => {
      const from = source as string;
      let bytes: Uint8Array;
      if (from === '-') bytes = await inv.io.stdin();
      else if (/^([0-9a-f]{2})+$/i.test(from) && !existsSync(from)) bytes = new Uint8Array(Buffer.from(from, 'hex'));
      else if (!existsSync(from) && isCid(from)) {
        // Blocks are immutable and every read is verified: no need for the home's lock.
        bytes = await openFsBlockStore(homePaths(inv.home).blocks).get(parseCid(from));
      } else bytes = await readInput(from);
      const report = inspectBytes(bytes);
      inv.io.out(inv.json ? toJsonText(report) : report.text);
      return EXIT.ok;
    },
  );
