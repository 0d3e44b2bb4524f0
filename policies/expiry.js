/**
 * Expiry: calls are refused from the moment `until` (ms since the epoch) is
 * reached. Once it has been seen expired it stays so, even if the clock
 * steps back. `grid delegate --expires 2h` or `--expires 2026-12-01T00:00Z`.
 */
export const screen = (ctx, { now, state }) => {
  if (state?.expired !== true && now < ctx.env.until) return { forward: true };
  const refusal = { refuse: `expired at ${new Date(ctx.env.until).toISOString()}` };
  return state?.expired === true ? refusal : { ...refusal, state: { expired: true } };
};
