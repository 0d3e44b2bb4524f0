// Revokes on bad input: a promise to add two small integers, broken with a
// reason the caller can read when the arguments are not that.
const isSmallInt = (x) => Number.isSafeInteger(x) && Math.abs(x) < 2 ** 31;

export const add = (ctx, a, b) => {
  if (!isSmallInt(a) || !isSmallInt(b)) ctx.revoke(`add expects two small integers, got ${typeof a} and ${typeof b}`);
  return a + b;
};
