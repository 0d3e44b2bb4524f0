/** `grid delegate`: wrap a token in a screener for other principals, with policies. */
import { quote } from '../../interface/ids.js';
import { formatGridUrl } from '../../net/grid-url.js';
import { parseDuration, parseJsonArg, toJsonText, UsageError } from '../format.js';
import { withHome } from '../home-ops.js';
import { EXIT, list, repeatable, text, verb, type Opts, type Session } from '../invocation.js';
import { resolveModule, resolvePrincipal, resolveTarget, setName } from '../resolve.js';

const RATE_PERIODS: Readonly<Record<string, number>> = { s: 1000, sec: 1000, second: 1000, min: 60_000, minute: 60_000, h: 3_600_000, hour: 3_600_000, d: 86_400_000, day: 86_400_000 };

/** `--expires` takes a duration from now (2h) or a date (2026-12-01T00:00Z). */
const parseExpiry = (expires: string): number => {
  if (/^\d+(ms|s|m|h|d)$/.test(expires)) return Date.now() + parseDuration(expires, '--expires');
  const at = Date.parse(expires);
  if (!Number.isFinite(at)) throw new UsageError(`--expires takes a duration such as 2h or a date such as 2026-12-01T00:00Z (got ${quote(expires)})`);
  if (at <= Date.now()) throw new UsageError(`--expires ${quote(expires)} is in the past (${new Date(at).toISOString()}): the delegation could never be called`, 'ERR_IN_THE_PAST');
  return at;
};

const positiveInteger = (digits: string, what: string): number => {
  const n = Number(digits);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${what} takes a positive whole number (got ${quote(digits)})`);
  return n;
};

/** The policies shipped with every node, named as themselves in `--policy`. */
const SHIPPED_POLICIES = ['approval', 'audit', 'expiry', 'pattern', 'rate', 'reputation'];

const PATTERN_TYPES = ['string', 'number', 'integer', 'boolean', 'null', 'bytes', 'link', 'list', 'record'];
const PATTERN_OPERATORS = ['$any', '$type', '$min', '$max', '$maxLength', '$oneOf'];

/** The pattern language, for `grid delegate --help` (policies/pattern.js is its reference). */
const PATTERN_HELP = `
--pattern JSON: the call's arguments, a list, must match the pattern:
  "text", 3, true, null      that value exactly
  {"$any": true}             anything
  {"$type": "string"}        one of: ${PATTERN_TYPES.join(', ')}
  {"$min": 0, "$max": 10}    a number in that range (either bound may be left out)
  {"$maxLength": 64}         a string or list no longer than that
  {"$oneOf": [p, …]}         any one of the patterns
  [p, …]                     a list of exactly that many items, each matching its pattern
  {"key": p, …}              a record with exactly those keys, each matching
Operators combine in one object ({"$type": "integer", "$min": 1}). Examples:
  grid delegate hi --to bob --pattern '[{"$type": "string", "$maxLength": 20}]'
  grid delegate add --to bob --pattern '[{"$type": "integer", "$min": 0}, {"$oneOf": [1, 2, 3]}]'`;

/** Check a pattern when it is given, so a mistake is one line now rather than every call refused later. */
const checkPattern = (pattern: unknown, where: string): void => {
  const bad = (why: string) => new UsageError(`--pattern: ${where} ${why}`, 'ERR_BAD_PATTERN');
  if (Array.isArray(pattern)) return pattern.forEach((item, i) => checkPattern(item, `${where}[${i}]`));
  if (pattern === null || typeof pattern !== 'object' || pattern instanceof Uint8Array) return;
  const record = pattern as Record<string, unknown>;
  const keys = Object.keys(record);
  const operators = keys.filter((key) => key.startsWith('$'));
  if (operators.length === 0) return keys.forEach((key) => checkPattern(record[key], `${where}.${key}`));
  const unknown = operators.find((key) => !PATTERN_OPERATORS.includes(key));
  if (unknown !== undefined) throw bad(`uses an unknown operator ${quote(unknown)} (the operators are ${PATTERN_OPERATORS.join(', ')})`);
  const plain = keys.find((key) => !key.startsWith('$'));
  if (plain !== undefined) throw bad(`mixes operators with the field ${quote(plain)} (put the record's fields in a record of their own)`);
  if ('$type' in record && !PATTERN_TYPES.includes(record.$type as string)) throw bad(`has an unknown $type ${quote(record.$type)} (the types are ${PATTERN_TYPES.join(', ')})`);
  if ('$any' in record && record.$any !== true) throw bad(`has $any ${quote(record.$any)}: write {"$any": true}`);
  for (const bound of ['$min', '$max'] as const) if (bound in record && typeof record[bound] !== 'number') throw bad(`has ${bound} ${quote(record[bound])}: a number`);
  if ('$maxLength' in record && !(Number.isSafeInteger(record.$maxLength) && (record.$maxLength as number) >= 0)) throw bad(`has $maxLength ${quote(record.$maxLength)}: a whole number`);
  if ('$oneOf' in record) {
    if (!Array.isArray(record.$oneOf) || record.$oneOf.length === 0) throw bad('has a $oneOf that is not a list of patterns');
    record.$oneOf.forEach((option, i) => checkPattern(option, `${where}.$oneOf[${i}]`));
  }
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
  if (pattern !== undefined) {
    const args = parseJsonArg(pattern, '--pattern');
    // The pattern matches the list of arguments: a list, or operators a list can meet.
    const isOperator = args !== null && typeof args === 'object' && Object.keys(args).some((key) => key.startsWith('$'));
    const meetsList = (record: Record<string, unknown>) =>
      Object.keys(record).every((key) => ['$any', '$oneOf', '$maxLength', '$type'].includes(key) || !key.startsWith('$')) && (record.$type === undefined || record.$type === 'list');
    if (!Array.isArray(args) && !(isOperator && meetsList(args as Record<string, unknown>))) throw new UsageError(`--pattern matches the list of arguments: write a list, e.g. '[{"$type": "string"}]' (got ${quote(pattern)})`, 'ERR_BAD_PATTERN');
    checkPattern(args, 'arguments');
    policies.push({ module: 'pattern', settings: { args } });
  }
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
  if (approvals === undefined && approvers.length > 0) throw new UsageError('--approver needs --approvals K: how many of the approvers must approve each call');
  if (approvals !== undefined) {
    const k = positiveInteger(approvals, '--approvals');
    const distinct = new Set(approvers).size;
    if (distinct < k) throw new UsageError(`--approvals ${k} needs at least ${k} --approver principals (got ${distinct}${distinct < approvers.length ? ' distinct' : ''})`);
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
        .option('--name <pet>', 'give the new token a pet name')
        .option('--force', 'take the pet name even if it names something else')
        .addHelpText('after', PATTERN_HELP),
    async (inv, [tokenRef], opts) =>
      withHome(inv, async (home, names) => {
        const target = resolveTarget(tokenRef as string, names);
        const principal = (name: string) => resolvePrincipal(name, names);
        const to = list(opts.to).map(principal);
        if (to.length === 0) throw new UsageError('delegate needs --to PRINCIPAL (one or more)');
        if (target.chain) await home.importChain(target.token, target.chain);
        const policies = await delegationPolicies(opts, principal, (ref) => resolveModule(home, names, ref, SHIPPED_POLICIES));
        const token = await home.delegate({ token: target.token, to, policies });
        const chain = await home.chainBlocks(token);
        // Calls go where the delegated token's calls went: its URL's node, else this home's own.
        const url = formatGridUrl({ token, via: target.via ?? home.nodeUrl, chain });
        const name = text(opts.name);
        if (name !== undefined) await setName(names, name, token, opts.force === true);
        inv.io.out(inv.json ? toJsonText({ token, url, to, policies }) : url);
        return EXIT.ok;
      }),
  );
