// A further promise: `order` does not answer now; it issues a new closure
// that will answer when called, and returns that token. `grid call` follows
// it (unless --no-follow) and prints the final value.
export const order = async (ctx, dish) => ctx.issue({ export: 'serve', env: { dish } });

export const serve = (ctx) => `your ${ctx.env.dish} is ready`;
