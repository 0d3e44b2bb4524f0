/**
 * `grid`, the command line. The perimeter is established first; every
 * command then opens the home — or, when `grid start` is running a node on
 * it, goes through that node — does one thing, and exits with the code
 * DESIGN.md assigns: 0 fulfilled or done, 1 usage or input error, 3 revoked,
 * 4 unreachable or timed out. Errors are one line on stderr; `--debug` adds
 * the stack.
 */
import '../perimeter/lockdown.js';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { asPrincipal, asToken, parseCid, quote, type ModuleId, type Token } from '../caps/ids.js';
import { moduleKindOf } from '../closures/modules.js';
import { defaultHome, homePaths, NoHomeError } from '../home/home.js';
import { PetNames } from '../home/names.js';
import { announceNode, retractNode, runningNode } from '../home/running-node.js';
import { loadPeers, rememberPeers } from '../home/peers-file.js';
import { loadIdentity } from '../identity/index.js';
import type { RevocationNotice } from '../kernel/revocations.js';
import { entriesAround, renderDot, renderMermaid, renderText, reputation } from '../journal/graph.js';
import { acrossTree, GraphIndex, recordsAcross, renderTree } from '../journal/queries.js';
import type { Entry } from '../journal/journal.js';
import { followJournalFile } from '../journal/fs-file.js';
import { DEFAULT_LIMITS, REMOTE_GRACE_MS, type ChainBlocks, type DelegateSpec, type Forwarder, type IssueSpec, type Kernel, type KernelLimits, type Outcome } from '../kernel/kernel.js';
import { openKernel } from '../kernel/open.js';
import { connectNode, type RemoteNode } from '../net/client.js';
import { startNode } from '../net/node.js';
import { isPeerUrl, redeemInvitation, type Welcome } from '../net/membership.js';
import { formatGridUrl, parseGridUrl, type GridUrl } from '../net/grid-url.js';
import { Invitations } from '../home/invitations.js';
import { openFsBlockStore } from '../store/index.js';
import { runWasiCommand } from '../vat-wasm/wasi.js';
import { parseDuration, parseJsonArg, toJsonText, UsageError } from './format.js';
import { formatBytes, NO_PROGRESS, whileWaiting, type Progress } from './progress.js';
import { inspectBytes } from './inspect.js';
import { startRepl } from '../repl/repl.js';

declare const getStackString: (error: Error) => string;

export const EXIT = { ok: 0, usage: 1, revoked: 3, unreachable: 4 } as const;

interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  stdin: () => Promise<Uint8Array>;
  /** Where long operations show progress (stderr on a terminal); none if absent. */
  progress?: Progress;
}

/** Progress for this invocation: none when the output is JSON for a script. */
const progressOf = (inv: Invocation): Progress => (inv.json ? NO_PROGRESS : inv.io.progress ?? NO_PROGRESS);

interface Invocation {
  readonly home: string;
  /** How long to wait for another process to release the home. */
  readonly lockWaitMs: number | undefined;
  readonly json: boolean;
  readonly values: Record<string, string | boolean | Array<string | boolean> | undefined>;
  readonly positionals: string[];
  readonly io: Io;
}

type Options = NonNullable<ParseArgsConfig['options']>;
interface Command {
  readonly usage: string;
  readonly summary: string;
  readonly options: Options;
  readonly run: (inv: Invocation) => Promise<number>;
}

const GLOBAL_OPTIONS: Options = {
  home: { type: 'string' },
  json: { type: 'boolean' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

/**
 * What a command needs of a home, whether the home's kernel is opened here
 * or a node is already running on it (then the command goes through that
 * node, as the home's own principal, and reads the journal without the lock:
 * it is append-only).
 */
interface HomeOps {
  publish(bytes: Uint8Array): Promise<ModuleId>;
  issue(spec: IssueSpec): Promise<Token>;
  revoke(token: string, reason?: string): Promise<void>;
  call(token: string, args: readonly unknown[], options: { follow?: boolean; chain?: ChainBlocks }): Promise<Outcome>;
  delegate(spec: DelegateSpec): Promise<Token>;
  chainBlocks(token: string): Promise<ChainBlocks | undefined>;
  importChain(token: string, chain: ChainBlocks): Promise<void>;
  entries(): Promise<readonly Entry[]>;
  /** The URL of the node running on this home, if one is. */
  readonly nodeUrl?: string;
  /** A revocation's signed notice, to hand to the node that answers the token. */
  notice(token: string): Promise<RevocationNotice | undefined>;
}

const withHome = async <T>(
  inv: Invocation,
  body: (home: HomeOps, names: PetNames) => Promise<T>,
  options: { limits?: Partial<KernelLimits> } = {},
): Promise<T> => {
  const paths = homePaths(inv.home);
  const node = await runningNode(paths.node);
  if (!node) {
    return withKernel(inv, (kernel, names) =>
      body(
        {
          publish: (bytes) => kernel.publish(bytes),
          issue: (spec) => kernel.issue(spec),
          revoke: (token, reason) => kernel.revoke(token, reason),
          call: (token, args, callOptions) => kernel.call(token, args, callOptions),
          delegate: (spec) => kernel.delegate(spec),
          chainBlocks: (token) => kernel.chainBlocks(token),
          importChain: (token, chain) => kernel.importChain(token, chain),
          notice: async (token) => kernel.revocationNotice(token),
          entries: async () => kernel.journal.entries(),
        },
        names,
      ),
      options,
    );
  }
  const identity = await loadHomeIdentity(paths);
  const follower = followJournalFile(paths.journal, identity.principal);
  return withOwnNode(inv, async (remote) => {
    const ops: HomeOps = {
      publish: (bytes) => remote.publish(bytes),
      issue: (spec) => remote.issue(spec),
      revoke: (token, reason) => remote.revoke(token, reason),
      call: (token, args, callOptions) => remote.call(token, args, { ...callOptions, timeoutMs: (options.limits?.callTimeoutMs ?? DEFAULT_LIMITS.callTimeoutMs) + REMOTE_GRACE_MS }),
      delegate: (spec) => remote.delegate(spec),
      chainBlocks: (token) => remote.chainBlocks(token),
      importChain: (token, chain) => remote.importChain(token, chain),
      notice: (token) => remote.revocationNotice(token),
      nodeUrl: node.url,
      // The node writes the journal; this follows it, reading only what was appended since the last look.
      entries: follower.entries,
    };
    return body(ops, await PetNames.open(paths.names));
  });
};

const loadHomeIdentity = (paths: ReturnType<typeof homePaths>) =>
  loadIdentity(paths.identity).catch(() => {
    throw new NoHomeError(paths.root);
  });

/** Connect to the node at `url` as this home's principal; failing to is an UnreachableError (its message through `explain`). */
const connectAsHome = async (inv: Invocation, url: string, explain = (message: string) => message): Promise<RemoteNode> => {
  const identity = await loadHomeIdentity(homePaths(inv.home));
  return connectNode(url, { identity, random: (n) => new Uint8Array(randomBytes(n)) }).catch((error: Error) => {
    throw new UnreachableError(explain(error.message));
  });
};

/** The nodes `--across` asks: the token URL's node, the home's remembered peers, and `--from`; not this home's own node. */
const nodesToAsk = async (inv: Invocation, via: string | undefined, from: readonly string[], own: string | undefined): Promise<string[]> => {
  for (const url of from) if (!isPeerUrl(url)) throw new UsageError(`--from takes a ws:// or wss:// URL (got ${quote(url)})`);
  // recordsAcross asks each URL once.
  return [...(via ? [via] : []), ...(await loadPeers(homePaths(inv.home).peers)), ...from].filter((url) => url !== own);
};

/** A node's records about `token`, as this home's principal, checked. */
const askRecords = async (inv: Invocation, url: string, token: Token) => {
  const remote = await connectAsHome(inv, url);
  try {
    return await remote.records(token);
  } finally {
    remote.close();
  }
};

/** Connect to the node running on this home, as the home's own principal (its owner). */
const withOwnNode = async <T>(inv: Invocation, body: (remote: RemoteNode) => Promise<T>): Promise<T> => {
  const node = await runningNode(homePaths(inv.home).node);
  if (!node) throw new UsageError('no node is running on this home: run `grid start` on it first');
  const remote = await connectAsHome(inv, node.url);
  try {
    return await body(remote);
  } finally {
    remote.close();
  }
};

/** The home's own kernel, its closures' log lines on stderr. */
const openHomeKernel = (inv: Invocation, options: { create?: boolean; limits?: Partial<KernelLimits>; forward?: Forwarder } = {}) =>
  openKernel({
    home: inv.home,
    create: options.create ?? false,
    lockWaitMs: inv.lockWaitMs,
    limits: options.limits,
    forward: options.forward,
    log: (token, line) => inv.io.err(`[${token.slice(0, 10)}…${token.slice(-6)}] ${line}`),
  });

const withKernel = async <T>(
  inv: Invocation,
  body: (kernel: Kernel, names: PetNames) => Promise<T>,
  options: { create?: boolean; limits?: Partial<KernelLimits> } = {},
): Promise<T> => {
  const node = await runningNode(homePaths(inv.home).node);
  if (node) {
    throw new UsageError(`a node is running on this home (${node.url}, pid ${node.pid}); stop it first`);
  }
  const kernel = await openHomeKernel(inv, options);
  try {
    const names = await PetNames.open(homePaths(inv.home).names);
    return await body(kernel, names);
  } finally {
    await kernel.close();
  }
};

/** A token given as a CID, a pet name, or a grid URL (which may say where to reach it and carry its delegation chain). */
const resolveTarget = (text: string | undefined, names: PetNames): GridUrl & { token: Token } => {
  if (!text) throw new UsageError('missing TOKEN');
  const named = names.get(text);
  if (named) {
    if (named.kind !== 'token') throw new UsageError(`${quote(text)} names a ${named.kind}, not a token`);
    return { token: named.id as Token };
  }
  if (text.startsWith('grid://')) {
    const url = parseGridUrl(text);
    return { ...url, token: asToken(url.token) };
  }
  return { token: asToken(text) };
};

const resolveToken = (text: string | undefined, names: PetNames): Token => resolveTarget(text, names).token;

const printOutcome = (inv: Invocation, outcome: Outcome): number => {
  if (inv.json) inv.io.out(toJsonText(outcome));
  else if (outcome.status === 'fulfilled') inv.io.out(toJsonText(outcome.value));
  else if (outcome.status === 'promised') inv.io.out(`promised: ${outcome.token}`);
  else inv.io.err(`revoked: ${outcome.reason}`);
  if (outcome.status === 'revoked') return UNREACHABLE_REASONS.has(outcome.reason) ? EXIT.unreachable : EXIT.revoked;
  return EXIT.ok;
};

/** Revocations that mean "no answer came", not "the promise was broken". */
const UNREACHABLE_REASONS = new Set(['time limit', 'unreachable', 'disconnected']);

const COMMANDS: Readonly<Record<string, Command>> = Object.freeze({
  init: {
    usage: 'grid init',
    summary: 'create the home: identity key, block store, journal; print the principal',
    options: {},
    run: async (inv) =>
      withKernel(
        inv,
        async (kernel) => {
          inv.io.out(inv.json ? toJsonText({ principal: kernel.principal, home: homePaths(inv.home).root }) : kernel.principal);
          return EXIT.ok;
        },
        { create: true },
      ),
  },
  publish: {
    usage: 'grid publish FILE… [--name PET]',
    summary: 'store JS or WebAssembly modules; print each CID',
    options: { name: { type: 'string' } },
    run: async (inv) => {
      if (inv.positionals.length === 0) throw new UsageError('publish needs at least one FILE');
      if (inv.values.name && inv.positionals.length > 1) throw new UsageError('--name takes exactly one FILE');
      return withHome(inv, async (home, names) => {
        const published: Array<{ file: string; cid: string }> = [];
        const progress = progressOf(inv);
        let total = 0;
        try {
          for (const [index, file] of inv.positionals.entries()) {
            const bytes = await readInput(file);
            total += bytes.length;
            progress(`publishing ${index + 1}/${inv.positionals.length}: ${file} (${formatBytes(bytes.length)}; ${formatBytes(total)} so far)`);
            published.push({ file, cid: await home.publish(bytes) });
          }
        } finally {
          progress(undefined);
        }
        if (typeof inv.values.name === 'string') await names.set(inv.values.name, published[0]!.cid);
        inv.io.out(inv.json ? toJsonText({ modules: published }) : published.map((p) => p.cid).join('\n'));
        return EXIT.ok;
      });
    },
  },
  issue: {
    usage: 'grid issue MODULE --export NAME [--env JSON] [--name PET] [--time-limit MS] [--replicable]',
    summary: 'make a closure over a module (a CID, a file or a pet name); print its token',
    options: { export: { type: 'string' }, env: { type: 'string' }, name: { type: 'string' }, 'time-limit': { type: 'string' }, replicable: { type: 'boolean' } },
    run: async (inv) => {
      const [moduleRef, ...extra] = inv.positionals;
      if (!moduleRef || extra.length > 0) throw new UsageError('issue takes exactly one MODULE');
      if (typeof inv.values.export !== 'string') throw new UsageError('issue needs --export NAME');
      const env = typeof inv.values.env === 'string' ? parseJsonArg(inv.values.env, '--env') : {};
      return withHome(inv, async (home, names) => {
        const code = await resolveModule(home, names, moduleRef);
        const limit = inv.values['time-limit'];
        const token = await home.issue({
          code,
          export: inv.values.export as string,
          env,
          ...(limit === undefined ? {} : { timeLimitMs: Number(limit) }),
          ...(inv.values.replicable ? { replicable: true } : {}),
        });
        if (typeof inv.values.name === 'string') await names.set(inv.values.name, token);
        inv.io.out(inv.json ? toJsonText({ token, code }) : token);
        return EXIT.ok;
      });
    },
  },
  call: {
    usage: 'grid call TOKEN [ARG…] [--no-follow] [--timeout MS]',
    summary: 'call a token with JSON arguments; print the value (exit 3 if revoked, 4 if timed out)',
    options: { 'no-follow': { type: 'boolean' }, via: { type: 'string' }, timeout: { type: 'string' } },
    run: async (inv) => {
      const [tokenRef, ...argTexts] = inv.positionals;
      const args = argTexts.map((text, index) => parseJsonArg(text, `argument ${index + 1}`));
      const timeout = inv.values.timeout === undefined ? undefined : Number(inv.values.timeout);
      if (timeout !== undefined && !(Number.isInteger(timeout) && timeout > 0)) {
        throw new UsageError(`--timeout must be a positive whole number of milliseconds (got ${quote(inv.values.timeout)})`);
      }
      const paths = homePaths(inv.home);
      const follow = !inv.values['no-follow'];
      // A grid URL carries where to reach its token, and a delegated token's chain.
      const target = resolveTarget(tokenRef, await PetNames.open(paths.names));
      const chain = target.chain ? { chain: target.chain } : {};
      const via = typeof inv.values.via === 'string' ? inv.values.via : target.via;
      if (via) {
        const remote = await connectAsHome(inv, via);
        try {
          const timeoutMs = (timeout ?? DEFAULT_LIMITS.callTimeoutMs) + REMOTE_GRACE_MS;
          return printOutcome(inv, await whileWaiting(progressOf(inv), `waiting for ${via}`, remote.call(target.token, args, { follow, timeoutMs, ...chain })));
        } finally {
          remote.close();
        }
      }
      const where = (home: HomeOps) => (home.nodeUrl ? `waiting for this home's node (${home.nodeUrl})` : 'waiting for the answer');
      return withHome(inv, async (home) => printOutcome(inv, await whileWaiting(progressOf(inv), where(home), home.call(target.token, args, { follow, ...chain }))), {
        limits: timeout === undefined ? {} : { callTimeoutMs: timeout },
      });
    },
  },
  revoke: {
    usage: 'grid revoke TOKEN [--reason TEXT] [--via URL]',
    summary: 'break the promise: every later call through TOKEN is revoked (a delegation: that layer and what was delegated through it)',
    options: { reason: { type: 'string' }, via: { type: 'string' } },
    run: async (inv) =>
      withHome(inv, async (home, names) => {
        if (inv.positionals.length > 1) throw new UsageError('revoke takes exactly one TOKEN');
        const target = resolveTarget(inv.positionals[0], names);
        await home.revoke(target.token, typeof inv.values.reason === 'string' ? inv.values.reason : undefined);
        // The node that answers the token (its URL's, or --via) is told at once, peer or not.
        // (Not this home's own node, which made the revocation.)
        const given = typeof inv.values.via === 'string' ? inv.values.via : target.via;
        const via = given === home.nodeUrl ? undefined : given;
        const notice = via ? await home.notice(target.token) : undefined;
        if (via && notice) await tellRevocation(inv, via, notice);
        inv.io.out(inv.json ? toJsonText({ revoked: target.token, ...(notice ? { told: via } : {}) }) : `revoked ${target.token}${notice ? `; told ${via}` : ''}`);
        return EXIT.ok;
      }),
  },
  graph: {
    usage: 'grid graph [TOKEN] [--format text|json|dot|mermaid] [--across] [--from URL]…',
    summary: 'show the promise graph, or the part of it that touches TOKEN; --across adds the records of the nodes this home knows (and --from URL), verified',
    options: { format: { type: 'string' }, across: { type: 'boolean' }, from: { type: 'string', multiple: true } },
    run: async (inv) => {
      const format = inv.json ? 'json' : ((inv.values.format as string | undefined) ?? 'text');
      if (!['text', 'json', 'dot', 'mermaid'].includes(format)) throw new UsageError(`--format must be text, json, dot or mermaid (got ${quote(format)})`);
      const from = (inv.values.from ?? []) as string[];
      const across = inv.values.across === true || from.length > 0;
      if (across && !inv.positionals[0]) throw new UsageError('--across and --from need a TOKEN: nodes show records about a token its holder names');
      if (across && (format === 'dot' || format === 'mermaid')) throw new UsageError('--across prints text or json');
      return withHome(inv, async (home, names) => {
        const all = await home.entries();
        const name = (id: string) => names.nameOf(id) ?? (id.length > 24 ? `${id.slice(0, 10)}…${id.slice(-6)}` : id);
        if (across) {
          const target = resolveTarget(inv.positionals[0], names);
          const urls = await nodesToAsk(inv, target.via, from, home.nodeUrl);
          const progress = progressOf(inv);
          let answered = 0;
          progress(`asking ${urls.length} nodes for their records`);
          const nodes = await recordsAcross(target.token, urls, (url, token) =>
            askRecords(inv, url, token).finally(() => progress(`asking ${urls.length} nodes for their records: ${++answered} answered`)),
          ).finally(() => progress(undefined));
          if (format === 'json') inv.io.out(toJsonText({ here: entriesAround(all, target.token), nodes }));
          else {
            const here = new GraphIndex();
            for (const entry of all) here.add(entry);
            inv.io.out(renderTree(acrossTree(target.token, here.show(target.token, name), nodes, name)));
          }
          // A record that failed verification is the louder news; a node that did not answer, the quieter.
          if (nodes.some((node) => node.verified && node.verified.flagged.length > 0)) return EXIT.revoked;
          return nodes.some((node) => !node.verified) ? EXIT.unreachable : EXIT.ok;
        }
        const entries = inv.positionals[0] ? entriesAround(all, resolveToken(inv.positionals[0], names)) : all;
        if (format === 'json') inv.io.out(toJsonText({ entries }));
        else if (format === 'dot') inv.io.out(renderDot(entries, name));
        else if (format === 'mermaid') inv.io.out(renderMermaid(entries, name));
        else inv.io.out(entries.length === 0 ? '(no records)' : renderText(entries, name, all));
        return EXIT.ok;
      });
    },
  },
  reputation: {
    usage: 'grid reputation [PRINCIPAL]',
    summary: 'fulfilled / broken / pending promises per issuer',
    options: {},
    run: async (inv) =>
      withHome(inv, async (home, names) => {
        let rows = reputation(await home.entries());
        const who = inv.positionals[0];
        if (who) {
          const principal = names.get(who)?.kind === 'principal' ? names.get(who)!.id : asPrincipal(who);
          rows = rows.filter((r) => r.issuer === principal);
        }
        if (inv.json) inv.io.out(toJsonText({ reputation: rows }));
        else if (rows.length === 0) inv.io.out('(no issuers)');
        else {
          inv.io.out(['issuer\tissued\tfulfilled\tbroken\tpending', ...rows.map((r) => `${names.nameOf(r.issuer) ?? r.issuer}\t${r.issued}\t${r.fulfilled}\t${r.broken}\t${r.pending}`)].join('\n'));
        }
        return EXIT.ok;
      }),
  },
  names: {
    usage: 'grid names',
    summary: 'list pet names',
    options: {},
    run: async (inv) => {
      const names = await PetNames.open(homePaths(inv.home).names);
      const list = names.list();
      if (inv.json) inv.io.out(toJsonText({ names: Object.fromEntries(list) }));
      else inv.io.out(list.length === 0 ? '(no names)' : list.map(([name, e]) => `${name}\t${e.kind}\t${e.id}`).join('\n'));
      return EXIT.ok;
    },
  },
  name: {
    usage: 'grid name PET ID',
    summary: 'give a token, module or principal a pet name',
    options: {},
    run: async (inv) => {
      const [pet, id, ...extra] = inv.positionals;
      if (!pet || !id || extra.length > 0) throw new UsageError('usage: grid name PET ID');
      const names = await PetNames.open(homePaths(inv.home).names);
      const target = id.startsWith('grid://') ? resolveTarget(id, names) : undefined;
      // A delegated token's chain is kept in the home, so the pet name alone is enough to call it.
      if (target?.chain) await withHome(inv, (home) => home.importChain(target.token, target.chain!));
      const entry = await names.set(pet, target?.token ?? id);
      inv.io.out(inv.json ? toJsonText({ name: pet, ...entry }) : `${pet} = ${entry.kind} ${entry.id}`);
      return EXIT.ok;
    },
  },
  inspect: {
    usage: 'grid inspect [HEX|FILE|CID|-]',
    summary: 'decode a grid message or block and print it readably',
    options: {},
    run: async (inv) => {
      const source = inv.positionals[0] ?? '-';
      let bytes: Uint8Array;
      if (source === '-') bytes = await inv.io.stdin();
      else if (/^([0-9a-f]{2})+$/i.test(source) && !existsSync(source)) bytes = new Uint8Array(Buffer.from(source, 'hex'));
      else if (!existsSync(source) && isCid(source)) {
        // Blocks are immutable and every read is verified: no need for the home's lock.
        bytes = await openFsBlockStore(homePaths(inv.home).blocks).get(parseCid(source));
      } else bytes = await readInput(source);
      const report = inspectBytes(bytes);
      inv.io.out(inv.json ? toJsonText(report) : report.text);
      return EXIT.ok;
    },
  },
  run: {
    usage: 'grid run MODULE [ARG…] [--clock] [--random]   (ARGs after -- are passed as they are)',
    summary: 'run a WASI command module, or a JS module\'s main export, from a file, CID or pet name',
    options: { clock: { type: 'boolean' }, random: { type: 'boolean' } },
    run: async (inv) => {
      const [moduleRef, ...args] = inv.positionals;
      if (!moduleRef) throw new UsageError('run needs a MODULE');
      const bytes = existsSync(moduleRef)
        ? await readInput(moduleRef)
        : await openFsBlockStore(homePaths(inv.home).blocks).get(parseCid((await PetNames.open(homePaths(inv.home).names)).get(moduleRef)?.id ?? moduleRef, 'module'));
      if (moduleKindOf(bytes) === 'wasm') {
        return runWasiCommand(bytes, { args, clock: inv.values.clock === true, random: inv.values.random === true, maxPages: DEFAULT_LIMITS.wasmMaxPages });
      }
      return withHome(inv, async (home) => {
        const token = await home.issue({ code: await home.publish(bytes), export: 'main' });
        return printOutcome(inv, await home.call(token, args, { follow: true }));
      });
    },
  },
  delegate: {
    usage:
      'grid delegate TOKEN --to PRINCIPAL… [--expires DUR|DATE] [--rate N/PERIOD] [--uses N] [--pattern JSON] [--approvals K --approver PRINCIPAL…] [--audit] [--policy MODULE[=JSON]]… [--name PET]',
    summary: 'wrap TOKEN in a screener for PRINCIPAL(s) with these policies; print the new token as a grid URL carrying its chain',
    options: {
      to: { type: 'string', multiple: true },
      expires: { type: 'string' },
      rate: { type: 'string' },
      uses: { type: 'string' },
      pattern: { type: 'string' },
      approvals: { type: 'string' },
      approver: { type: 'string', multiple: true },
      audit: { type: 'boolean' },
      policy: { type: 'string', multiple: true },
      name: { type: 'string' },
    },
    run: async (inv) => {
      if (inv.positionals.length !== 1) throw new UsageError('delegate takes exactly one TOKEN');
      return withHome(inv, async (home, names) => {
        const target = resolveTarget(inv.positionals[0], names);
        const principal = (text: string) => (names.get(text)?.kind === 'principal' ? names.get(text)!.id : asPrincipal(text));
        const to = ((inv.values.to ?? []) as string[]).map(principal);
        if (to.length === 0) throw new UsageError('delegate needs --to PRINCIPAL (one or more)');
        if (target.chain) await home.importChain(target.token, target.chain);
        const policies = await delegationPolicies(inv.values, principal, (ref) => resolveModule(home, names, ref));
        const token = await home.delegate({ token: target.token, to, policies });
        const chain = await home.chainBlocks(token);
        // Calls go where the delegated token's calls went: its URL's node, else this home's own.
        const url = formatGridUrl({ token, via: target.via ?? home.nodeUrl, chain });
        if (typeof inv.values.name === 'string') await names.set(inv.values.name, token);
        inv.io.out(inv.json ? toJsonText({ token, url, to, policies }) : url);
        return EXIT.ok;
      });
    },
  },
  repl: {
    usage: 'grid repl [--via URL]',
    summary: 'a REPL with E, grid.publish/issue/call/delegate/revoke and graph.show/who/pending/broken/calls/reputation/export/follow',
    options: { via: { type: 'string' } },
    run: async (inv) =>
      withHome(inv, async (home, names) => {
        const via = typeof inv.values.via === 'string' ? inv.values.via : undefined;
        // With --via, calls go to that node as this home's principal; the graph is still this home's.
        const remote = via ? await connectAsHome(inv, via) : undefined;
        try {
          await startRepl(home, {
            input: process.stdin,
            output: process.stdout,
            nameOf: (id) => names.nameOf(id),
            historyFile: join(homePaths(inv.home).root, 'repl_history'),
            ...(remote ? { call: (token: string, args: readonly unknown[], options: { follow?: boolean }) => remote.call(token, args, options) } : {}),
            across: async (token, from) => recordsAcross(token, await nodesToAsk(inv, via, from, home.nodeUrl), (url, asked) => askRecords(inv, url, asked)),
          });
        } finally {
          remote?.close();
        }
        return EXIT.ok;
      }),
  },
  start: {
    usage: 'grid start [--listen HOST:PORT] [--peer URL]… [--web-remote] [--web-host NAME]…',
    summary: 'run a node on this home (loopback unless told otherwise) with its web page on the same port; calls it cannot answer go to its peers; Ctrl-C stops it',
    options: { listen: { type: 'string' }, peer: { type: 'string', multiple: true }, 'web-remote': { type: 'boolean' }, 'web-host': { type: 'string', multiple: true } },
    run: async (inv) => {
      const webHosts = ((inv.values['web-host'] ?? []) as string[]).map((name) => {
        if (!/^([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$/i.test(name)) throw new UsageError(`--web-host takes a host name or address, optionally with :PORT (got ${quote(name)})`);
        return name;
      });
      const { host, port } = parseListen(typeof inv.values.listen === 'string' ? inv.values.listen : '127.0.0.1:0');
      const peerUrls = ((inv.values.peer ?? []) as string[]).map((url) => {
        if (!isPeerUrl(url)) throw new UsageError(`--peer takes a ws:// or wss:// URL (got ${quote(url)})`);
        return url;
      });
      const paths = homePaths(inv.home);
      const running = await runningNode(paths.node);
      if (running) throw new UsageError(`a node is running on this home (${running.url}, pid ${running.pid}); stop it first`);
      const identity = await loadIdentity(paths.identity).catch(() => {
        throw new NoHomeError(paths.root);
      });
      const random = (n: number) => new Uint8Array(randomBytes(n));
      const known = await rememberPeers(paths.peers, peerUrls);
      const node = await startNode((forward) => openHomeKernel(inv, { forward }), {
        identity,
        random,
        host,
        port,
        peers: known,
        invitations: await Invitations.open(paths.invitations),
        remember: async (urls) => void (await rememberPeers(paths.peers, urls)),
        web: { remote: inv.values['web-remote'] === true, hosts: webHosts },
      });
      try {
        await announceNode(paths.node, node.server.url, node.server.web);
        inv.io.out(
          inv.json
            ? toJsonText({ url: node.server.url, principal: node.kernel.principal, peers: known, web: node.server.web })
            : `node ${node.kernel.principal} listening on ${node.server.url}${known.length ? `; peers: ${known.join(', ')}` : ''}\nweb: ${node.server.web}`,
        );
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await retractNode(paths.node);
      } finally {
        // Stop taking connections; calls in flight are answered or revoked
        // as their connections close; the kernel then flushes the journal.
        await node.close();
      }
      return EXIT.ok;
    },
  },
  web: {
    usage: 'grid web',
    summary: 'print the address of this home\'s running node\'s web page (its access key included)',
    options: {},
    run: async (inv) => {
      if (inv.positionals.length > 0) throw new UsageError('web takes no arguments');
      const running = await runningNode(homePaths(inv.home).node);
      if (!running) throw new UsageError('no node is running on this home; start one with `grid start`');
      if (!running.web) throw new UsageError(`the node running on this home (${running.url}) serves no web page`);
      inv.io.out(inv.json ? toJsonText({ web: running.web, url: running.url }) : running.web);
      return EXIT.ok;
    },
  },
  invite: {
    usage: 'grid invite [--expires DURATION]',
    summary: 'print an invitation to this home\'s running node: a grid URL, usable once (default: expires in 24h)',
    options: { expires: { type: 'string' } },
    run: async (inv) => {
      const expiresInMs = parseDuration(typeof inv.values.expires === 'string' ? inv.values.expires : '24h', '--expires');
      return withOwnNode(inv, async (remote) => {
        const { invitation, expires } = await remote.invite(expiresInMs);
        inv.io.out(inv.json ? toJsonText({ invitation, expires }) : invitation);
        return EXIT.ok;
      });
    },
  },
  join: {
    usage: 'grid join INVITATION',
    summary: 'join the grid through an invitation (a grid URL): learn and remember the introducer and its peers',
    options: {},
    run: async (inv) => {
      const [invitationUrl, ...extra] = inv.positionals;
      if (!invitationUrl || extra.length > 0) throw new UsageError('join takes exactly one INVITATION (a grid:// URL)');
      const { token, via } = parseGridUrl(invitationUrl);
      if (!via) throw new UsageError('the invitation says nowhere to go (no ?via=)');
      const paths = homePaths(inv.home);
      const print = (welcome: Welcome) => {
        inv.io.out(inv.json ? toJsonText(welcome) : `joined ${welcome.introducer}; peers: ${welcome.peers.join(', ')}`);
        return EXIT.ok;
      };
      const progress = progressOf(inv);
      try {
        // With the home's node running, the node joins and starts using its new peers at once.
        if (await runningNode(paths.node)) {
          return await withOwnNode(inv, async (remote) => print(await whileWaiting(progress, `joining through this home's node: reaching ${via}`, remote.join(invitationUrl))));
        }
        progress(`joining: reaching ${via}`);
        const introducer = await connectAsHome(inv, via);
        try {
          progress(`joining: redeeming the invitation at ${via}`);
          const welcome = await redeemInvitation(introducer, token, undefined);
          progress(`joining: remembering ${welcome.peers.length} peers`);
          await rememberPeers(paths.peers, welcome.peers);
          progress(undefined); // the status line goes before the answer is printed
          return print(welcome);
        } finally {
          introducer.close();
        }
      } finally {
        progress(undefined);
      }
    },
  },
});

/** Hand a revocation to the node at `via`; a refusal or no answer is an error (the revocation holds here either way). */
const tellRevocation = async (inv: Invocation, via: string, notice: RevocationNotice) => {
  const remote = await connectAsHome(inv, via, (message) => `revoked here, but ${message}`);
  try {
    const { outcome } = await remote.session.revoke(notice, DEFAULT_LIMITS.callTimeoutMs);
    if (outcome.status === 'revoked') throw new UnreachableError(`revoked here, but ${via} did not take the notice: ${outcome.reason}`);
  } finally {
    remote.close();
  }
};

const RATE_PERIODS: Readonly<Record<string, number>> = { s: 1000, sec: 1000, second: 1000, min: 60_000, minute: 60_000, h: 3_600_000, hour: 3_600_000, d: 86_400_000, day: 86_400_000 };

/** `--expires` takes a duration from now (2h) or a date (2026-12-01T00:00Z). */
const parseExpiry = (text: string): number => {
  if (/^\d+(ms|s|m|h|d)$/.test(text)) return Date.now() + parseDuration(text, '--expires');
  const at = Date.parse(text);
  if (!Number.isFinite(at)) throw new UsageError(`--expires takes a duration such as 2h or a date such as 2026-12-01T00:00Z (got ${quote(text)})`);
  return at;
};

const positiveInteger = (text: string, what: string): number => {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${what} takes a positive whole number (got ${quote(text)})`);
  return n;
};

/** The policies `grid delegate`'s options ask for, in the order they screen: cheap refusals first, approvals and audit last. */
const delegationPolicies = async (
  values: Invocation['values'],
  principal: (text: string) => string,
  moduleOf: (ref: string) => Promise<string>,
): Promise<Array<{ module: string; settings: unknown }>> => {
  const policies: Array<{ module: string; settings: unknown }> = [];
  if (typeof values.expires === 'string') policies.push({ module: 'expiry', settings: { until: parseExpiry(values.expires) } });
  if (typeof values.pattern === 'string') policies.push({ module: 'pattern', settings: { args: parseJsonArg(values.pattern, '--pattern') } });
  if (typeof values.rate === 'string' || typeof values.uses === 'string') {
    const settings: Record<string, unknown> = {};
    if (typeof values.rate === 'string') {
      const match = /^(\d+)\/(\w+)$/.exec(values.rate);
      const periodMs = match ? RATE_PERIODS[match[2]!] : undefined;
      if (!match || periodMs === undefined) throw new UsageError(`--rate takes N/PERIOD, PERIOD one of s, min, h, d (got ${quote(values.rate)})`);
      settings.rate = { n: positiveInteger(match[1]!, '--rate'), periodMs, per: match[2] };
    }
    if (typeof values.uses === 'string') settings.uses = positiveInteger(values.uses, '--uses');
    policies.push({ module: 'rate', settings });
  }
  const approvers = ((values.approver ?? []) as string[]).map(principal);
  if (typeof values.approvals === 'string' || approvers.length > 0) {
    const k = positiveInteger(typeof values.approvals === 'string' ? values.approvals : '', '--approvals');
    if (approvers.length < k) throw new UsageError(`--approvals ${k} needs at least ${k} --approver principals (got ${approvers.length})`);
    policies.push({ module: 'approval', settings: { k, of: approvers } });
  }
  for (const spec of (values.policy ?? []) as string[]) {
    const at = spec.indexOf('=');
    const ref = at < 0 ? spec : spec.slice(0, at);
    policies.push({ module: await moduleOf(ref), settings: at < 0 ? null : parseJsonArg(spec.slice(at + 1), `--policy ${ref}`) });
  }
  if (values.audit) policies.push({ module: 'audit', settings: {} });
  return policies;
};

const parseListen = (text: string): { host: string; port: number } => {
  const match = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || port > 65535) throw new UsageError(`--listen takes HOST:PORT (got ${quote(text)})`);
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
};

class UnreachableError extends Error {
  readonly code = 'ERR_UNREACHABLE';
}

const isCid = (text: string) => {
  try {
    parseCid(text);
    return true;
  } catch {
    return false;
  }
};

const readInput = async (file: string): Promise<Uint8Array> => {
  try {
    return new Uint8Array(await readFile(file));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(code === 'ENOENT' ? `no such file: ${file}` : `cannot read ${file}: ${code ?? (error as Error).message}`);
  }
};

const resolveModule = async (home: Pick<HomeOps, 'publish'>, names: PetNames, ref: string): Promise<string> => {
  const named = names.get(ref);
  if (named) {
    if (named.kind !== 'module') throw new UsageError(`${quote(ref)} names a ${named.kind}, not a module`);
    return named.id;
  }
  if (existsSync(ref)) return home.publish(await readInput(ref));
  return ref;
};

const helpText = () =>
  [
    'usage: grid COMMAND [ARGS] [--home DIR] [--json] [--debug]',
    '',
    ...Object.entries(COMMANDS).map(([, c]) => `  ${c.usage.padEnd(58)} ${c.summary}`),
    '',
    'The home is --home DIR, else $GRID_HOME, else ~/.promisegrid.',
    'Exit codes: 0 fulfilled or done, 1 usage or input error, 3 revoked, 4 unreachable or timed out.',
  ].join('\n');

/** Run the CLI; returns the exit code. Exported for tests and embedding. */
export const main = async (argv: string[], io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> => {
  const [name, ...rest] = argv;
  const debug = argv.includes('--debug');
  try {
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      io.out(helpText());
      return name ? EXIT.ok : EXIT.usage;
    }
    const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!command) throw new UsageError(`unknown command ${quote(name)}; run \`grid --help\``);
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
    } catch (error) {
      throw new UsageError(`${(error as Error).message.split('\n')[0]} (usage: ${command.usage})`);
    }
    if (parsed.values.help) {
      io.out(`usage: ${command.usage}\n${command.summary}`);
      return EXIT.ok;
    }
    const home = typeof parsed.values.home === 'string' ? parsed.values.home : defaultHome(env);
    const lockWaitMs = env.GRID_LOCK_WAIT_MS ? Number(env.GRID_LOCK_WAIT_MS) : undefined;
    return await command.run({ home, lockWaitMs, json: parsed.values.json === true, values: parsed.values, positionals: parsed.positionals, io });
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
    io.err(`grid: ${message}`);
    if (argv.includes('--json')) io.out(toJsonText({ error: message, code: (error as { code?: unknown })?.code ?? 'ERR_USAGE' }));
    // Under lockdown `error.stack` is hidden from ordinary code; SES gives the
    // perimeter `getStackString` to read it.
    if (debug && error instanceof Error) io.err(getStackString(error) || error.stack || '(no stack)');
    return error instanceof UnreachableError ? EXIT.unreachable : EXIT.usage;
  }
};
