/**
 * Rate limit and total quota: at most `rate.n` calls in any window of
 * `rate.periodMs` (a sliding window over the times of the calls let
 * through), and at most `uses` calls in all. Either may be left out.
 * `grid delegate --rate 10/min --uses 100`.
 *
 * A clock that steps back keeps the calls it has seen counted: the window
 * never reopens early.
 */
export const screen = (ctx, { now, state }) => {
  const { rate, uses } = ctx.env;
  const used = state?.used ?? 0;
  let recent = state?.recent ?? [];
  if (uses !== undefined && used >= uses) return { refuse: `quota of ${uses} calls used up` };
  if (rate !== undefined) {
    recent = recent.filter((at) => at > now - rate.periodMs);
    if (recent.length >= rate.n) return { refuse: `rate limit: at most ${rate.n} calls per ${rate.per}`, state: { used, recent } };
    recent = [...recent, now];
  }
  return { forward: true, state: { used: used + 1, recent } };
};
