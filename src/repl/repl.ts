/**
 * `grid repl`: a Node REPL (history, tab completion, top-level await) on a
 * home, with `E`, the grid API as `grid`, and the promise graph as `graph`.
 * Query results are plain data — arrays and records, for scripting — that
 * print readably: principals and tokens by pet name where one exists, and
 * `graph.show` as a tree.
 */
import type { Domain } from 'node:domain';
import { clearScreenDown, cursorTo, moveCursor } from 'node:readline';
import { start as startNodeRepl, type REPLEval } from 'node:repl';
import { inspect, types } from 'node:util';
import { E } from '@endo/eventual-send';
import type { Entry, Journal } from '../journal/journal.js';
import { renderDot, renderMermaid, renderText } from '../journal/graph.js';
import { acrossTree, renderTree, type NodeRecords } from '../journal/queries.js';
import type { RecordQueries } from '../journal/record-queries.js';
import type { ChainBlocks, DelegateSpec, IssueSpec, Outcome, PendingView } from '../kernel/kernel.js';
import type { NodeOwner } from '../kernel/owner.js';
import type { Principal, Token } from '../interface/ids.js';
import { formatGridUrl, type GridUrl } from '../net/grid-url.js';
import { describeThrown } from '../interface/errors.js';
import type { GridValue } from '../closures/values.js';
import type { ConflictView } from '../docs/documents.js';
import { noReputation } from '../journal/reputation.js';
import { renderConflicts, renderLogDot, renderLogMermaid, renderLogText, type LogEntry } from '../docs/render.js';

/** What the REPL needs of a home (the kernel opened here, or the home's running node): the owner API (kernel/owner.ts), and its journal. */
export interface ReplHome extends Pick<NodeOwner, 'publish' | 'issue' | 'call' | 'delegate' | 'revoke' | 'chainBlocks' | 'importChain' | 'createDocument' | 'documentConflicts' | 'vote' | 'reputation'> {
  /** The home's journal and what its records say (through its record index). */
  history(): Promise<{ readonly journal: Journal; readonly records: RecordQueries }>;
  /** The URL of the node running on this home, if one is. */
  readonly nodeUrl?: string;
}

/** How the words a person types name things: the CLI's own resolution, pet names and grid URLs included. */
export interface ReplResolve {
  /** A token given as a CID, a pet name or a grid URL (which may say where to reach it and carry its chain). */
  token(text: string): GridUrl & { token: Token };
  /** A principal given as a did:key or a pet name. */
  principal(text: string): string;
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
  /** Call a token on the node at `url` (a grid URL's `via`) as this home's principal. */
  readonly callAt?: (url: string, token: Token, args: readonly unknown[], options: { follow?: boolean; chain?: ChainBlocks }) => Promise<Outcome>;
  /** Pet names and grid URLs; without it, tokens and principals are taken as written. */
  readonly resolve?: ReplResolve;
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

/**
 * How the REPL prints a result or a thrown value. Under SES, util.inspect of
 * an Error is `{}` (lockdown hides its stack), so every error printed as
 * `Uncaught {}`: an error prints as one line, `Name: message (code)`; the
 * rest as Node's REPL prints it.
 */
const writer = (colors: boolean) => (value: unknown) => {
  if (!types.isNativeError(value)) return inspect(value, { showProxy: true, colors });
  let name = 'Error';
  let code: unknown;
  try {
    ({ name, code } = value as Error & { code?: unknown });
  } catch {}
  return `${typeof name === 'string' && /^\w{1,64}$/.test(name) ? name : 'Error'}: ${describeThrown(value)}${typeof code === 'string' ? ` (${code})` : ''}`;
};

/** What `.help` says of each method in scope (the banner lists the same names). */
const HELP: Readonly<Record<'grid' | 'graph' | 'doc', Readonly<Record<string, string>>>> = {
  grid: {
    publish: 'publish(source) — store a module (JavaScript text or WebAssembly bytes); its CID',
    issue: "issue({ code, export, env?, timeLimitMs?, replicable? }) — a closure over a module's export; its token",
    call: 'call(token, ...args) — call a token (a CID, pet name or grid:// URL), following further promises; the outcome',
    delegate: "delegate(token, { to: [principal…], policies? }) — a narrower token for others; its grid:// URL, chain included (as `grid delegate` prints)",
    revoke: 'revoke(token, reason?) — break the promise',
    pending: 'pending() — calls waiting for your approval, or for you to collect',
  },
  graph: {
    show: 'show(token, { across?, from? }) — its issue, delegations, calls and outcomes as a tree; across: also the nodes this home knows',
    who: 'who(token) — every principal that can reach it, and through which layers',
    pending: 'pending() — calls not yet answered',
    broken: 'broken() — the promises broken',
    calls: 'calls({ token?, caller?, since?, after?, limit? }) — calls, with their outcomes (paged with a token or caller)',
    reputation: 'reputation(principal?) — issued, fulfilled, broken and pending per issuer',
    export: "export('text' | 'json' | 'dot' | 'mermaid', token?) — the graph, or the part around a token",
    follow: 'follow() — print records as they are written (above the prompt); returns stop()',
  },
  doc: {
    create: "create(code, { reducer, merge?: [step…], init? }) — a document over a module's reducer (steps: 'json', 'union', 'text', 'CID#export', a token); its tokens by role",
    apply: 'apply(token, change) — apply a change through the reducer (a write token); { version, value }',
    show: 'show(token, version?) — the current value, or the one at a version; { version, value }',
    log: "log(token, { limit?, format?: 'text' | 'json' | 'dot' | 'mermaid' }) — the versions, newest first",
    conflicts: 'conflicts(token?) — open conflicts of one document, or of every one here, with each step\'s reason',
    resolve: 'resolve(token, conflict, { pick: head } | { value }) — settle a conflict (a settle token); { version, value }',
    propose: 'propose(token, change) — propose a change to a governed document (a write token); the proposal, a further promise members vote on',
    admin: "admin(token, { reducer?: 'CID#export' | token, merge?: [step…] }) — propose new rules (the admin token): a proposal its members (an ungoverned document's issuer alone) vote on",
    vote: "vote(proposal, 'yes' | 'no') — vote, signed as this home; 'promised' while open, { status: 'passed', version } once carried",
  },
};

/** A document token's refusal, thrown by the REPL's `doc` methods: it prints as one line with its code. */
class DocumentRefused extends Error {
  constructor(readonly code: string, reason: string) {
    super(`revoked: ${reason}`);
    this.name = 'DocumentRefused';
  }
}

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
  const sends = (make: () => object) =>
    new Proxy({}, {
      get: (_, name) =>
        plainly((...args: unknown[]) => {
          const target = make();
          return Reflect.apply(Reflect.get(target, name), target, args);
        }),
    });
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
  const stops = new Set<() => void>();
  const resolve: ReplResolve = options.resolve ?? { token: (text) => ({ token: text as Token }), principal: (text) => text };
  const tokenOf = (text: string) => resolve.token(text).token;

  const grid = plainMethods({
    publish: (source: string | Uint8Array) => home.publish(typeof source === 'string' ? new TextEncoder().encode(source) : source),
    issue: (spec: IssueSpec) => home.issue(spec),
    call: (ref: string, ...args: unknown[]) => {
      // As `grid call`: --via first, then where the grid URL says, else this home's node or kernel.
      const target = resolve.token(ref);
      const callOptions = { follow: true, ...(target.chain ? { chain: target.chain } : {}) };
      if (options.call) return options.call(target.token, args, callOptions);
      if (target.via && target.via !== home.nodeUrl && options.callAt) return options.callAt(target.via, target.token, args, callOptions);
      return home.call(target.token, args, callOptions);
    },
    delegate: async (ref: string, spec: Omit<DelegateSpec, 'token'>) => {
      const target = resolve.token(ref);
      if (target.chain) await home.importChain(target.token, target.chain);
      const token = await home.delegate({ ...spec, to: (spec?.to ?? []).map((to) => resolve.principal(to)), token: target.token });
      // Calls go where the delegated token's calls went: its URL's node, else this home's own (as `grid delegate`).
      return formatGridUrl({ token, via: target.via ?? home.nodeUrl, chain: await home.chainBlocks(token) });
    },
    revoke: (ref: string, reason?: string) => home.revoke(tokenOf(ref), reason),
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
    show: async (ref: string, scope: { across?: boolean; from?: readonly string[] } = {}) => {
      const token = tokenOf(ref);
      const tree = await (await home.history()).records.show(token, name);
      if (!scope.across && !scope.from?.length) return printing({ ...tree }, () => renderTree(tree));
      if (!options.across) throw new Error('this REPL reaches no other nodes');
      const nodes = await options.across(token, scope.from ?? []);
      const merged = acrossTree(token, tree, nodes, name);
      return printing({ ...merged, nodes }, () => renderTree(merged));
    },
    /** Every principal that can reach a token, and through which delegation layers. */
    who: async (ref: string) => {
      const reach = await (await home.history()).records.who(tokenOf(ref));
      return printing(reach, () => reach.map((r) => `${name(r.principal)}${r.through.length ? ` through ${r.through.map(name).join(' → ')}` : ' (directly)'}`).join('\n') || '(nobody)');
    },
    /** Calls with no outcome yet; `{ after, limit }` pages through them (by record number). */
    pending: async (page: { after?: number; limit?: number } = {}) => {
      const views = await (await home.history()).records.pending(page);
      return printing(views, () => views.map((v) => `#${v.call.seq} ${name(v.call.token)} by ${name(v.call.caller)}${v.outcome?.kind === 'promised' ? ` waiting on ${name(v.outcome.token)}` : ' running'}`).join('\n') || '(nothing pending)');
    },
    /** Calls that ended revoked and tokens revoked; `{ after, limit }` pages through them (by record number). */
    broken: async (page: { after?: number; limit?: number } = {}) => {
      const broken = await (await home.history()).records.broken(page);
      return printing(broken, () => broken.map((b) => `#${b.seq} ${name(b.token)}${b.caller ? ` called by ${name(b.caller)}` : ' revoked'}: ${b.reason}`).join('\n') || '(nothing broken)');
    },
    calls: async (filter: { token?: string; caller?: string; since?: number; after?: number; limit?: number } = {}) => {
      const views = await (await home.history()).records.calls({
        ...filter,
        ...(filter.token === undefined ? {} : { token: tokenOf(filter.token) }),
        ...(filter.caller === undefined ? {} : { caller: resolve.principal(filter.caller) }),
      });
      const outcome = (v: (typeof views)[number]) => (!v.outcome ? 'pending' : v.outcome.kind === 'revoked' ? `revoked: ${v.outcome.reason}` : v.outcome.kind);
      return printing(views, () => views.map((v) => `#${v.call.seq} ${name(v.call.token)}(${JSON.stringify(v.call.args).slice(1, -1)}) by ${name(v.call.caller)} → ${outcome(v)}`).join('\n') || '(no calls)');
    },
    reputation: async (principal?: string) => {
      // The tally the kernel keeps (here, or in the running node), not the journal read again.
      const all = await home.reputation();
      const wanted = principal === undefined ? undefined : resolve.principal(principal);
      const rows = wanted === undefined ? [...all] : [all.find((row) => row.issuer === wanted) ?? noReputation(wanted as Principal)];
      return printing(rows, () => rows.map((r) => `${name(r.issuer)}: issued ${r.issued}, fulfilled ${r.fulfilled}, broken ${r.broken}, refused ${r.refused}, pending ${r.pending}`).join('\n') || '(no issuers)');
    },
    /** The graph (or the part around `token`) as text, JSON, Graphviz DOT or Mermaid. */
    export: async (format: 'text' | 'json' | 'dot' | 'mermaid' = 'text', ref?: string) => {
      const { journal, records } = await home.history();
      let all: Entry[] | undefined;
      if (!ref) {
        all = [];
        for await (const entry of journal.read(0)) all.push(entry);
      }
      const entries = ref ? await records.around(tokenOf(ref)) : all!;
      if (format === 'json') return JSON.stringify({ entries });
      if (format === 'dot') return renderDot(entries, name);
      if (format === 'mermaid') return renderMermaid(entries, name);
      return renderText(entries, name, all ?? (await records.textContext(entries)));
    },
    /** Print new records as they are written; returns a function that stops. */
    follow: async () => {
      let seen = (await home.history()).journal.length;
      const timer = setInterval(() => {
        void home.history().then(async ({ journal, records }) => {
          if (journal.length <= seen) return;
          const fresh: Entry[] = [];
          for await (const entry of journal.read(seen)) fresh.push(entry);
          if (fresh.length === 0) return;
          seen = fresh.at(-1)!.seq + 1;
          above(renderText(fresh, name, await records.textContext(fresh)).split('\n').filter((line) => !line.startsWith('(journal')).join('\n'));
        }).catch((error: unknown) => {
          // Said once, not every FOLLOW_MS: following stops.
          stop();
          above(`(following stopped: ${describeThrown(error)})`);
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

  /** A call on a document token, where `grid doc` makes it: this home, else the node a grid URL names; a refusal thrown. */
  const docCall = async (ref: string, args: readonly GridValue[]): Promise<GridValue> => {
    const target = resolve.token(ref);
    const callOptions = target.chain ? { chain: target.chain } : {};
    let outcome = await home.call(target.token, args, callOptions);
    if (outcome.status === 'revoked' && (outcome.code === 'unknown-token' || outcome.code === 'unreachable') && target.via && target.via !== home.nodeUrl && options.callAt) {
      outcome = await options.callAt(target.via, target.token, args, callOptions);
    }
    if (outcome.status === 'revoked') throw new DocumentRefused(outcome.code, outcome.reason);
    if (outcome.status !== 'fulfilled') throw new DocumentRefused('malformed', `a further promise ${outcome.token}`);
    return outcome.value;
  };
  /** Merge steps as `doc.create` and `doc.admin` take them: shipped names, CID#export (issued here, replicable), tokens. */
  const stepsOf = async (steps: readonly string[]): Promise<string[]> => {
    const merges: string[] = [];
    for (const step of steps) {
      const hash = step.lastIndexOf('#');
      if (['json', 'union', 'text'].includes(step)) merges.push(step);
      else if (hash > 0) merges.push(await home.issue({ code: step.slice(0, hash), export: step.slice(hash + 1), replicable: true }));
      else merges.push(tokenOf(step));
    }
    return merges;
  };
  const docs = plainMethods({
    create: async (code: string, spec: { reducer: string; merge?: readonly string[]; init?: GridValue }) => {
      const merges = await stepsOf(spec?.merge ?? []);
      let init = spec?.init;
      if (init === undefined) {
        const outcome = await home.call(await home.issue({ code, export: 'init' }), []);
        if (outcome.status !== 'fulfilled') throw new DocumentRefused(outcome.status === 'revoked' ? outcome.code : 'malformed', `the module's init gave no initial value${outcome.status === 'revoked' ? `: ${outcome.reason}` : ''}`);
        init = outcome.value;
      }
      const reducer = await home.issue({ code, export: spec?.reducer, replicable: true });
      return home.createDocument({ reducer, merges, init });
    },
    apply: (ref: string, change: GridValue) => docCall(ref, ['apply', change]),
    show: (ref: string, version?: string) => docCall(ref, version === undefined ? [] : ['at', version]),
    log: async (ref: string, { limit = 100, format = 'text' }: { limit?: number; format?: 'text' | 'json' | 'dot' | 'mermaid' } = {}) => {
      const entries = (await docCall(ref, ['log', { limit }])) as unknown as LogEntry[];
      if (format === 'json') return JSON.stringify({ versions: entries });
      if (format === 'dot') return renderLogDot(entries, name, entries.length < limit);
      if (format === 'mermaid') return renderLogMermaid(entries, name, entries.length < limit);
      return printing([...entries], () => renderLogText(entries, name));
    },
    conflicts: async (ref?: string) => {
      const views = ref === undefined ? await home.documentConflicts() : ((await docCall(ref, ['conflicts'])) as unknown as ConflictView[]).filter((view) => view.settled === undefined);
      return printing([...views], () => renderConflicts(views, name));
    },
    resolve: (ref: string, conflict: string, choice: { pick: string } | { value: GridValue }) => docCall(ref, ['resolve', conflict, choice as GridValue]),
    propose: async (ref: string, change: GridValue) => {
      const target = resolve.token(ref);
      const outcome = await home.call(target.token, ['propose', change], target.chain ? { chain: target.chain } : {});
      if (outcome.status === 'revoked') throw new DocumentRefused(outcome.code, outcome.reason);
      return outcome.status === 'promised' ? outcome.token : outcome.value;
    },
    admin: async (ref: string, spec: { reducer?: string; merge?: readonly string[] }) => {
      const rules: Record<string, GridValue> = {};
      const reducer = spec?.reducer;
      if (reducer !== undefined) rules.reducer = reducer.lastIndexOf('#') > 0 ? await home.issue({ code: reducer.slice(0, reducer.lastIndexOf('#')), export: reducer.slice(reducer.lastIndexOf('#') + 1), replicable: true }) : tokenOf(reducer);
      if (spec?.merge !== undefined) rules.merges = await stepsOf(spec.merge);
      const target = resolve.token(ref);
      const outcome = await home.call(target.token, ['rules', rules], target.chain ? { chain: target.chain } : {});
      if (outcome.status === 'revoked') throw new DocumentRefused(outcome.code, outcome.reason);
      return outcome.status === 'promised' ? outcome.token : outcome.value;
    },
    vote: async (proposal: string, choice: 'yes' | 'no') => {
      const outcome = await home.vote(resolve.token(proposal).token, choice);
      if (outcome.status === 'revoked') throw new DocumentRefused(outcome.code, outcome.reason);
      return outcome.status === 'promised' ? 'promised' : outcome.value;
    },
  });

  const inScope = { grid, graph: queries, doc: docs };
  const terminal = (options.output as { isTTY?: boolean }).isTTY === true;
  const out = options.output;
  out.write(
    [
      `PromiseGrid REPL on this home${home.nodeUrl ? ` (served at ${home.nodeUrl})` : ''}${options.call ? '; grid.call goes to the --via node' : ''}. In scope:`,
      ...Object.entries(inScope).map(([object, methods]) => `  ${object.padEnd(5)}  ${Object.keys(methods).join(', ')}`),
      '  E      eventual send',
      'Tokens are CIDs, pet names or grid:// URLs. .help says more; .exit or Ctrl-D leaves.',
      '',
    ].join('\n'),
  );
  const server = startNodeRepl({ prompt: 'grid> ', input: options.input, output: out, useGlobal: true, terminal, writer: writer(terminal) });
  Object.assign(server.context, { E: replE, ...inScope });

  // Whether an input is being evaluated (no prompt is showing): the REPL reads `eval` anew for each input.
  let busy = false;
  const evaluate: REPLEval = server.eval;
  (server as { eval: REPLEval }).eval = function (this: unknown, code, context, file, done) {
    busy = true;
    evaluate.call(this as never, code, context, file, (error, result) => {
      busy = false;
      done(error, result);
    });
  };
  /** Print `text` above the prompt and what is typed after it, then draw them again below it. */
  const above = (text: string) => {
    if (!terminal) return void out.write(`\n${text}\n`);
    if (busy) return void out.write(`${text}\n`);
    moveCursor(out, 0, -server.getCursorPos().rows);
    cursorTo(out, 0);
    clearScreenDown(out);
    out.write(`${text}\n`);
    // readline moves up by the rows it last drew before redrawing; the cursor is now below all of them.
    (server as unknown as { prevRows: number }).prevRows = 0;
    server.prompt(true);
  };

  const builtinHelp = server.commands.help;
  server.defineCommand('help', {
    help: builtinHelp?.help ?? 'Print this help message',
    action() {
      for (const [object, methods] of Object.entries(inScope) as Array<[keyof typeof HELP, object]>) {
        out.write(`${object}:\n${Object.keys(methods).map((method) => `  ${object}.${HELP[object][method] ?? `${method}(…)`}\n`).join('')}`);
      }
      out.write('E: eventual send, E(target).method(...args)\nTokens are CIDs, pet names or grid:// URLs; principals are did:keys or pet names.\n\n');
      if (builtinHelp) builtinHelp.action.call(server, '');
      else server.displayPrompt();
    },
  });
  if (options.historyFile) server.setupHistory(options.historyFile, () => {});
  return new Promise((resolve) =>
    server.on('exit', () => {
      for (const stop of stops) stop();
      resolve();
    }),
  );
};
