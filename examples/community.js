// A community: a document whose value is { members: [principal…], rules: {…} }.
// Its membership changes are meant to be proposals: with the kernel's
// governance, a change applies only once a majority of the members vote yes
// (the quorum named in `rules`); this reducer only says what a change does.
//
//   grid publish examples/community.js
//   grid doc create examples/community.js --reducer update --merge json --name club \
//     --init '{"members":["did:key:z6Mk…"],"rules":{"quorum":"majority"}}'
//   grid propose club '{"add":"did:key:z6Mk…"}'      # prints the proposal's token
//   grid vote <proposal> yes
//
// Changes: { add: principal } and { remove: principal }, principals being
// did:key strings (base58btc, `did:key:z…`). Adding a member already present,
// removing one who is not, and removing the last member are refused. Members
// are kept sorted, so one set of members is one value whatever the order
// they joined in, and concurrent additions merge with the shipped `json` step.

const MAX_MEMBERS = 500;
const DID_KEY = /^did:key:z[1-9A-HJ-NP-Za-km-z]{1,128}$/;

export const init = () => ({ members: [], rules: { quorum: 'majority' } });

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

export const update = (ctx, state, change) => {
  if (state === null || typeof state !== 'object' || !Array.isArray(state.members)) ctx.revoke(`community: the state is not {"members": [...], "rules": {...}} (got ${show(state)})`);
  const SHAPE = 'a change is {"add": principal} or {"remove": principal}';
  if (change === null || typeof change !== 'object' || Array.isArray(change) || Object.keys(change).length !== 1) ctx.revoke(`community: ${SHAPE} (got ${show(change)})`);
  const [verb] = Object.keys(change);
  if (verb !== 'add' && verb !== 'remove') ctx.revoke(`community: ${SHAPE} (got ${show(change)})`);
  const who = change[verb];
  if (typeof who !== 'string' || !DID_KEY.test(who)) ctx.revoke(`community: a member is a did:key principal ("did:key:z…"), got ${show(who)}`);
  const { members } = state;
  const present = members.includes(who);
  if (verb === 'add') {
    if (present) ctx.revoke(`community: ${show(who)} is a member already`);
    if (members.length >= MAX_MEMBERS) ctx.revoke(`community: the community has ${MAX_MEMBERS} members, its limit`);
    return { ...state, members: [...members, who].sort() };
  }
  if (!present) ctx.revoke(`community: ${show(who)} is not a member`);
  if (members.length === 1) ctx.revoke(`community: ${show(who)} is the last member; a community keeps at least one`);
  return { ...state, members: members.filter((member) => member !== who) };
};
