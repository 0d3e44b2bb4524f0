// examples/my-policy.js: at most `limit` calls per caller
export const screen = (ctx, { state }) => {
  const used = state?.[ctx.caller] ?? 0;
  if (used >= ctx.env.limit) return { refuse: `${ctx.caller} used ${used} calls` };
  return { forward: true, state: { ...state, [ctx.caller]: used + 1 } };
};
