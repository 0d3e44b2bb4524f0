/** `grid issue`: make a closure over a module. */
import { quote } from '../../interface/ids.js';
import { parseJsonArg, toJsonText, UsageError } from '../format.js';
import { withHome } from '../home-ops.js';
import { EXIT, text, verb, type Session } from '../invocation.js';
import { resolveModule, setName } from '../resolve.js';

export const issueCommand = (session: Session) =>
  verb(
    session,
    'issue',
    'make a closure over a module (a CID, a file or a pet name); print its token',
    (c) =>
      c
        .argument('<module>', 'a module CID, file or pet name')
        .requiredOption('--export <name>', 'the export the closure calls')
        .option('--env <json>', 'the closure\'s environment, a JSON object (links as {"/": CID})')
        .option('--name <pet>', 'give the token a pet name')
        .option('--force', 'take the pet name even if it names something else')
        .option('--time-limit <ms>', 'how long a call may run')
        .option('--replicable', 'other nodes may fetch and run the closure'),
    async (inv, [moduleRef], opts) => {
      const envText = text(opts.env);
      const env = envText === undefined ? {} : parseJsonArg(envText, '--env');
      const limit = text(opts.timeLimit);
      if (limit !== undefined && !(Number.isSafeInteger(Number(limit)) && Number(limit) > 0)) {
        throw new UsageError(`--time-limit takes a positive whole number of milliseconds (got ${quote(limit)})`);
      }
      return withHome(inv, async (home, names) => {
        const code = await resolveModule(home, names, moduleRef as string);
        const token = await home.issue({
          code,
          export: opts.export as string,
          env,
          ...(limit === undefined ? {} : { timeLimitMs: Number(limit) }),
          ...(opts.replicable ? { replicable: true } : {}),
        });
        const name = text(opts.name);
        if (name !== undefined) await setName(names, name, token, opts.force === true);
        inv.io.out(inv.json ? toJsonText({ token, code }) : token);
        return EXIT.ok;
      }, { analyzes: true });
    },
  );
