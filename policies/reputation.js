/**
 * Reputation threshold: refuse when a principal's record in this node's
 * promise graph is poor — fewer than `min` of its settled promises kept
 * (fulfilled / (fulfilled + broken)) once it has at least `after` settled
 * (default 10: a newcomer is not refused for having no record).
 *
 * `who` says whose record counts: "issuer" (the original closure's issuer,
 * the default), "caller" (the layer's caller), or "arguments" (the issuers
 * of the tokens passed as arguments, those this node knows).
 * `grid delegate --policy reputation='{"who":"arguments","min":0.9}'`.
 */
export const screen = (ctx, { reputation }) => {
  const { who = 'issuer', min, after = 10 } = ctx.env;
  const records = who === 'arguments' ? reputation.arguments : [who === 'caller' ? reputation.caller : reputation.issuer];
  for (const record of records) {
    const settled = record.fulfilled + record.broken;
    const ratio = settled === 0 ? 1 : record.fulfilled / settled;
    if (settled >= after && ratio < min) {
      return { refuse: `${record.issuer} kept ${Math.round(ratio * 100)}% of ${settled} promises (at least ${Math.round(min * 100)}% needed)` };
    }
  }
  return { forward: true };
};
