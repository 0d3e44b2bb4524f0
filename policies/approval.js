/**
 * k-of-n approval: a call waits, as a further promise, until `k` of the
 * principals in `of` have approved it (each by calling that promise's token
 * with "approve"); then it proceeds. It names its approvers, so the node
 * refuses an approval by anyone else (and never lists it); a second approval
 * by the same principal counts once.
 * `grid delegate --approvals 2 --approver P1 --approver P2 --approver P3`.
 */
export const screen = (ctx, { approvals }) => {
  const { k, of } = ctx.env;
  const counted = of.filter((principal) => approvals.includes(principal));
  if (counted.length >= k) return { forward: true };
  return { wait: `waiting for ${k} of ${of.length} approvals (${counted.length} so far)`, approvers: of };
};
