// A greeting: the closure's env supplies the greeting, the caller the name.
// Pure (it reads nothing but env and arguments), so repeated calls are
// answered from the cache.
export const greet = (ctx, name) => {
  if (typeof name !== 'string') ctx.revoke('greet expects a name (a string)');
  return `${ctx.env.greeting}, ${name}`;
};
