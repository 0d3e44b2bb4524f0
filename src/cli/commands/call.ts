/** `grid call`: call a token with JSON arguments. */
import { CANCELLED } from '../../interface/cancel.js';
import { quote } from '../../interface/ids.js';
import { homePaths } from '../../home/home.js';
import { PetNames } from '../../home/names.js';
import { DEFAULT_LIMITS, REMOTE_GRACE_MS, untilSettled, type Outcome } from '../../kernel/kernel.js';
import type { Token } from '../../interface/ids.js';
import { formatGridUrl } from '../../net/grid-url.js';
import { parseJsonArg, toJsonText, UsageError } from '../format.js';
import { connectAsHome, withHome, type HomeOps } from '../home-ops.js';
import { EXIT, printOutcome, progressOf, text, verb, type Invocation, type Session, viaUrl } from '../invocation.js';
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
  if (!(cancel.signal.aborted && outcome.status === 'revoked' && outcome.code === 'cancelled')) return print(outcome);
  if (inv.json) inv.io.out(toJsonText(outcome));
  else inv.io.err(`grid: call cancelled (Ctrl-C): it ended revoked: ${CANCELLED}`);
  return EXIT.interrupted;
};

/** How long `grid call` follows a further promise that is still pending (waiting for approvals) without `--timeout`. */
export const FOLLOW_WAIT_MS = 5 * 60_000;

/**
 * With `follow`: a further promise still pending after the first call
 * (waiting for approvals) is called again where it lives, each call waiting
 * up to that node's limit, until it settles or `waitMs` from `started` is over.
 */
const following = async (first: Outcome, callAgain: (token: Token) => Promise<Outcome>, started: number, waitMs: number): Promise<Outcome> =>
  untilSettled(first, callAgain, waitMs - (Date.now() - started), (ms, callback) => {
    const timer = setTimeout(callback, ms);
    return () => clearTimeout(timer);
  }, Date.now);

/**
 * Print an outcome; a further promise the call followed that is still
 * pending exits 4 saying so, and one not followed (`--no-follow`) prints
 * `promised: …`. Either names it as a grid URL when it lives on a node
 * (`via`), so that calling it again answers its real state.
 */
const printFollowed = (inv: Invocation, follow: boolean, via: string | undefined, started: number) => (outcome: Outcome): number => {
  if (outcome.status !== 'promised') return printOutcome(inv, outcome);
  const where = via ? formatGridUrl({ token: outcome.token, via }) : outcome.token;
  if (!follow) {
    if (inv.json) return printOutcome(inv, outcome);
    inv.io.out(`promised: ${where}`);
    return EXIT.ok;
  }
  if (inv.json) inv.io.out(JSON.stringify({ status: 'promised', token: outcome.token, ...(via ? { url: where } : {}), pending: true }));
  else inv.io.err(`still pending after ${((Date.now() - started) / 1000).toFixed(1)} s (call it again for its state): ${where}`);
  return EXIT.unreachable;
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
        .option('--via <url>', 'call through the node at this ws:// URL', viaUrl)
        .option('--timeout <ms>', `give up after this many milliseconds (without it, a further promise still pending is followed up to ${FOLLOW_WAIT_MS / 60_000} min)`),
    async (inv, [tokenRef, argTexts], opts) => {
      const args = (argTexts as string[]).map((argText, index) => parseJsonArg(argText, `argument ${index + 1}`));
      const timeoutText = text(opts.timeout);
      const timeout = timeoutText === undefined ? undefined : Number(timeoutText);
      if (timeout !== undefined && !(Number.isInteger(timeout) && timeout > 0)) {
        throw new UsageError(`--timeout must be a positive whole number of milliseconds (got ${quote(timeoutText)})`);
      }
      const started = Date.now();
      const waitMs = timeout ?? FOLLOW_WAIT_MS;
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
          return await cancellable(
            inv,
            (signal) =>
              whileWaiting(
                progressOf(inv),
                `waiting for ${via}`,
                remote.call(target.token, args, { follow, timeoutMs, signal, ...chain }).then((first) =>
                  follow ? following(first, (further) => remote.call(further, [], { follow: true, timeoutMs, signal }), started, waitMs) : first,
                ),
              ),
            printFollowed(inv, follow, via, started),
          );
        } finally {
          remote.close();
        }
      }
      const where = (home: HomeOps) => (home.nodeUrl ? `waiting for this home's node (${home.nodeUrl})` : 'waiting for the answer');
      return withHome(inv, async (home) =>
        cancellable(
          inv,
          (signal) =>
            whileWaiting(
              progressOf(inv),
              where(home),
              home.call(target.token, args, { follow, signal, ...chain }).then((first) =>
                follow ? following(first, (further) => home.call(further, [], { follow: true, signal }), started, waitMs) : first,
              ),
            ),
          printFollowed(inv, follow, home.nodeUrl, started),
        ), {
        // No parser preloaded: a home keeps the analyses of the modules it published (home/analyses.ts).
        limits: timeout === undefined ? {} : { callTimeoutMs: timeout },
      });
    },
  );
