/** `grid delegate`: wrap a token in a screener for other principals, with policies. */
import { quote } from '../../caps/ids.js';
import { formatGridUrl } from '../../net/grid-url.js';
import { parseDuration, parseJsonArg, toJsonText, UsageError } from '../format.js';
import { withHome } from '../home-ops.js';
import { EXIT, list, repeatable, text, verb, type Opts, type Session } from '../invocation.js';
import { resolveModule, resolvePrincipal, resolveTarget } from '../resolve.js';

const RATE_PERIODS: Readonly<Record<string, number>> = { s: 1000, sec: 1000, second: 1000, min: 60_000, minute: 60_000, h: 3_600_000, hour: 3_600_000, d: 86_400_000, day: 86_400_000 };

/** `--expires` takes a duration from now (2h) or a date (2026-12-01T00:00Z). */
const parseExpiry = (expires: string): number => {
  if (/^\d+(ms|s|m|h|d)$/.test(expires)) return Date.now() + parseDuration(expires, '--expires');
  const at = Date.parse(expires);
  if (!Number.isFinite(at)) throw new UsageError(`--expires takes a duration such as 2h or a date such as 2026-12-01T00:00Z (got ${quote(expires)})`);
  return at;
};

const positiveInteger = (digits: string, what: string): number => {
  const n = Number(digits);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${what} takes a positive whole number (got ${quote(digits)})`);
  return n;
};

/** The policies `grid delegate`'s options ask for, in the order they screen: cheap refusals first, approvals and audit last. */
const delegationPolicies = async (
  opts: Opts,
  principal: (name: string) => string,
  moduleOf: (ref: string) => Promise<string>,
): Promise<Array<{ module: string; settings: unknown }>> => {
  const policies: Array<{ module: string; settings: unknown }> = [];
  const expires = text(opts.expires);
  if (expires !== undefined) policies.push({ module: 'expiry', settings: { until: parseExpiry(expires) } });
  const pattern = text(opts.pattern);
  if (pattern !== undefined) policies.push({ module: 'pattern', settings: { args: parseJsonArg(pattern, '--pattern') } });
  const rate = text(opts.rate);
  const uses = text(opts.uses);
  if (rate !== undefined || uses !== undefined) {
    const settings: Record<string, unknown> = {};
    if (rate !== undefined) {
      const match = /^(\d+)\/(\w+)$/.exec(rate);
      const periodMs = match ? RATE_PERIODS[match[2]!] : undefined;
      if (!match || periodMs === undefined) throw new UsageError(`--rate takes N/PERIOD, PERIOD one of s, min, h, d (got ${quote(rate)})`);
      settings.rate = { n: positiveInteger(match[1]!, '--rate'), periodMs, per: match[2] };
    }
    if (uses !== undefined) settings.uses = positiveInteger(uses, '--uses');
    policies.push({ module: 'rate', settings });
  }
  const approvers = list(opts.approver).map(principal);
  const approvals = text(opts.approvals);
  if (approvals !== undefined || approvers.length > 0) {
    const k = positiveInteger(approvals ?? '', '--approvals');
    if (approvers.length < k) throw new UsageError(`--approvals ${k} needs at least ${k} --approver principals (got ${approvers.length})`);
    policies.push({ module: 'approval', settings: { k, of: approvers } });
  }
  for (const spec of list(opts.policy)) {
    const at = spec.indexOf('=');
    const ref = at < 0 ? spec : spec.slice(0, at);
    policies.push({ module: await moduleOf(ref), settings: at < 0 ? null : parseJsonArg(spec.slice(at + 1), `--policy ${ref}`) });
  }
  if (opts.audit) policies.push({ module: 'audit', settings: {} });
  return policies;
};

export const delegateCommand = (session: Session) =>
  verb(
    session,
    'delegate',
    'wrap TOKEN in a screener for PRINCIPAL(s) with these policies; print the new token as a grid URL carrying its chain',
    (c) =>
      c
        .argument('<token>', 'a token CID, pet name or grid:// URL')
        .option('--to <principal>', 'who may call the new token: a did:key or pet name (repeatable)', repeatable)
        .option('--expires <when>', 'refuse calls after a duration from now (2h) or a date (2026-12-01T00:00Z)')
        .option('--rate <n/period>', 'at most N calls per PERIOD (s, min, h, d)')
        .option('--uses <n>', 'at most N calls in all')
        .option('--pattern <json>', 'the arguments calls must match (see below)')
        .option('--approvals <k>', 'each call waits for K approvals')
        .option('--approver <principal>', 'who may approve (repeatable)', repeatable)
        .option('--audit', 'record every call\'s arguments')
        .option('--policy <module[=json]>', 'another policy module, with its settings (repeatable)', repeatable)
        .option('--name <pet>', 'give the new token a pet name'),
    async (inv, [tokenRef], opts) =>
      withHome(inv, async (home, names) => {
        const target = resolveTarget(tokenRef as string, names);
        const principal = (name: string) => resolvePrincipal(name, names);
        const to = list(opts.to).map(principal);
        if (to.length === 0) throw new UsageError('delegate needs --to PRINCIPAL (one or more)');
        if (target.chain) await home.importChain(target.token, target.chain);
        const policies = await delegationPolicies(opts, principal, (ref) => resolveModule(home, names, ref));
        const token = await home.delegate({ token: target.token, to, policies });
        const chain = await home.chainBlocks(token);
        // Calls go where the delegated token's calls went: its URL's node, else this home's own.
        const url = formatGridUrl({ token, via: target.via ?? home.nodeUrl, chain });
        const name = text(opts.name);
        if (name !== undefined) await names.set(name, token);
        inv.io.out(inv.json ? toJsonText({ token, url, to, policies }) : url);
        return EXIT.ok;
      }),
  );
