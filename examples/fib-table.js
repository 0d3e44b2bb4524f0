// A JS closure composing a WebAssembly one: the fib token in its env is a
// numeric WASM closure; this one asks it for several values and formats them.
//   fib=$(grid issue examples/wasm/fib.wasm --export fib)
//   grid issue examples/fib-table.js --export table --env "{\"fib\":{\"/\":\"$fib\"}}"
export const table = async (ctx, upTo) => {
  const rows = [];
  for (let n = 0; n <= upTo; n++) rows.push(`fib(${n}) = ${await ctx.call(ctx.env.fib, n)}`);
  return rows.join('\n');
};
