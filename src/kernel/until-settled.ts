/**
 * Following a further promise that is still pending (a call waiting for
 * approvals), the same way in the kernel and in the CLI.
 */
import type { Token } from '../interface/ids.js';
import type { Outcome } from '../interface/outcome.js';

/** Least time between two calls on a further promise that is still waiting. */
const FOLLOW_FLOOR_MS = 250;

/**
 * Follow a further promise that is still pending by calling it again (each
 * call waits up to a call limit where the promise lives) until it settles or
 * `waitMs` passes; then the further promise is the answer. A call still out
 * then is left to end on its own.
 */
export const untilSettled = async (
  first: Outcome,
  callAgain: (token: Token) => Promise<Outcome>,
  waitMs: number,
  setTimer: (ms: number, callback: () => void) => () => void,
  clock: () => number,
): Promise<Outcome> => {
  let outcome = first;
  if (outcome.status !== 'promised') return outcome;
  let expire!: () => void;
  const expired = new Promise<undefined>((resolve) => (expire = () => resolve(undefined)));
  const cancel = setTimer(Math.max(0, waitMs), expire);
  try {
    while (outcome.status === 'promised') {
      const asked = clock();
      const next: Outcome | undefined = await Promise.race([callAgain(outcome.token), expired]);
      if (next === undefined) break;
      outcome = next;
      // A node that answers "still waiting" at once (a very short call limit) is not asked again in a tight loop.
      const early = outcome.status === 'promised' ? FOLLOW_FLOOR_MS - (clock() - asked) : 0;
      if (early > 0 && (await Promise.race([new Promise<true>((resolve) => setTimer(early, () => resolve(true))), expired])) === undefined) break;
    }
  } finally {
    cancel();
  }
  return outcome;
};
