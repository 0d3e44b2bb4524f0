/**
 * Expiry: calls are refused from the moment `until` (ms since the epoch) is
 * reached. `grid delegate --expires 2h` or `--expires 2026-12-01T00:00Z`.
 */
export const screen = (ctx, { now }) =>
  now < ctx.env.until ? { forward: true } : { refuse: `expired at ${new Date(ctx.env.until).toISOString()}` };
