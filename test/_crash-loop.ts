/**
 * The crash loop (issue 16, item 5), shared by test/crash-loop.test.ts and
 * `npm run bench -- durable`: a real `grid start` node on a home, loaded by
 * one driver over the node's WebSocket (executing calls, pure-cache hits,
 * document applies, now and then a delegation, a call through it and its
 * revocation), killed with SIGKILL at a seeded random moment, and restarted,
 * again and again. After each kill the home as the kill left it is copied
 * twice (blocks hard-linked: they never change): one copy keeps its `db/`
 * and is reopened, the other loses `db/` and is rebuilt from the journal.
 * Both are opened in this process with `openKernel`, the code `grid start`
 * opens a home with, and checked:
 *
 * - nothing acknowledged is missing, as README ("What is on disk when you
 *   are told") promises it: a document apply (written before acknowledged)
 *   and a revocation (fsynced before acknowledged) always survive; calls,
 *   cache hits and delegations are group-committed, so a kill may take back
 *   the last ones, but only a tail: one acknowledged before another op was
 *   even sent is there if that later op is ("a crash never loses or breaks
 *   an earlier record");
 * - every block re-hashes to its CID;
 * - the journal as the kill left it verifies (links, sequence, seals; a torn
 *   tail is what a crash leaves), and after the reopen it verifies whole and
 *   sealed;
 * - the reopened copy answers queries as the rebuilt one does.
 *
 * The node itself restarts on the home as the kill left it (its restart time
 * is measured: spawn to listening), so every cycle's copies also show what
 * the previous restart kept. No assertion is timed: the durations only pace
 * the load and are reported.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, linkSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { CID } from 'multiformats/cid';
import { openKernel } from '../src/home/open.js';
import type { Kernel } from '../src/kernel/kernel.js';
import { homePaths } from '../src/home/home.js';
import { loadIdentity, type Identity } from '../src/identity/index.js';
import { Journal, type Entry } from '../src/journal/journal.js';
import { openSegmentedJournal } from '../src/journal/segments.js';
import { GraphIndex } from '../src/journal/queries.js';
import { verifyBlock } from '../src/store/index.js';
import { connectNode, type RemoteNode } from '../src/net/client.js';
import type { Outcome } from '../src/interface/outcome.js';
import type { Principal, Token } from '../src/interface/ids.js';

const BIN = join(process.cwd(), 'bin', 'grid.js');

export interface CrashLoopOptions {
  /** Kill-and-restart cycles to run. */
  readonly kills: number;
  /** Seeds every random choice: the kill moments and the mix of operations. */
  readonly seed: number;
  /** A scratch directory, removed by the caller. */
  readonly dir: string;
  /** How long after the node answered every kind of operation it is killed: a random time in this range (ms). */
  readonly loadMs?: readonly [number, number];
  /** Progress lines (one per cycle is printed when `verbose`). */
  readonly log?: (line: string) => void;
  readonly verbose?: boolean;
  /** Without `verbose`, a line every this many kills. */
  readonly progressEvery?: number;
  /**
   * Restart the node while the copies of the last kill are checked (default
   * true: a cycle costs less); false times each restart alone.
   */
  readonly overlapRestarts?: boolean;
  /** Stop at the first failing cycle (the test does: the rest would only repeat it). */
  readonly stopOnFailure?: boolean;
  /** Every process started here, so that the caller can kill what is left if it gives up. */
  readonly processes?: Set<ChildProcess>;
}

export interface CrashLoopReport {
  readonly seed: number;
  readonly kills: number;
  /** One line per failed check: cycle, what was missing or differed, the seed. */
  readonly failures: readonly string[];
  /** Spawn of `grid start` to its listening line, per restart after a kill (ms). */
  readonly restartMs: readonly number[];
  /** Operations acknowledged, by kind, over all cycles. */
  readonly acknowledged: Readonly<Record<OpKind, number>>;
  /** Acknowledged group-committed operations a kill took back (within the documented window), and the oldest of them: its answer's age at the kill (ms). */
  readonly lostInWindow: number;
  readonly oldestLostMs: number;
  /** Records in the journal at the end. */
  readonly records: number;
  readonly seconds: number;
}

type OpKind = 'call' | 'hit' | 'apply' | 'delegate' | 'through' | 'revoke';
/** Group-committed: a kill may take back the last ones. The others are on disk before they are acknowledged. */
const GROUP_COMMITTED: ReadonlySet<OpKind> = new Set(['call', 'hit', 'delegate', 'through']);

interface Op {
  readonly kind: OpKind;
  readonly cycle: number;
  /** The call's token and arguments (call, hit, through); the delegation's token (revoke). */
  token?: string;
  args?: readonly string[];
  readonly sentAt: number;
  ackAt?: number;
  /** What the acknowledgement said: a call's value, a new delegation's token, `{ version, value }` of an apply. */
  answer?: unknown;
  present?: boolean;
}

/** A seeded generator (the one test/crash.test.ts uses), so that a failing run can be repeated. */
const generator = (seed: number) => () => {
  seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
  return seed / 2 ** 31;
};

/** What the node must have answered, after a restart, before the kill is timed: each kind of operation, so all are under way. */
const WARM: readonly OpKind[] = ['call', 'hit', 'apply', 'delegate'];

/** Outcome codes that mean the answer never came (the node died), not an answer. */
const NO_ANSWER = new Set(['disconnected', 'unreachable', 'time-limit']);

const plain = (value: unknown) => JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? `bytes:${Buffer.from(v).toString('base64')}` : v));

const GREET = `export const greet = (ctx, name) => \`\${ctx.env.greeting}, \${name}\`;\n`;
const COUNTER = 'export const update = (ctx, total, n) => total + n;\n';

interface Setup {
  readonly greet: Token;
  readonly doc: { readonly doc: string; readonly read: Token; readonly write: Token };
}

/** The home the loop runs on: a pure closure to call and a counter document to apply +1 to. */
const setUp = async (home: string): Promise<Setup> => {
  const kernel = await openKernel({ home, create: true });
  try {
    const greet = await kernel.issue({ code: await kernel.publish(GREET), export: 'greet', env: { greeting: 'hi' } });
    const reducer = await kernel.issue({ code: await kernel.publish(COUNTER), export: 'update' });
    const doc = await kernel.docs.create({ reducer, init: 0 });
    return { greet, doc };
  } finally {
    await kernel.close();
  }
};

interface Node {
  readonly url: string;
  readonly startMs: number;
  kill(): Promise<void>;
  /** SIGTERM: a clean stop. */
  stop(): Promise<void>;
  /** CPU time the process (all its threads: the vats too) has used so far, in ms; undefined where /proc does not say. */
  cpuMs(): Promise<number | undefined>;
}

/** CPU time (user + system) of process `pid` from /proc/PID/stat, in ms. */
const cpuOf = async (pid: number | undefined): Promise<number | undefined> => {
  try {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /s, '').split(' ');
    // After the command: state is field 3, utime 14, stime 15 (in clock ticks, 100 a second on Linux).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
};

/** `grid start --json` on `home`, resolved once it listens. */
const startNode = (home: string, processes: Set<ChildProcess>): Promise<Node> =>
  new Promise((resolve, reject) => {
    const began = performance.now();
    const child = spawn(process.execPath, [BIN, 'start', '--home', home, '--json'], { env: { ...process.env, GRID_HOME: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    processes.add(child);
    let stdout = '';
    let stderr = '';
    const exited = new Promise<void>((done) => child.on('close', () => (processes.delete(child), done())));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => {
      stdout += d;
      const end = stdout.indexOf('\n');
      if (end < 0) return;
      const startMs = performance.now() - began;
      try {
        const { url } = JSON.parse(stdout.slice(0, end)) as { url: string };
        resolve({ url, startMs, kill: () => (child.kill('SIGKILL'), exited), stop: () => (child.kill('SIGTERM'), exited), cpuMs: () => cpuOf(child.pid) });
      } catch {
        reject(new Error(`grid start printed ${JSON.stringify(stdout.slice(0, end))}`));
      }
    });
    child.on('error', reject);
    void exited.then(() => reject(new Error(`grid start exited before listening: ${stderr.trim()}`)));
  });

/** `operation`, or a rejection once the connection is gone (CapTP's answer may never come then). */
const untilClosed = <T>(remote: RemoteNode, operation: Promise<T>): Promise<T> =>
  Promise.race([operation, remote.session.closed.then(() => Promise.reject(new Error('disconnected')))]);

/**
 * The driver: one connection to the node as the home's own principal (what
 * the CLI uses), three lanes, each sending its operations one after another, and every
 * operation it sent, with when it was sent and when (and how) it was answered.
 */
class Driver {
  readonly ops: Op[] = [];
  /** Delegations acknowledged and not yet revoked (or asked to be). */
  readonly #delegations: string[] = [];
  #calls = 0;
  #hitKey = 0;
  #step = 0;
  /** Lines for outcomes no operation here should get (a refusal): a failure of the node, not of the load. */
  readonly unexpected: string[] = [];
  /** Resolves once a call, a cache hit, an apply and a delegation were answered since `expectAnswers`: the node is up, warm and loaded. */
  #lanesAnswered = new Set<OpKind>();
  #allAnswered: () => void = () => {};
  warm: Promise<void> = Promise.resolve();

  constructor(
    readonly setup: Setup,
    readonly identity: Identity,
    readonly random: () => number,
  ) {}

  /** Load the node at `url` until `stop` resolves; every lane's last operation has settled when this does. */
  async run(url: string, cycle: number, stop: Promise<void>): Promise<void> {
    let stopped = false;
    void stop.then(() => (stopped = true));
    let remote: RemoteNode;
    try {
      remote = await connectNode(url, { identity: this.identity, random: (n) => new Uint8Array(randomBytes(n)) });
    } catch (error) {
      this.unexpected.push(`cycle ${cycle}: could not reach the restarted node: ${(error as Error).message}`);
      this.#allAnswered();
      return;
    }
    try {
      // A lane ends at the first operation that got no answer: the node is gone (and a closed
      // connection answers at once, so going on would only spin).
      const lane = async (next: () => Promise<boolean>) => {
        while (!stopped && (await next()));
      };
      await Promise.all([
        // What runs in a vat, one at a time (so that a restarted node starts one vat, not two: a cycle costs less):
        // executing calls (arguments never used before), document applies, calls through a delegation.
        lane(() => {
          const roll = this.random();
          const last = this.#delegations[this.#delegations.length - 1];
          if (roll < 0.25) return this.#apply(remote, cycle);
          if (roll < 0.35 && last !== undefined) return this.#call(remote, cycle, 'through', last, [`d${cycle}.${this.#calls++}`]);
          return this.#call(remote, cycle, 'call', this.setup.greet, [`c${cycle}.${this.#calls++}`]);
        }),
        // Pure-cache hits: a few arguments over and over, each sent only once the last call with it is answered
        // (and 5 ms apart: hits are cheap, and the journal they fill would only slow the checks).
        lane(async () => (await sleep(5), this.#call(remote, cycle, 'hit', this.setup.greet, [`h${this.#hitKey++ % 8}`]))),
        // Delegations, and (mostly) revocations of the oldest still standing, tens of ms apart (a revocation is fsynced).
        lane(async () => {
          await sleep(30 + Math.floor(this.random() * 60));
          if (this.#step++ % 2 === 0) return this.#delegate(remote, cycle);
          return this.random() < 0.3 || this.#delegations.length === 0 || this.#revoke(remote, cycle, this.#delegations.shift()!);
        }),
      ]);
    } finally {
      remote.close();
    }
  }

  /** Delegations a kill took back (acknowledged within the group-commit window): no longer called or revoked. */
  forget(tokens: readonly string[]) {
    for (const token of tokens) {
      const at = this.#delegations.indexOf(token);
      if (at >= 0) this.#delegations.splice(at, 1);
    }
  }

  /** An owner operation failed: fine if the node is gone (its connection closes within a second), else noted as unexpected. */
  async #gone(remote: RemoteNode, op: Op, error: unknown): Promise<false> {
    const closed = await Promise.race([remote.session.closed.then(() => true), sleep(1000).then(() => false)]);
    if (!closed) this.unexpected.push(`cycle ${op.cycle}: ${describe(op)} failed: ${(error as Error)?.message}`);
    return false;
  }

  /** Make `warm` wait for a call, a hit, an apply and a delegation to be answered (called before `run`). */
  expectAnswers() {
    this.#lanesAnswered = new Set();
    this.warm = new Promise((resolve) => (this.#allAnswered = resolve));
  }

  #acknowledged(op: Op, answer?: unknown) {
    op.ackAt = performance.now();
    op.answer = answer;
    this.#lanesAnswered.add(op.kind);
    if (WARM.every((kind) => this.#lanesAnswered.has(kind))) this.#allAnswered();
  }

  #answered(op: Op, outcome: Outcome, what: string): boolean {
    if (outcome.status === 'fulfilled') {
      this.#acknowledged(op, outcome.value);
      return true;
    }
    if (outcome.status === 'revoked' && NO_ANSWER.has(outcome.code)) return false;
    this.unexpected.push(`cycle ${op.cycle}: ${what} was answered ${plain(outcome)}`);
    return false;
  }

  async #call(remote: RemoteNode, cycle: number, kind: OpKind, token: string, args: string[]): Promise<boolean> {
    const op: Op = { kind, cycle, token, args, sentAt: performance.now() };
    this.ops.push(op);
    return this.#answered(op, await remote.call(token, args), `${kind} ${token}(${plain(args)})`);
  }

  async #apply(remote: RemoteNode, cycle: number): Promise<boolean> {
    const op: Op = { kind: 'apply', cycle, sentAt: performance.now() };
    this.ops.push(op);
    return this.#answered(op, await remote.call(this.setup.doc.write, ['apply', 1]), 'doc apply');
  }

  async #delegate(remote: RemoteNode, cycle: number): Promise<boolean> {
    const op: Op = { kind: 'delegate', cycle, sentAt: performance.now() };
    this.ops.push(op);
    try {
      const token = await untilClosed(remote, remote.delegate({ token: this.setup.greet, to: [this.identity.principal] }));
      op.token = token;
      this.#acknowledged(op, token);
      this.#delegations.push(token);
      return true;
    } catch (error) {
      // The node died before it answered: not acknowledged.
      return this.#gone(remote, op, error);
    }
  }

  async #revoke(remote: RemoteNode, cycle: number, token: string): Promise<boolean> {
    const op: Op = { kind: 'revoke', cycle, token, sentAt: performance.now() };
    this.ops.push(op);
    try {
      await untilClosed(remote, remote.revoke(token, `cycle ${cycle}`));
      this.#acknowledged(op);
      return true;
    } catch (error) {
      // Not acknowledged: the driver does not call it again either way.
      return this.#gone(remote, op, error);
    }
  }
}

/**
 * A copy of `home` at `to`: its blocks hard-linked (a block file never
 * changes: it is written to a temporary file and renamed into place), the
 * rest copied; `db/` left out when `withDb` is false. Synchronous: hundreds
 * of small file operations cost less so than through the thread pool.
 */
const copyHome = (home: string, to: string, withDb: boolean) => {
  mkdirSync(to);
  for (const name of readdirSync(home)) {
    // The running node's announcement: no node runs on the copy.
    if (name === 'node' || (!withDb && name === 'db')) continue;
    if (name !== 'blocks') {
      cpSync(join(home, name), join(to, name), { recursive: true, preserveTimestamps: true });
      continue;
    }
    for (const shard of readdirSync(join(home, name))) {
      mkdirSync(join(to, name, shard), { recursive: true });
      for (const file of readdirSync(join(home, name, shard))) linkSync(join(home, name, shard, file), join(to, name, shard, file));
    }
  }
};

/** Every block file under `blocks` that does not re-hash to the CID it is filed under (temporary files a crash left are skipped: the next open removes them). */
const corruptBlocks = (blocks: string): { checked: number; corrupt: string[] } => {
  const corrupt: string[] = [];
  let checked = 0;
  for (const shard of readdirSync(blocks)) {
    for (const name of readdirSync(join(blocks, shard))) {
      if (name.startsWith('.tmp-')) continue;
      checked += 1;
      try {
        if (!verifyBlock(CID.parse(name), new Uint8Array(readFileSync(join(blocks, shard, name))))) corrupt.push(`${shard}/${name}`);
      } catch (error) {
        corrupt.push(`${shard}/${name} (${(error as Error).message})`);
      }
    }
  }
  return { checked, corrupt };
};

/** The journal at `path` (a home's segment directory), scanned and verified (read only). */
const scanJournal = async (path: string, signer: Principal) => {
  const file = await openSegmentedJournal(path);
  try {
    return await Journal.scanFile(file, signer);
  } finally {
    await file.close();
  }
};

/** An operation in a failure's words. */
const describe = (op: Op) => {
  if (op.kind === 'apply') return `doc apply${op.answer ? ` ${(op.answer as { version: string }).version} (value ${(op.answer as { value: number }).value})` : ''}`;
  const kind = { call: 'call', hit: 'repeated call (a cache hit)', through: 'call through delegation', delegate: 'delegation', revoke: 'revocation of', apply: '' }[op.kind];
  return `${kind}${op.token ? ` ${op.token}` : ''}${op.args ? `(${plain(op.args)})` : ''}`;
};

/** A call's key: which token, which arguments. */
const keyOf = (token: string, args: readonly unknown[]) => `${token} ${plain(args)}`;

/**
 * The answers a journal holds, per call key, in journal order: every
 * fulfilled call and every cache hit (whose `from` names the fulfilled call
 * that answered it).
 */
const answersByKey = (entries: readonly Entry[]) => {
  const calls = new Map<number, Extract<Entry, { kind: 'call' }>>();
  const fulfilled = new Map<number, Extract<Entry, { kind: 'fulfilled' }>>();
  const byKey = new Map<string, unknown[]>();
  const add = (key: string, value: unknown) => {
    let list = byKey.get(key);
    if (!list) byKey.set(key, (list = []));
    list.push(value);
  };
  for (const entry of entries) {
    if (entry.kind === 'call') calls.set(entry.seq, entry);
    else if (entry.kind === 'fulfilled') {
      fulfilled.set(entry.seq, entry);
      const call = calls.get(entry.call);
      if (call) add(keyOf(call.token, call.args), entry.value);
    } else if (entry.kind === 'hit') {
      const from = fulfilled.get(entry.from);
      const call = from && calls.get(from.call);
      if (call) add(keyOf(entry.token, call.args), from.value);
    }
  }
  return byKey;
};

/** Every record of a kernel's journal, read from its file (the journal keeps none in memory). */
const everyRecord = async (kernel: Kernel) => {
  const records: Entry[] = [];
  for await (const entry of kernel.journal.read(0)) records.push(entry);
  return records;
};

/**
 * What a user can ask the home, for the comparison of a reopened home with
 * one rebuilt from its journal: the promise graph (who/show/calls/pending/
 * broken for the tokens the loop uses), reputation, calls waiting on the
 * owner, document heads and values, revocations.
 */
const queryAnswers = async (kernel: Kernel, setup: Setup, delegations: readonly string[]) => {
  const graph = new GraphIndex();
  const entries = await everyRecord(kernel);
  for (const entry of entries) graph.add(entry);
  const tokens = [setup.greet, setup.doc.write, setup.doc.read, ...delegations.slice(-4)] as Token[];
  const history = await kernel.docs.history(setup.doc.doc, 20);
  return {
    records: entries.length,
    reputation: kernel.reputation(),
    who: tokens.map((token) => graph.who(token)),
    show: tokens.map((token) => graph.show(token)),
    calls: tokens.map((token) => {
      const views = graph.calls({ token });
      return { count: views.length, last: views.slice(-10) };
    }),
    pending: graph.pending(),
    broken: graph.broken(),
    ownerPending: kernel.pendingFor(kernel.principal),
    docs: kernel.docs.held(),
    value: await kernel.docs.read(setup.doc.read),
    history,
    revoked: delegations.map((token) => kernel.isRevoked(token as Token)),
  };
};

/** Which answers differ, each in one line that shows where (the JSON around the first difference). */
const differences = (a: Record<string, unknown>, b: Record<string, unknown>) =>
  Object.keys({ ...a, ...b }).flatMap((key) => {
    const [x, y] = [plain(a[key]), plain(b[key])];
    if (x === y) return [];
    let at = 0;
    while (at < x.length && x[at] === y[at]) at++;
    const around = (text: string) => `${at > 120 ? '…' : ''}${text.slice(Math.max(0, at - 120), at + 120)}${text.length > at + 120 ? '…' : ''}`;
    return [`${key}: reopened ${around(x)} vs rebuilt ${around(y)}`];
  });

export const crashLoop = async (options: CrashLoopOptions): Promise<CrashLoopReport> => {
  const { kills, seed, dir } = options;
  const [loadMin, loadMax] = options.loadMs ?? [0, 250];
  const log = options.log ?? (() => {});
  const overlap = options.overlapRestarts ?? true;
  const processes = options.processes ?? new Set<ChildProcess>();
  const random = generator(seed);
  const began = performance.now();
  const home = join(dir, 'home');
  const setup = await setUp(home);
  const identity = await loadIdentity(homePaths(home).identity);
  // The driver's choices have a generator of their own: the kill moments do not depend on how many operations ran.
  const driver = new Driver(setup, identity, generator(seed + 1));
  const failures: string[] = [];
  const restartMs: number[] = [];
  /** Answers per call key in the journal at the last check, and the document's value then. */
  let answersBefore = new Map<string, unknown[]>();
  let valueBefore = 0;
  /** Every revocation acknowledged so far: each must stay. */
  const revokedAcked: Array<{ token: string; cycle: number }> = [];
  const delegationsMade: string[] = [];
  let lostInWindow = 0;
  let oldestLostMs = 0;
  let records = 0;
  let killCount = 0;

  const report = (): CrashLoopReport => {
    const acknowledged = Object.fromEntries((['call', 'hit', 'apply', 'delegate', 'through', 'revoke'] as const).map((kind) => [kind, driver.ops.filter((op) => op.kind === kind && op.ackAt !== undefined).length]));
    return { seed, kills: killCount, failures, restartMs, acknowledged: acknowledged as Record<OpKind, number>, lostInWindow, oldestLostMs, records, seconds: (performance.now() - began) / 1000 };
  };

  let node = await startNode(home, processes);
  for (let cycle = 0; cycle < kills; cycle++) {
    const fail = (what: string) => failures.push(`cycle ${cycle} (seed ${seed}): ${what}`);
    // The kill comes a random time after every kind of operation had an answer: under load, whatever the machine's speed.
    const loadFor = loadMin + Math.floor(random() * (loadMax - loadMin));
    let killAt = 0;
    let nodeCpu: number | undefined;
    driver.expectAnswers();
    const killed = (async () => {
      await driver.warm;
      await sleep(loadFor);
      killAt = performance.now();
      nodeCpu = options.verbose ? await node.cpuMs() : undefined;
      await node.kill();
      killCount += 1;
    })();
    const first = driver.ops.length;
    await Promise.all([driver.run(node.url, cycle, killed), killed]);
    for (const line of driver.unexpected.splice(0)) fail(line);
    const ops = driver.ops.slice(first);

    // The home as the kill left it, twice: as it is, and with its derived database gone.
    let lapAt = performance.now();
    const laps: string[] = [];
    const lap = (what: string) => {
      const at = performance.now();
      laps.push(`${what} ${(at - lapAt).toFixed(0)}`);
      lapAt = at;
    };
    const reopened = join(dir, `reopened-${cycle}`);
    const rebuilt = join(dir, `rebuilt-${cycle}`);
    copyHome(home, reopened, true);
    copyHome(home, rebuilt, false);
    lap('copies');
    // The restart: on the home as the kill left it, while the copies are checked (unless restarts are to be timed alone).
    const restart = () => startNode(home, processes);
    let next = overlap ? restart() : undefined;
    next?.catch(() => {});
    try {
      const blocks = corruptBlocks(join(reopened, 'blocks'));
      lap('blocks');
      for (const block of blocks.corrupt) fail(`block ${block} does not re-hash to its CID`);
      const crashed = await scanJournal(join(reopened, 'journal'), identity.principal);
      if (crashed.broken) fail(`the journal the kill left does not verify: ${crashed.broken.message} (${crashed.entries.length} records verify before it)`);

      // One clock for both opens: a seal either writes is then the same record.
      const now = Date.now();
      const a = await openKernel({ home: reopened, create: false, clock: () => now });
      lap('reopen');
      // The delegations to ask both homes about: every one acknowledged so far.
      const delegations = [...delegationsMade, ...ops.flatMap((op) => (op.kind === 'delegate' && op.token !== undefined ? [op.token] : []))];
      let answersA: Record<string, unknown>;
      let byKey: Map<string, unknown[]>;
      try {
        answersA = await queryAnswers(a, setup, delegations);
        const recordsA = await everyRecord(a);
        byKey = answersByKey(recordsA);
        records = a.journal.length;
        // Which operations of this cycle are in the reopened home.
        const perKey = new Map<string, Op[]>();
        for (const op of ops) {
          if (op.kind === 'call' || op.kind === 'hit' || op.kind === 'through') {
            const key = keyOf(op.token!, op.args!);
            let list = perKey.get(key);
            if (!list) perKey.set(key, (list = []));
            list.push(op);
          }
        }
        // A key's operations were sent one after another: the first N are those whose answers are new in the journal.
        for (const [key, list] of perKey) {
          const before = answersBefore.get(key)?.length ?? 0;
          const fresh = (byKey.get(key) ?? []).slice(before);
          if (fresh.length > list.length) fail(`${fresh.length} answers of ${key} appeared in the journal for ${list.length} calls sent`);
          list.forEach((op, i) => {
            op.present = i < fresh.length;
            if (op.present && op.ackAt !== undefined && plain(fresh[i]) !== plain(op.answer)) fail(`${op.kind} ${key} was answered ${plain(op.answer)} but the journal says ${plain(fresh[i])}`);
          });
        }
        for (const [key, before] of answersBefore) {
          if ((byKey.get(key)?.length ?? 0) < before.length) fail(`answers of ${key} acknowledged in earlier cycles are gone (${before.length} before, ${byKey.get(key)?.length ?? 0} now)`);
        }
        // Delegations: their record; revocations: the kernel refuses the token.
        const wraps = new Set(recordsA.flatMap((entry) => (entry.kind === 'wrap' ? [entry.token as string] : [])));
        for (const { token, cycle: made } of revokedAcked) if (!a.isRevoked(token as Token)) fail(`the revocation of ${token} acknowledged in cycle ${made} is gone`);
        for (const op of ops) {
          if (op.kind === 'delegate' && op.token !== undefined) {
            op.present = wraps.has(op.token);
            delegationsMade.push(op.token);
            if (!op.present) driver.forget([op.token]);
          }
          if (op.kind === 'revoke') {
            op.present = a.isRevoked(op.token as Token);
            if (op.ackAt !== undefined) revokedAcked.push({ token: op.token!, cycle });
          }
        }
        // Document applies: each adds 1, one after another, so the first (value now − value before) are in.
        const read = await a.docs.read(setup.doc.read);
        const value = read.status === 'fulfilled' ? Number((read.value as { value: unknown }).value) : Number.NaN;
        const applies = ops.filter((op) => op.kind === 'apply');
        if (!(value >= valueBefore)) fail(`the document's value went from ${valueBefore} to ${value} (${plain(read)})`);
        if (value - valueBefore > applies.length) fail(`the document's value went from ${valueBefore} to ${value} with ${applies.length} applies sent`);
        applies.forEach((op, i) => (op.present = i < value - valueBefore));
        const acked = applies.filter((op) => op.ackAt !== undefined);
        if (acked.length > 0) {
          // An acknowledged version is in if the history from the head holds it, with the value it was answered with.
          const lowest = Math.min(...acked.map((op) => Number((op.answer as { value: number }).value)));
          const history = await a.docs.history(setup.doc.doc, value - lowest + 2);
          const inHistory = new Set((history?.log ?? []).map((entry) => String((entry as { version: unknown }).version)));
          for (const op of acked) {
            const { version, value: answered } = op.answer as { version: string; value: number };
            if (inHistory.has(version) !== op.present) fail(`acknowledged doc apply ${version} (value ${answered}) is ${op.present ? 'not ' : ''}in the document's history, but its value went from ${valueBefore} to ${value}`);
            op.present &&= inHistory.has(version);
          }
        }
        valueBefore = value;
      } finally {
        await a.close();
      }
      lap('checks');
      answersBefore = byKey;

      // What the promise allows a kill to take back: the acknowledged group-committed operations after the last that is in.
      const present = ops.filter((op) => op.present);
      const lastSent = Math.max(-Infinity, ...present.map((op) => op.sentAt));
      for (const op of ops) {
        if (op.ackAt === undefined || op.present) continue;
        const age = (killAt - op.ackAt).toFixed(1);
        const what = `${describe(op)}, answered ${age} ms before the kill,`;
        if (!GROUP_COMMITTED.has(op.kind)) fail(`acknowledged ${what} is missing (it is on disk before it is acknowledged)`);
        else if (op.ackAt < lastSent) {
          const later = present.find((other) => other.sentAt === lastSent)!;
          fail(`acknowledged ${what} is missing, yet ${describe(later)}, sent ${(lastSent - op.ackAt).toFixed(1)} ms after that answer, is in (a crash may take back only the last batches)`);
        } else {
          lostInWindow += 1;
          oldestLostMs = Math.max(oldestLostMs, killAt - op.ackAt);
        }
      }

      const after = await scanJournal(join(reopened, 'journal'), identity.principal);
      if (after.broken || after.goodLength !== after.size || after.unsealed !== 0) {
        fail(`the reopened journal does not verify whole and sealed: ${after.broken?.message ?? `${after.size - after.goodLength} bytes past the last record, ${after.unsealed} records unsealed`}`);
      }

      const b = await openKernel({ home: rebuilt, create: false, clock: () => now });
      try {
        for (const line of differences(answersA, await queryAnswers(b, setup, delegations))) fail(`the reopened home and a rebuild from its journal differ: ${line}`);
      } finally {
        await b.close();
      }
      lap('rebuild');
      const count = (kind: OpKind) => ops.filter((op) => op.kind === kind && op.ackAt !== undefined).length;
      if (!options.verbose && options.progressEvery && (cycle + 1) % options.progressEvery === 0) {
        log(`${cycle + 1} kills in ${((performance.now() - began) / 1000).toFixed(0)} s, ${failures.length} failures, ${records} records, last restart ${node.startMs.toFixed(0)} ms`);
      }
      if (options.verbose) {
        log(`cycle ${cycle}: killed after ${loadFor} ms (node CPU ${nodeCpu} ms); restart ${node.startMs.toFixed(0)} ms; acknowledged ${count('call')} calls, ${count('hit')} hits, ${count('apply')} applies, ${count('delegate')} delegations, ${count('through')} calls through them, ${count('revoke')} revocations; ${crashed.size - crashed.goodLength} torn bytes; ${blocks.checked} blocks; ${records} records; ms: ${laps.join(', ')}`);
      }
    } finally {
      await rm(reopened, { recursive: true, force: true });
      await rm(rebuilt, { recursive: true, force: true });
    }
    next ??= restart();
    if (failures.length > 0 && options.stopOnFailure) {
      await (await next.catch(() => undefined))?.kill();
      return report();
    }
    node = await next;
    restartMs.push(node.startMs);
  }
  // The last restart is stopped, not killed.
  await node.stop();
  return report();
};
