/** `grid call`: call a token with JSON arguments. */
import { quote } from '../../caps/ids.js';
import { homePaths } from '../../home/home.js';
import { PetNames } from '../../home/names.js';
import { DEFAULT_LIMITS, REMOTE_GRACE_MS } from '../../kernel/kernel.js';
import { parseJsonArg, UsageError } from '../format.js';
import { connectAsHome, withHome, type HomeOps } from '../home-ops.js';
import { printOutcome, progressOf, text, verb, type Session } from '../invocation.js';
import { whileWaiting } from '../progress.js';
import { resolveTarget } from '../resolve.js';

export const callCommand = (session: Session) =>
  verb(
    session,
    'call',
    'call a token with JSON arguments; print the value (exit 3 if revoked, 4 if timed out)',
    (c) =>
      c
        .argument('<token>', 'a token CID, pet name or grid:// URL')
        .argument('[args...]', 'JSON arguments: 42, -6, \'"Ada"\', \'{"a": 1}\'')
        .option('--no-follow', 'print a further promise\'s token instead of waiting for it')
        .option('--via <url>', 'call through the node at this ws:// URL')
        .option('--timeout <ms>', 'give up after this many milliseconds'),
    async (inv, [tokenRef, argTexts], opts) => {
      const args = (argTexts as string[]).map((argText, index) => parseJsonArg(argText, `argument ${index + 1}`));
      const timeoutText = text(opts.timeout);
      const timeout = timeoutText === undefined ? undefined : Number(timeoutText);
      if (timeout !== undefined && !(Number.isInteger(timeout) && timeout > 0)) {
        throw new UsageError(`--timeout must be a positive whole number of milliseconds (got ${quote(timeoutText)})`);
      }
      const paths = homePaths(inv.home);
      const follow = opts.follow !== false;
      // A grid URL carries where to reach its token, and a delegated token's chain.
      const target = resolveTarget(tokenRef as string, await PetNames.open(paths.names));
      const chain = target.chain ? { chain: target.chain } : {};
      const via = text(opts.via) ?? target.via;
      if (via) {
        const remote = await connectAsHome(inv, via);
        try {
          const timeoutMs = (timeout ?? DEFAULT_LIMITS.callTimeoutMs) + REMOTE_GRACE_MS;
          return printOutcome(inv, await whileWaiting(progressOf(inv), `waiting for ${via}`, remote.call(target.token, args, { follow, timeoutMs, ...chain })));
        } finally {
          remote.close();
        }
      }
      const where = (home: HomeOps) => (home.nodeUrl ? `waiting for this home's node (${home.nodeUrl})` : 'waiting for the answer');
      return withHome(inv, async (home) => printOutcome(inv, await whileWaiting(progressOf(inv), where(home), home.call(target.token, args, { follow, ...chain }))), {
        limits: timeout === undefined ? {} : { callTimeoutMs: timeout },
      });
    },
  );
