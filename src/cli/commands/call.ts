/** `grid call`: call a token with JSON arguments. */
import { CANCELLED } from '../../caps/cancel.js';
import { quote } from '../../caps/ids.js';
import { homePaths } from '../../home/home.js';
import { PetNames } from '../../home/names.js';
import { DEFAULT_LIMITS, REMOTE_GRACE_MS, type Outcome } from '../../kernel/kernel.js';
import { parseJsonArg, toJsonText, UsageError } from '../format.js';
import { connectAsHome, withHome, type HomeOps } from '../home-ops.js';
import { EXIT, printOutcome, progressOf, text, verb, type Invocation, type Session } from '../invocation.js';
import { whileWaiting } from '../progress.js';
import { resolveTarget } from '../resolve.js';

/**
 * Make a call that Ctrl-C cancels: the call ends `revoked: cancelled by
 * caller` where it runs (the node is told, its vat stopped) instead of
 * running on to its time limit; the progress line is erased, one line says
 * so, and the exit code is 130. A second Ctrl-C stops waiting at once.
 */
const cancellable = async (inv: Invocation, call: (signal: AbortSignal) => Promise<Outcome>, print = (outcome: Outcome) => printOutcome(inv, outcome)): Promise<number> => {
  const cancel = new AbortController();
  const stopListening = inv.io.onInterrupt?.(() => cancel.abort()) ?? (() => {});
  let outcome: Outcome;
  try {
    outcome = await call(cancel.signal);
  } finally {
    stopListening();
  }
  if (!(cancel.signal.aborted && outcome.status === 'revoked' && outcome.reason === CANCELLED)) return print(outcome);
  if (inv.json) inv.io.out(toJsonText(outcome));
  else inv.io.err(`grid: call cancelled (Ctrl-C): it ended revoked: ${CANCELLED}`);
  return EXIT.interrupted;
};

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
          return await cancellable(inv, (signal) => whileWaiting(progressOf(inv), `waiting for ${via}`, remote.call(target.token, args, { follow, timeoutMs, signal, ...chain })));
        } finally {
          remote.close();
        }
      }
      const where = (home: HomeOps) => (home.nodeUrl ? `waiting for this home's node (${home.nodeUrl})` : 'waiting for the answer');
      return withHome(inv, async (home) => cancellable(inv, (signal) => whileWaiting(progressOf(inv), where(home), home.call(target.token, args, { follow, signal, ...chain }))), {
        limits: timeout === undefined ? {} : { callTimeoutMs: timeout },
      });
    },
  );
