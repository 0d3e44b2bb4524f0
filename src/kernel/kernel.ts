/// <reference types="ses" />
/**
 * The kernel: publish modules, issue closures, answer calls, revoke.
 *
 * It holds no ambient authority of its own: the block store, identity,
 * journal, clock, randomness and timers are passed in as powers, so the same
 * core runs on a Node home directory, in memory for tests, or in a browser
 * tab. Every call ends in exactly one outcome — fulfilled, revoked or
 * promised — and never throws: a bad token, bad arguments or a closure that
 * throws all end as `revoked` with a reason a person can read.
 *
 * This class composes the parts that do the work, each owning one kind of
 * state. The journal is the only source of that state: every entry, the
 * ones read back when a home opens and the ones appended live, goes through
 * the same `#apply`, so what a restart rebuilds is what the live kernel knew.
 */
import { CID } from 'multiformats/cid';
import { asToken, quote, type ModuleId, type Principal, type Token } from '../interface/ids.js';
import type { BlockStore } from '../store/types.js';
import type { Identity } from '../identity/identity.js';
import { revoked, MAX_REASON, type Outcome } from '../interface/outcome.js';
import type { Closure } from '../closures/closure.js';
import type { GridValue } from '../closures/values.js';
import type { ModuleAnalyses } from '../closures/modules.js';
import { encodedPayload, type BatchEnd, type Entry, type Journal } from '../journal/journal.js';
import { ReputationTally, type Reputation } from '../journal/reputation.js';
import { disclose, type Disclosure } from '../journal/disclosure.js';
import { RecordQueries } from '../journal/record-queries.js';
import { memoryListStore, RecordIndex, type ListStore } from '../db/records.js';
import { VatPool } from '../vat/pool.js';
import type { RevocationNotice } from './revocations.js';
import { makeModuleTable, type ModuleTable } from './module-table.js';
import { makeClosureTable, type ClosureTable, type IssuedToken } from './closure-table.js';
import { makeDelegationTable, type DelegationTable } from './delegation-table.js';
import { makeRevocationTable, type RevocationTable } from './revocation-table.js';
import { makeCallIndex, type CallIndex } from './call-index.js';
import { makeApprovals, type Approvals } from './approvals.js';
import { makePolicies, type Policies } from './policies.js';
import { makeCallPipeline, type CallPipeline } from './calls.js';
import { KeptAnswer, PureCallCache } from './pure-cache.js';
import { makeQuotaKeeper } from './quota.js';
import { untilSettled } from './until-settled.js';
import { encodeSnapshot, SNAPSHOT_FORMAT, type PartsSnapshot, type Snapshot, type SnapshotStore } from './snapshot.js';
import { encode } from '../wire/index.js';
import { makeDocuments, type Documents } from '../docs/documents.js';
import { makeDocsApi, type DocsApi } from '../docs/api.js';
import { makeSync, type Sync, type SyncRequest } from '../docs/sync.js';
import type { Bundle } from '../docs/documents.js';
import {
  DEFAULT_LIMITS,
  KernelError,
  REMOTE_GRACE_MS,
  type Answer,
  type AnswerOptions,
  type CallOptions,
  type ChainBlocks,
  type DelegateSpec,
  type IssueSpec,
  type Forwarder,
  type KernelLimits,
  type PendingView,
  type Replica,
  type RevocationListener,
} from './types.js';

export * from './types.js';
export { untilSettled } from './until-settled.js';

export interface KernelPowers {
  readonly store: BlockStore;
  readonly identity: Identity;
  readonly journal: Journal;
  readonly clock: () => number;
  readonly randomBytes: (length: number) => Uint8Array;
  readonly setTimer: (ms: number, callback: () => void) => () => void;
  readonly limits?: Partial<KernelLimits>;
  /** The policies shipped with the node, by name (`expiry`, `rate`, …): module source text. */
  readonly policies?: Readonly<Record<string, string>>;
  /** Called once the journal is closed (e.g. to release the home lock). */
  readonly onClose?: () => Promise<void>;
  /** Where lines logged by closures (grid.log) go; dropped if absent. */
  readonly log?: (token: Token, line: string) => void;
  /** Peers to ask about tokens this node does not hold (forwarding); none if absent. */
  readonly forward?: Forwarder;
  /** Serving this kernel to the network and calling other nodes; the kernel has no network without it. */
  readonly network?: Network;
  /** Module analyses kept between runs (a home keeps them in files); every module is parsed when loaded without it. */
  readonly analyses?: ModuleAnalyses;
  /** The state derived from the journal's records before its position (kernel/snapshot.ts), checked against the journal by the opener; none to replay the whole journal. */
  readonly snapshot?: Snapshot;
  /** Where snapshots are kept (a home's database); none: the kernel keeps no snapshot and a restart replays the whole journal. */
  readonly snapshots?: SnapshotStore;
  /** The merge modules shipped with the node, by name (`json`, `union`): module source text, each exporting `merge`. */
  readonly merges?: Readonly<Record<string, string>>;
  /** Where the record index is kept (the home's database); in memory without it (db/records.ts). */
  readonly recordStore?: ListStore;
  /**
   * When a snapshot is due, with `snapshots`: after `records` records and no
   * sooner than `ms` after the last (10,000 and 2 s by default). A node that
   * is never closed — a tab, which a reload ends — takes them sooner.
   */
  readonly snapshotEvery?: { readonly records: number; readonly ms: number };
}

/** What the kernel needs of a network: the Node wiring gives WebSockets. */
export interface Network {
  /** Serve `kernel` to peers and clients; resolves once it listens. */
  listen(kernel: Kernel, options: { host?: string; port?: number }): Promise<{ readonly url: string; close(): Promise<void> }>;
  /** Call a token on the node at `url`, as this kernel's principal. Never rejects. */
  call(url: string, token: string, args: readonly unknown[], options: { follow?: boolean; timeoutMs: number; signal?: AbortSignal }): Promise<Outcome>;
  /** Drop every connection it opened. */
  close(): Promise<void>;
}

/** By default a snapshot is due after this many records, and no sooner than this long after the last (each costs encoding every part). */
const SNAPSHOT_EVERY = Object.freeze({ records: 10_000, ms: 2_000 });

export class Kernel {
  readonly #powers: KernelPowers;
  readonly limits: KernelLimits;
  readonly #vats: VatPool;
  readonly #modules: ModuleTable;
  readonly #closures: ClosureTable;
  readonly #delegations: DelegationTable;
  readonly #revocations: RevocationTable;
  readonly #calls: CallIndex;
  readonly #cache: PureCallCache;
  readonly #reputation = new ReputationTally();
  readonly #policies: Policies;
  readonly #approvals: Approvals;
  readonly #pipeline: CallPipeline;
  readonly #docs: Documents;
  readonly #sync: Sync;
  /** Documents: create them, apply changes, read, settle conflicts (`../docs/api.ts`). */
  readonly docs: DocsApi;
  readonly #servers: Array<{ close(): Promise<void> }> = [];
  /** The position of the latest snapshot taken (0: none), when it was taken, and its save while it runs. */
  #snapshotSeq = 0;
  #snapshotAt = 0;
  get #snapshotEvery() {
    return this.#powers.snapshotEvery ?? SNAPSHOT_EVERY;
  }
  #saving: Promise<void> | undefined;
  #closed = false;
  #records: RecordQueries | undefined;

  private constructor(powers: KernelPowers) {
    this.#powers = powers;
    const limits = (this.limits = harden({ ...DEFAULT_LIMITS, ...powers.limits }));
    const { store, identity, journal, clock, randomBytes, setTimer } = powers;
    const modules = (this.#modules = makeModuleTable({ store, wasmMaxPages: limits.wasmMaxPages, shipped: powers.policies ?? {}, analyses: powers.analyses }));
    this.#vats = new VatPool({ moduleRecord: (id) => modules.record(id), setTimer }, limits);
    const closures = (this.#closures = makeClosureTable({ store, identity, randomBytes, modules, journal }));
    const quota = makeQuotaKeeper({ quota: limits.storage, clock, exempt: identity.principal });
    const revocations = (this.#revocations = makeRevocationTable({
      identity,
      journal,
      delegationOf: (token) => this.#delegations.delegationOf(token),
      closureHere: (token) => closures.here(token),
      quota,
    }));
    this.#delegations = makeDelegationTable({
      store,
      identity,
      randomBytes,
      journal,
      closures,
      modules,
      quota,
      revokedReason: revocations.reasonFor,
      learned: revocations.learned,
      documentRole: (sealed) => this.#docs.roleBySealed(sealed),
    });
    this.#calls = makeCallIndex();
    this.#cache = new PureCallCache(limits);
    this.#policies = makePolicies({
      modules,
      vats: this.#vats,
      journal,
      clock,
      setTimer,
      callTimeoutMs: limits.callTimeoutMs,
      reputation: (principal) => this.#reputation.of(principal),
      issuerOf: (token) => this.#reputation.issuerOf(token),
    });
    this.#approvals = makeApprovals({
      clock,
      setTimer,
      randomBytes,
      callTimeoutMs: limits.callTimeoutMs,
      maxWaitingPerCaller: limits.maxWaitingPerCaller,
      screens: this.#policies.screens,
      revokedReason: revocations.reasonFor,
      proceed: (screening, call, frame) => this.#pipeline.afterScreening(screening, call, frame),
    });
    this.#pipeline = makeCallPipeline({
      self: identity.principal,
      journal,
      clock,
      limits,
      ...(powers.forward ? { forward: powers.forward } : {}),
      ...(powers.log ? { log: powers.log } : {}),
      vats: this.#vats,
      modules,
      closures,
      delegations: this.#delegations,
      revocations,
      approvals: () => this.#approvals,
      docs: () => this.#docs,
      policies: this.#policies,
      cache: this.#cache,
      quota,
      closed: () => this.#closed,
    });
    this.#docs = makeDocuments({
      store,
      identity,
      journal,
      clock,
      randomBytes,
      publish: (source) => modules.publish(source),
      issue: (spec) => closures.issue(spec),
      run: (token, args, options) => this.#pipeline.runAsNode(token, args, options),
      chainOf: (token) => this.#delegations.chainFrom(token),
      delegate: async (token, to) => {
        const delegated = await this.#delegations.delegate({ token, to: [to] });
        return { token: delegated, chain: (await this.#delegations.chainBlocks(delegated))! };
      },
      revokedAt: revocations.revokedAt,
      revocationNotice: (token) => revocations.noticeOf(token),
      hearRevocation: (notice, from) => revocations.hear(notice, from),
      setTimer,
      soon: (callback) => void setImmediate(callback),
      weightOf: (principal) => {
        const { fulfilled: kept, broken } = this.#reputation.of(principal);
        return (kept + 1) / (broken + 1);
      },
      shippedMerges: powers.merges ?? {},
    });
    this.#sync = makeSync({
      self: identity.principal,
      docs: this.#docs,
      journal,
      delegationOf: (token) => this.#delegations.delegationOf(token),
      chainOf: (token) => this.#delegations.chainFrom(token),
      screenable: (outer) => this.#delegations.screenable(outer),
      importChain: (token, blocks, importer) => this.#delegations.importChain(token, blocks, importer),
      closureHere: (token) => closures.here(token),
      adopt: (token, replica) => closures.adopt(token, replica),
      clock,
      ...(modules.policyNames.has('expiry') ? { expiryPolicy: modules.policyNames.get('expiry')! } : {}),
    });
    this.docs = makeDocsApi(this.#docs, identity, (token, args) => this.call(token, args), (token) => {
      const closure = closures.loaded(token as Token);
      return closure && this.#docs.isRole(closure) && !revocations.isRevoked(closure.token) ? closure : undefined;
    }, this.#sync);
  }

  /**
   * A kernel over `powers`, its state rebuilt from the journal through
   * `#apply` — from a snapshot's parts and the records after its position,
   * or from every record — then kept by every record appended.
   */
  static async open(powers: KernelPowers): Promise<Kernel> {
    const kernel = new Kernel(powers);
    const { journal, snapshot } = powers;
    // The replay: a snapshot's parts stand for every record before its position; the records after it, in order.
    if (snapshot) kernel.#restoreParts(snapshot.parts);
    for await (const entry of journal.read(snapshot ? snapshot.position : 0)) kernel.#apply(entry);
    journal.onAppend((entry) => kernel.#apply(entry));
    kernel.#snapshotSeq = snapshot?.position.seq ?? 0;
    kernel.#snapshotAt = powers.clock();
    if (powers.snapshots) {
      // As many records replayed as make a snapshot due (a node ended without closing): kept now, not replayed again at the next open.
      const end = journal.batchEnd();
      if (end.seq - kernel.#snapshotSeq >= kernel.#snapshotEvery.records) kernel.#snapshotOn(end, Promise.resolve(), true);
      journal.onBatch((end, written) => kernel.#snapshotOn(end, written));
    }
    const { index } = await RecordIndex.open(journal, powers.recordStore ?? memoryListStore());
    kernel.#records = new RecordQueries(journal, index);
    return kernel;
  }

  /**
   * Keep a snapshot of the parts at a batch's end (every record appended so
   * far is in it), stored once the batch is in the file: when enough records
   * and time have passed since the last one, and always at close. A restart
   * then replays at most about `snapshotEvery.records` records. One save at a time:
   * a batch cut while one is being stored waits for a later batch.
   */
  #snapshotOn(end: BatchEnd, written: Promise<void>, now = false) {
    const every = this.#snapshotEvery;
    const due = now || this.#closed || (end.seq - this.#snapshotSeq >= every.records && this.#powers.clock() - this.#snapshotAt >= every.ms);
    if (!due || this.#saving) return;
    const bytes = this.#snapshotBytes(end);
    this.#snapshotSeq = end.seq;
    this.#snapshotAt = this.#powers.clock();
    const store = this.#powers.snapshots!;
    this.#saving = written
      .then(() => store.save(bytes))
      // A snapshot not saved costs only replay time at the next start.
      .catch(() => {})
      .finally(() => {
        this.#saving = undefined;
      });
  }

  /** What one journal entry changes, in every part that keeps state: on replay and live alike. */
  #apply(entry: Entry) {
    this.#calls.opened(entry);
    this.#reputation.add(entry);
    this.#closures.apply(entry);
    this.#revocations.apply(entry, this.#calls.of);
    this.#policies.apply(entry);
    this.#docs.apply(entry);
    if (entry.kind === 'revoke' || entry.kind === 'revocation') this.#cache.forget(entry.token);
    else if (entry.kind === 'hit') this.#cache.used(entry.from);
    else if (entry.kind === 'fulfilled' && entry.pure) {
      const call = this.#calls.of(entry.call)?.entry;
      if (call && !this.#revocations.isRevoked(call.token)) {
        this.#cache.set(call.token, encodedPayload(call)!, new KeptAnswer(entry.seq, encodedPayload(entry)!));
      }
    }
    this.#calls.settled(entry);
  }

  /** What every part derived from the journal's records so far (kernel/snapshot.ts). */
  #partsSnapshot(): PartsSnapshot {
    return {
      calls: this.#calls.snapshot(),
      reputation: this.#reputation.snapshot(),
      closures: this.#closures.snapshot(),
      revocations: this.#revocations.snapshot(),
      policies: this.#policies.snapshot(),
      docs: this.#docs.snapshot(),
      cache: this.#cache.snapshot(),
    };
  }

  /** A snapshot of every part, standing at `end` (the caller knows every record before it is applied). */
  #snapshotBytes(end: BatchEnd): Uint8Array {
    return encodeSnapshot({ format: SNAPSHOT_FORMAT, position: end, parts: this.#partsSnapshot() });
  }

  /** Take back a snapshot's parts, into a kernel that has applied no record yet. */
  #restoreParts(parts: PartsSnapshot) {
    this.#calls.restore(parts.calls);
    this.#reputation.restore(parts.reputation);
    this.#closures.restore(parts.closures);
    this.#revocations.restore(parts.revocations);
    this.#policies.restore(parts.policies);
    this.#docs.restore(parts.docs);
    // The cache's answers come in on timers once the node serves (the first use takes in the rest at once).
    this.#cache.restore(parts.cache, this.#powers.setTimer);
  }

  /** The state derived from the journal as canonical bytes: a kernel restored from a snapshot and one that replayed every record give the same. */
  stateSnapshot(): Uint8Array {
    return encode(this.#partsSnapshot());
  }

  /** What this node hosts, as its web page lists it: the closures issued here (oldest first, with the calls asked of each), and the delegations its journal records. */
  hosted(): { tokens: IssuedToken[]; delegations: number } {
    return { tokens: this.#closures.issued(), delegations: this.#reputation.delegations };
  }

  /** Fulfilled, broken and pending promises per issuer, from this node's promise graph. */
  reputation(): Reputation[] {
    return this.#reputation.rows();
  }

  /** The policies shipped with this node: name → module id. */
  get policies(): ReadonlyMap<string, ModuleId> {
    return this.#modules.policyNames;
  }

  get principal(): Principal {
    return this.#powers.identity.principal;
  }

  get journal(): Journal {
    return this.#powers.journal;
  }

  /** What the journal's records say, looked up through the record index (journal/record-queries.ts). */
  get records(): RecordQueries {
    if (!this.#records) throw new KernelError('ERR_NOT_OPEN', 'a kernel is opened with Kernel.open');
    return this.#records;
  }

  /** Store a JS or WebAssembly module; returns its CID. Refuses forbidden imports. */
  async publish(payload: string | Uint8Array): Promise<ModuleId> {
    this.#assertOpen();
    return this.#modules.publish(payload);
  }

  /** Make a closure over a published module; returns its token. */
  async issue(spec: IssueSpec): Promise<Token> {
    this.#assertOpen();
    return this.#closures.issue(spec);
  }

  /** Read a closure record (verifying its signature). */
  async closure(token: string): Promise<Closure> {
    return this.#closures.closure(token);
  }

  /**
   * The signed record of a closure issued here, as stored: what a node that
   * cannot be dialled (a tab) hands the node it joins, so that calls on the
   * token are routed to it (net/hosted.ts).
   */
  async issuedRecord(token: string): Promise<Uint8Array> {
    const closure = await this.#closures.closure(token);
    if (closure.issuer !== this.principal) throw new KernelError('ERR_NOT_ISSUED', `${quote(token)} was issued by ${closure.issuer}, not here`);
    return this.#powers.store.get(CID.parse(closure.token));
  }

  /**
   * A replicable closure's blocks, for `peer`, who holds its token. Refused
   * for a closure that is not replicable, not here, or revoked. The peer
   * hears of a later revocation as it would of cached answers.
   */
  async replica(token: string, peer: Principal): Promise<Replica> {
    const replica = await this.#closures.replica(token);
    const reason = this.#revocations.reasonFor(replica.token);
    if (reason !== undefined) throw new KernelError('ERR_REVOKED', reason);
    this.#powers.journal.append({ kind: 'replicated', token: replica.token, to: peer });
    return { closure: replica.closure, modules: replica.modules };
  }

  /** A document's versions that `peer` lacks, if its request's token reaches the document for it (docs/sync.ts): a bundle, or a refusal. */
  syncBundle(request: SyncRequest, peer: Principal): Promise<Outcome> {
    if (this.#closed) return Promise.resolve(revoked('shut-down', 'kernel is closed'));
    return this.#sync.serve(request, peer);
  }

  /** What this node tells a peer it holds of `doc`, and whether it holds version `cid` (sync, docs/sync.ts). */
  syncHaves(doc: string, max: number): Promise<string[]> {
    return this.#sync.haves(doc, max);
  }
  syncKnows(cid: string): Promise<boolean> {
    return this.#sync.knows(cid);
  }
  /** The document held here that `token` reaches (sync: which peers hear of its revocation). */
  syncDocOf(token: Token): Promise<string | undefined> {
    return this.#sync.docOfToken(token);
  }

  /** Take in a peer's answer to this node's sync request, fetching the closures a first copy needs with `fetch` (docs/sync.ts `take`). */
  syncTake(bundle: Bundle, options: { token?: Token; from: Principal; fetch: (token: Token) => Promise<Replica> }) {
    this.#assertOpen();
    return this.#sync.take(bundle, options);
  }

  /** Take in a replica fetched from a peer (checked as if published here); see ClosureTable.adopt. */
  async adopt(token: Token, replica: Replica): Promise<Closure> {
    return this.#closures.adopt(token, replica);
  }

  /**
   * Delegate a token this node issued, or one delegated to it: a screener
   * around it for `to`, applying `policies` in order. Returns the new token.
   */
  async delegate(spec: DelegateSpec): Promise<Token> {
    this.#assertOpen();
    return this.#delegations.delegate(spec);
  }

  /** What a call through delegated `token` must carry for a node that has never seen its chain. */
  async chainBlocks(token: string): Promise<ChainBlocks | undefined> {
    return this.#delegations.chainBlocks(token);
  }

  /** Take in the chain of delegated `token`; see DelegationTable.importChain. */
  async importChain(token: string, blocks: ChainBlocks, importer?: Principal): Promise<boolean> {
    return this.#delegations.importChain(token, blocks, importer);
  }

  /** Break the promise: every later call through `token` is revoked, even after a crash. */
  async revoke(token: string, reason?: string): Promise<void> {
    this.#assertOpen();
    const checked = asToken(token);
    // Revoked already: nothing to do, and nothing to read (`grid gc` may have collected its record).
    if (this.#revocations.isRevoked(checked)) return;
    // A delegation is revoked by its delegator: that breaks it and what was delegated through it, nothing else.
    const delegation = await this.#delegations.delegationOf(checked);
    const authority = delegation ? delegation.delegator : (await this.#closures.closure(checked)).issuer;
    if (authority !== this.#powers.identity.principal) {
      throw new KernelError('ERR_NOT_ISSUER', delegation ? `only the delegator (${authority}) can revoke this delegation` : `only the issuer (${authority}) can revoke this token`);
    }
    await this.#revocations.revoke(checked, String(reason ?? (delegation ? 'revoked by delegator' : 'revoked by issuer')).slice(0, MAX_REASON));
  }

  isRevoked(token: Token): boolean {
    return this.#revocations.isRevoked(token);
  }

  /** A revocation from peer `from`; true if it was news. See RevocationTable.hear. */
  async hearRevocation(notice: RevocationNotice, from: Principal): Promise<boolean> {
    return this.#revocations.hear(notice, from);
  }

  /** This journal's records about `token` that `requester` may see, signed by this node (journal/disclosure.ts). */
  disclose(token: string, requester: Principal): Promise<Disclosure> {
    this.#assertOpen();
    return disclose(this.#powers.journal, this.#powers.identity, asToken(token), requester, this.#powers.clock(), undefined, this.records);
  }

  /** Revocations that `peer` was given cacheable answers for: what it must hear on connecting. */
  revocationsFor(peer: Principal): Promise<RevocationNotice[]> {
    return this.#revocations.revocationsFor(peer);
  }

  /** Listen for revocations made or heard here; returns a function that stops listening. */
  onRevocation(listener: RevocationListener): () => void {
    return this.#revocations.onRevocation(listener);
  }

  /** The signed notice of a revocation made or heard here, to hand to a node that must hear it. */
  revocationNotice(token: string): Promise<RevocationNotice | undefined> {
    return this.#revocations.noticeOf(asToken(token));
  }

  /** The calls waiting here for approvals that concern `principal` (to approve, or to collect). */
  pendingFor(principal: Principal): PendingView[] {
    return this.#approvals.pendingFor(principal);
  }

  /**
   * Call a token, as this node or as `options.caller` (an authenticated
   * peer, with `options.path` the nodes a forwarded call passed). Never
   * throws: every failure is a revoked outcome.
   */
  async call(token: string, args: readonly unknown[] = [], options: CallOptions = {}): Promise<Outcome> {
    if (options.follow && options.waitMs !== undefined) {
      const { waitMs, ...once } = options;
      return untilSettled(await this.call(token, args, once), (further) => this.call(further, [], { ...once, chain: undefined }), waitMs, this.#powers.setTimer, this.#powers.clock);
    }
    if (options.via !== undefined) {
      if (this.#closed) return revoked('shut-down', 'kernel is closed');
      if (!this.#powers.network) return revoked('unreachable', 'this kernel has no network');
      // The other node's own limit decides; this one only stops waiting on a node that does not answer at all.
      return this.#powers.network.call(options.via, token, args, { follow: options.follow, timeoutMs: this.limits.callTimeoutMs + REMOTE_GRACE_MS, ...(options.signal ? { signal: options.signal } : {}) });
    }
    return (await this.answer(token, args, options)).outcome;
  }

  /** `call`, and whether whoever receives the outcome may cache it (the answer a node gives a peer). */
  async answer(token: string, args: readonly unknown[] = [], options: AnswerOptions = {}): Promise<Answer> {
    return this.#pipeline.answer(token, args, options);
  }

  /** `answer` at once for a peer's call the pure-call cache answers (a hit, journaled), else undefined: see CallPipeline.answerCached. */
  answerCached(token: Token, args: readonly GridValue[], argsBytes: Uint8Array, caller: Principal): Answer | undefined {
    return this.#pipeline.answerCached(token, args, argsBytes, caller);
  }

  /** Serve this kernel on a WebSocket; resolves with its URL (`ws://host:port`). Stops when the kernel closes. */
  async listen(options: { host?: string; port?: number } = {}): Promise<string> {
    this.#assertOpen();
    if (!this.#powers.network) throw new KernelError('ERR_NO_NETWORK', 'this kernel has no network');
    const server = await this.#powers.network.listen(this, options);
    this.#servers.push(server);
    return server.url;
  }

  #assertOpen() {
    if (this.#closed) throw new KernelError('ERR_CLOSED', 'kernel is closed');
  }

  /** Make the journal durable. */
  flush(): Promise<void> {
    this.#policies.writeStates();
    return this.#powers.journal.flush();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#cache.stopRestoring();
    try {
      for (const server of this.#servers) await server.close();
      await this.#powers.network?.close();
      await this.#vats.close();
      this.#approvals.close();
      this.#docs.close();
      this.#policies.writeStates();
      await this.#powers.journal.close();
      // Closing may have cut a last batch, and with it a last snapshot; if it did not (nothing was
      // left to write), the state stands at the journal's end all the same: kept before the home is let go.
      await this.#saving;
      const end = this.#powers.journal.batchEnd();
      if (this.#powers.snapshots && end.seq > this.#snapshotSeq) {
        await this.#powers.snapshots.save(this.#snapshotBytes(end)).catch(() => {});
      }
      await this.#records?.index.settled();
    } finally {
      await this.#powers.onClose?.();
    }
  }
}
