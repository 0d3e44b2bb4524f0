// A closure that calls another token it holds in its env: the only way to
// reach another closure is to have been given its token.
//   grid issue examples/relay.js --export relay --env '{"target":{"/":"<token>"}}'
export const relay = async (ctx, ...args) => {
  const answer = await ctx.call(ctx.env.target, ...args);
  return { relayed: answer };
};
