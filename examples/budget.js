// A team budget: a document whose value is { total, lines: { name: amount } }.
// Edits of different lines merge with the shipped `json` step; two people
// setting the total (or one line) to different amounts at once is a conflict
// the merge refuses, naming the path (/total): it goes to whoever holds the
// document's settle token, who picks one head or writes the value.
//
//   grid publish examples/budget.js
//   grid doc create examples/budget.js --reducer update --merge json --name budget
//   grid doc apply budget '{"set":12000}'                       # the total
//   grid doc apply budget '{"line":"travel","amount":3000}'     # one line
//   grid doc conflicts                                           # after concurrent totals
//   grid doc resolve budget <conflict> --pick <head>
//
// Amounts are non-negative finite numbers; anything else is refused. The
// reducer does not check that the lines fit the total: a merge of two edits
// that each fit could exceed it, so that is for the team to see, not a rule.

const MAX_LINES = 500;
const MAX_NAME = 100; // UTF-16 code units

export const init = () => ({ total: 0, lines: {} });

const show = (value) => {
  if (typeof value === 'string') {
    const cut = value.length > 60 ? `${value.slice(0, 60)}…` : value;
    return JSON.stringify(cut).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
  }
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return 'a list';
  if (ArrayBuffer.isView(value)) return 'bytes';
  return `a record with keys ${Object.keys(value).slice(0, 5).map(show).join(', ') || '(none)'}`;
};

const amountOf = (ctx, what, amount) => {
  if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) ctx.revoke(`budget: ${what} is a non-negative finite number (got ${show(amount)})`);
  return amount === 0 ? 0 : amount; // -0 is stored as 0
};

export const update = (ctx, state, change) => {
  if (state === null || typeof state !== 'object' || Array.isArray(state) || typeof state.total !== 'number' || state.lines === null || typeof state.lines !== 'object' || Array.isArray(state.lines)) {
    ctx.revoke(`budget: the state is not {"total": amount, "lines": {...}} (got ${show(state)})`);
  }
  const SHAPE = 'a change is {"set": amount} or {"line": name, "amount": amount}';
  if (change === null || typeof change !== 'object' || Array.isArray(change)) ctx.revoke(`budget: ${SHAPE} (got ${show(change)})`);
  const keys = Object.keys(change).sort().join(',');
  if (keys === 'set') return { total: amountOf(ctx, 'the total', change.set), lines: state.lines };
  if (keys !== 'amount,line') ctx.revoke(`budget: ${SHAPE} (got ${show(change)})`);
  const { line } = change;
  if (typeof line !== 'string' || line.length === 0) ctx.revoke(`budget: a line's name is a non-empty string (got ${show(line)})`);
  if (line.length > MAX_NAME) ctx.revoke(`budget: a line's name is at most ${MAX_NAME} characters (got ${line.length})`);
  const amount = amountOf(ctx, `the amount of line ${show(line)}`, change.amount);
  const names = Object.keys(state.lines);
  if (!Object.hasOwn(state.lines, line) && names.length >= MAX_LINES) ctx.revoke(`budget: the budget holds ${MAX_LINES} lines, its limit`);
  // fromEntries defines every key as data: a line named "__proto__" is a line.
  const lines = Object.fromEntries([...names.filter((name) => name !== line).map((name) => [name, state.lines[name]]), [line, amount]]);
  return { total: state.total, lines };
};
