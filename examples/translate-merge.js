// A merge step that asks another token: the place where a language model (or
// any outside service, or a person's inbox) plugs into a document's merge
// cascade. It passes base, ours and theirs to the closure in env.oracle and
// takes its answer as the merged value, if it is grid data of the same type
// as ours (a string for a string, a record for a record, …); otherwise, or if
// the oracle refuses or fails, this step refuses with the reason and the
// cascade goes on to its next step (or to a person).
//
//   grid publish examples/translate-merge.js
//   grid issue examples/translate-merge.js --export merge --env '{"oracle":{"/":"<oracle token>"}}'
//   grid doc create examples/text.js --reducer update --merge text --merge <the token above> --name notes
//
// The oracle is called as `oracle(ctx, { base, ours, theirs })` and answers
// the merged value. Whoever holds this step's token can make it call the
// oracle, so give the step to documents, not to strangers, and attenuate the
// oracle's token (a rate, an expiry) before putting it in the env.

const kindOf = (value) => {
  if (value === null) return 'null';
  if (typeof value === 'bigint') return 'number'; // integers past 2^53 decode as bigints
  if (typeof value !== 'object') return typeof value; // string, number, boolean
  if (Array.isArray(value)) return 'list';
  if (ArrayBuffer.isView(value)) return 'bytes';
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === '/' && typeof value['/'] === 'string' ? 'link' : 'record';
};

const NAMES = { null: 'null', string: 'a string', number: 'a number', boolean: 'a boolean', list: 'a list', bytes: 'bytes', link: 'a link', record: 'a record' };

const isToken = (value) => (typeof value === 'string' && value.length > 0) || kindOf(value) === 'link';

export const merge = async (ctx, base, ours, theirs) => {
  const oracle = ctx.env === null || typeof ctx.env !== 'object' ? undefined : ctx.env.oracle;
  if (!isToken(oracle)) ctx.revoke('translate merge: no oracle token in env.oracle (issue this step with --env \'{"oracle":{"/":"<token>"}}\')');
  let answer;
  try {
    answer = await ctx.call(oracle, { base, ours, theirs });
  } catch (error) {
    const reason = String(error?.message ?? error).replace(/^revoked: /, '');
    return ctx.revoke(`translate merge: the oracle could not merge: ${reason}`);
  }
  const want = kindOf(ours);
  const got = kindOf(answer);
  if (got !== want) ctx.revoke(`translate merge: the oracle answered ${NAMES[got]} where ours is ${NAMES[want]}`);
  return answer;
};
