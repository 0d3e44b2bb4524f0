/**
 * `grid repl`: a Node REPL (history, tab completion, top-level await) on a
 * home, with `E`, the grid API as `grid`, and the promise graph as `graph`.
 * Query results are plain data — arrays and records, for scripting — that
 * print readably: principals and tokens by pet name where one exists, and
 * `graph.show` as a tree.
 */
import type { Domain } from 'node:domain';
import { start as startNodeRepl } from 'node:repl';
import { inspect } from 'node:util';
import { E } from '@endo/far';
import type { Entry } from '../journal/journal.js';
import { entriesAround, renderDot, renderMermaid, renderText, ReputationTally } from '../journal/graph.js';
import { acrossTree, GraphIndex, renderTree, type NodeRecords } from '../journal/queries.js';
import type { ChainBlocks, DelegateSpec, IssueSpec, Outcome, PendingView } from '../kernel/kernel.js';
import type { ModuleId, Principal, Token } from '../caps/ids.js';

/** What the REPL needs of a home: the kernel opened here, or the home's running node. */
export interface ReplHome {
  publish(bytes: Uint8Array): Promise<ModuleId>;
  issue(spec: IssueSpec): Promise<Token>;
  call(token: string, args: readonly unknown[], options: { follow?: boolean; chain?: ChainBlocks }): Promise<Outcome>;
  delegate(spec: DelegateSpec): Promise<Token>;
  revoke(token: string, reason?: string): Promise<void>;
  entries(): Promise<readonly Entry[]>;
}

export interface ReplOptions {
  readonly input: NodeJS.ReadableStream;
  readonly output: NodeJS.WritableStream;
  /** A pet name for a token, module or principal, if the home has one. */
  readonly nameOf: (id: string) => string | undefined;
  /** Where history is kept between sessions. */
  readonly historyFile?: string;
  /** Where `grid.call` goes when not to the home's own node or kernel (`--via`). */
  readonly call?: ReplHome['call'];
  /** Records about `token` from the nodes this home knows and from `from` (URLs), each checked. */
  readonly across?: (token: Token, from: readonly string[]) => Promise<NodeRecords[]>;
  /** The calls waiting for this home's approval (or for it to collect) on its node, or the `--via` node. */
  readonly pending?: () => Promise<readonly PendingView[]>;
}

/** A value that is plain data and prints as `text`. */
const printing = <T extends object>(value: T, text: () => string): T => {
  Object.defineProperty(value, inspect.custom, { value: text, enumerable: false });
  return value;
};

const FOLLOW_MS = 250;

const activeDomain = () => (process as { domain?: Domain | null }).domain ?? undefined;
/** More nested domains than any REPL makes. */
const MAX_DOMAIN_DEPTH = 64;

/**
 * Node's REPL evaluates each input inside a domain, and while a domain is
 * active Node gives every promise made a `domain` property naming it. Eventual
 * sends and CapTP make hardened promises (HandledPromise), and so does every
 * `then` on one — including the REPL's own `await` of one; harden follows the
 * `domain` property to the domain, an EventEmitter, and freezes
 * EventEmitter.prototype, after which no emitter can be made (a WebSocket:
 * "Cannot assign to read only property '_events'") and the REPL's own error
 * handling breaks. So what the REPL hands its user runs outside the domain and
 * answers with a plain promise, never a HandledPromise.
 */
const outsideDomain = <R>(body: () => R): R => {
  // The REPL enters its domain more than once per input (emitting the line, evaluating it): leave every entry.
  const entered: Domain[] = [];
  for (let domain = activeDomain(); domain && entered.length < MAX_DOMAIN_DEPTH; domain = activeDomain()) {
    entered.unshift(domain);
    domain.exit();
  }
  try {
    return body();
  } finally {
    for (const domain of entered) domain.enter();
  }
};

/** `method`'s answer as a plain promise, made (and settled) outside the REPL's domain. */
const plainly =
  <A extends unknown[], R>(method: (...args: A) => R) =>
  (...args: A): Promise<Awaited<R>> =>
    outsideDomain(async (): Promise<Awaited<R>> => await method(...args));

/** Each of `methods`, answering plainly; frozen. */
const plainMethods = <T extends Record<string, (...args: never[]) => unknown>>(methods: T) =>
  Object.freeze(Object.fromEntries(Object.entries(methods).map(([key, method]) => [key, plainly(method)]))) as {
    readonly [K in keyof T]: (...args: Parameters<T[K]>) => Promise<Awaited<ReturnType<T[K]>>>;
  };

/** `E` for the REPL: each eventual send answers plainly. */
const replE = (() => {
  const sends = (make: () => object) => new Proxy({}, { get: (_, name) => plainly((...args: unknown[]) => Reflect.get(make(), name)(...args)) });
  return Object.freeze(
    Object.assign((target: unknown) => sends(() => E(target)), {
      get: (target: unknown) => new Proxy({}, { get: (_, name) => plainly(() => Reflect.get(E.get(target), name))() }),
      sendOnly: (target: unknown) => sends(() => E.sendOnly(target)),
      when: plainly((value: unknown, onFulfilled?: (v: unknown) => unknown, onRejected?: (r: unknown) => unknown) => E.when(value, onFulfilled, onRejected)),
    }),
  );
})();

export const startRepl = (home: ReplHome, options: ReplOptions): Promise<void> => {
  const short = (id: string) => (id.length > 24 ? `${id.slice(0, 12)}…${id.slice(-6)}` : id);
  const name = (id: string) => options.nameOf(id) ?? short(id);
  // The journal only grows: each query indexes just the records written since the last one.
  const graph = new GraphIndex();
  const tally = new ReputationTally();
  let indexed = 0;
  const index = async () => {
    const entries = await home.entries();
    for (; indexed < entries.length; indexed++) {
      graph.add(entries[indexed]!);
      tally.add(entries[indexed]!);
    }
    return { graph, tally };
  };
  const call = options.call ?? home.call;
  const stops = new Set<() => void>();

  const grid = plainMethods({
    publish: (source: string | Uint8Array) => home.publish(typeof source === 'string' ? new TextEncoder().encode(source) : source),
    issue: (spec: IssueSpec) => home.issue(spec),
    call: (token: string, ...args: unknown[]) => call(token, args, { follow: true }),
    delegate: (token: string, spec: Omit<DelegateSpec, 'token'>) => home.delegate({ ...spec, token }),
    revoke: (token: string, reason?: string) => home.revoke(token, reason),
    /** What waits for this home's approval (approve with `grid.call(v.token, 'approve')`), or for it to collect. */
    pending: async () => {
      if (!options.pending) throw new Error('this REPL reaches no node where calls wait for approval');
      const views = [...(await options.pending())];
      return printing(views, () => views.map((v) => `${v.token} ${v.yours === 'approve' ? 'to approve' : 'to collect'}: ${name(v.caller)} called ${name(v.delegation)}(${JSON.stringify(v.args, (_key, x) => (typeof x === 'bigint' ? `${x}n` : x instanceof Uint8Array ? `<${x.length} bytes>` : x)).slice(1, -1)}); ${v.reason}`).join('\n') || '(nothing waits for you)');
    },
  });

  const queries = plainMethods({
    /**
     * The story of a token: issue, delegations, calls and outcomes, as a tree.
     * With `{ across: true }` (or `{ from: [url…] }`), also each other node's
     * records about it, verified; a record that fails is shown, not merged.
     */
    show: async (token: Token, scope: { across?: boolean; from?: readonly string[] } = {}) => {
      const tree = (await index()).graph.show(token, name);
      if (!scope.across && !scope.from?.length) return printing({ ...tree }, () => renderTree(tree));
      if (!options.across) throw new Error('this REPL reaches no other nodes');
      const nodes = await options.across(token, scope.from ?? []);
      const merged = acrossTree(token, tree, nodes, name);
      return printing({ ...merged, nodes }, () => renderTree(merged));
    },
    /** Every principal that can reach a token, and through which delegation layers. */
    who: async (token: Token) => {
      const reach = (await index()).graph.who(token);
      return printing(reach, () => reach.map((r) => `${name(r.principal)}${r.through.length ? ` through ${r.through.map(name).join(' → ')}` : ' (directly)'}`).join('\n') || '(nobody)');
    },
    pending: async () => {
      const views = (await index()).graph.pending();
      return printing(views, () => views.map((v) => `#${v.call.seq} ${name(v.call.token)} by ${name(v.call.caller)}${v.outcome?.kind === 'promised' ? ` waiting on ${name(v.outcome.token)}` : ' running'}`).join('\n') || '(nothing pending)');
    },
    broken: async () => {
      const broken = [...(await index()).graph.broken()];
      return printing(broken, () => broken.map((b) => `#${b.seq} ${name(b.token)}${b.caller ? ` called by ${name(b.caller)}` : ' revoked'}: ${b.reason}`).join('\n') || '(nothing broken)');
    },
    calls: async (filter: { token?: string; caller?: string; since?: number } = {}) => {
      const views = (await index()).graph.calls(filter);
      const outcome = (v: (typeof views)[number]) => (!v.outcome ? 'pending' : v.outcome.kind === 'revoked' ? `revoked: ${v.outcome.reason}` : v.outcome.kind);
      return printing(views, () => views.map((v) => `#${v.call.seq} ${name(v.call.token)}(${JSON.stringify(v.call.args).slice(1, -1)}) by ${name(v.call.caller)} → ${outcome(v)}`).join('\n') || '(no calls)');
    },
    reputation: async (principal?: Principal) => {
      const { tally } = await index();
      const rows = principal ? [tally.of(principal)] : tally.rows();
      return printing(rows, () => rows.map((r) => `${name(r.issuer)}: issued ${r.issued}, fulfilled ${r.fulfilled}, broken ${r.broken}, refused ${r.refused}, pending ${r.pending}`).join('\n') || '(no issuers)');
    },
    /** The graph (or the part around `token`) as text, JSON, Graphviz DOT or Mermaid. */
    export: async (format: 'text' | 'json' | 'dot' | 'mermaid' = 'text', token?: Token) => {
      const all = await home.entries();
      const entries = token ? entriesAround(all, token) : all;
      if (format === 'json') return JSON.stringify({ entries });
      if (format === 'dot') return renderDot(entries, name);
      if (format === 'mermaid') return renderMermaid(entries, name);
      return renderText(entries, name, all);
    },
    /** Print new records as they are written; returns a function that stops. */
    follow: async () => {
      let seen = (await home.entries()).length;
      const timer = setInterval(() => {
        void home.entries().then((entries) => {
          if (entries.length <= seen) return;
          const fresh = entries.slice(seen);
          seen = entries.length;
          options.output.write(`\n${renderText(fresh, name, entries).split('\n').filter((line) => !line.startsWith('(journal')).join('\n')}\n`);
        });
      }, FOLLOW_MS);
      const stop = () => {
        clearInterval(timer);
        stops.delete(stop);
      };
      stops.add(stop);
      return printing(stop, () => '(following; call the result to stop)');
    },
  });

  const server = startNodeRepl({ prompt: 'grid> ', input: options.input, output: options.output, useGlobal: true, terminal: (options.output as { isTTY?: boolean }).isTTY === true });
  Object.assign(server.context, { E: replE, grid, graph: queries });
  if (options.historyFile) server.setupHistory(options.historyFile, () => {});
  return new Promise((resolve) =>
    server.on('exit', () => {
      for (const stop of stops) stop();
      resolve();
    }),
  );
};
