/**
 * The closures this node holds: issued here or adopted from a peer's
 * replica, read from the block store on first use and kept in memory,
 * findable by token and by sealed reference (the name a delegation chain
 * gives its closure). From the journal it keeps which closures were issued
 * here, so a chain names one of them before it is first loaded, and how many
 * calls each was asked (the web page lists them without reading history).
 */
import { CID } from 'multiformats/cid';
import { asModuleId, asToken, quote, type ModuleId, type Principal, type Token } from '../interface/ids.js';
import type { BlockStore } from '../store/types.js';
import type { Identity } from '../identity/identity.js';
import { assertExportName, makeClosure, readClosure, type Closure } from '../closures/closure.js';
import type { Entry, Journal } from '../journal/journal.js';
import { sealToken } from '../delegation/delegation.js';
import { conventionOf } from '../vat-wasm/vat.js';
import type { ModuleTable } from './module-table.js';
import { KernelError, type IssueSpec, type Replica } from './types.js';

/** A closure issued here, as its `issue` record names it, and the calls asked of it since (`call` and `hit` records on its token). */
export interface IssuedToken {
  readonly token: Token;
  readonly export: string;
  readonly code: ModuleId;
  readonly issuer: Principal;
  readonly at: number;
  readonly calls: number;
}
type IssuedRow = [token: Token, exportName: string, code: ModuleId, issuer: Principal, at: number, calls: number];

/** Tokens remembered as not in the store, at most; past it the memory starts over. */
const MAX_ABSENT = 10_000;
/** Most modules a replica may bring along. */
export const MAX_REPLICA_MODULES = 64;

export type ClosureTable = ReturnType<typeof makeClosureTable>;

export const makeClosureTable = ({
  store,
  identity,
  randomBytes,
  modules,
  journal,
}: {
  store: BlockStore;
  identity: Identity;
  randomBytes: (length: number) => Uint8Array;
  modules: ModuleTable;
  journal: Journal;
}) => {
  const closures = new Map<Token, Closure>();
  /** Sealed reference → token, for the closures this node holds (see sealToken). */
  const sealed = new Map<string, Token>();
  /** Tokens the store was found not to hold (see tokenBlock), and a count of stores begun and ended. */
  const absent = new Set<Token>();
  /** The tokens issued here, in the journal's order (the part of `sealed` the journal alone derives), each with its call count. */
  const issued = new Map<Token, IssuedRow>();
  const keepIssued = (row: IssuedRow) => {
    issued.set(row[0], row);
    sealed.set(sealToken(row[0]), row[0]);
  };
  let stores = 0;

  /** Keep a closure in memory, findable by its token and by its sealed reference. */
  const hold = (closure: Closure) => {
    closures.set(closure.token, closure);
    sealed.set(sealToken(closure.token), closure.token);
  };

  /**
   * The block a token names, or undefined if the store has none. A node
   * that forwards calls is asked again and again for tokens it does not
   * hold, and a store miss is a file system round trip: misses are
   * remembered until this kernel next stores a token's block (no one else
   * writes its store). `stores` tells a miss from one that raced a store.
   */
  const tokenBlock = async (token: Token): Promise<Uint8Array | undefined> => {
    if (absent.has(token)) return undefined;
    const before = stores;
    try {
      return await store.get(CID.parse(token));
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_NOT_FOUND') throw error;
      if (before === stores) {
        if (absent.size >= MAX_ABSENT) absent.clear();
        absent.add(token);
      }
      return undefined;
    }
  };

  const putToken = async (token: string, bytes: Uint8Array): Promise<void> => {
    stores += 1;
    try {
      await store.putVerified(CID.parse(token), bytes);
    } finally {
      stores += 1;
      absent.delete(token as Token);
    }
  };

  /**
   * The closure `token` names, if this node has it; undefined rather than
   * an error when not, because a forwarding node asks that of every call
   * it passes on, and an Error costs more under lockdown than the rest.
   */
  const here = async (token: Token): Promise<Closure | undefined> => {
    const cached = closures.get(token);
    if (cached) return cached;
    let bytes: Uint8Array | undefined;
    try {
      bytes = await tokenBlock(token);
    } catch (error) {
      throw new KernelError('ERR_STORE', (error as Error).message);
    }
    if (!bytes) return undefined;
    const closure = readClosure(token, bytes);
    hold(closure);
    return closure;
  };

  /** Read a closure record (verifying its signature). */
  const closure = async (token: string): Promise<Closure> => {
    const found = await here(asToken(token));
    if (!found) throw new KernelError('ERR_UNKNOWN_TOKEN', 'unknown token');
    return found;
  };

  const issue = async (code: ModuleId, exportName: string, env: unknown, options: { timeLimitMs?: number; replicable?: boolean } = {}): Promise<Token> => {
    assertExportName(exportName);
    await modules.load(code);
    const exports = modules.exportsOf(code);
    if (!exports.includes(exportName)) {
      throw new KernelError('ERR_NO_EXPORT', `module ${code} has no export ${quote(exportName)} (it exports: ${exports.join(', ') || 'nothing'})`);
    }
    const wasm = modules.wasm(code);
    if (wasm && !conventionOf(wasm.shape, exportName)) {
      throw new KernelError('ERR_NO_EXPORT', `export ${quote(exportName)} has a signature vats cannot call: use numbers, or (i32, i32) -> i64 with memory and alloc exported`);
    }
    const made = await makeClosure({ code, export: exportName, env, ...options }, identity, randomBytes(16));
    await putToken(made.closure.token, made.bytes);
    hold(made.closure);
    journal.append({ kind: 'issue', token: made.closure.token, code, export: exportName, issuer: made.closure.issuer });
    return made.closure.token;
  };

  return harden({
    apply(entry: Entry) {
      // Closures issued here answer delegated calls that name them by their sealed reference.
      if (entry.kind === 'issue') keepIssued([entry.token, entry.export, entry.code, entry.issuer, entry.at, 0]);
      else if (entry.kind === 'call' || entry.kind === 'hit') {
        const row = issued.get(entry.token);
        if (row) row[5] += 1;
      }
    },
    /** What the journal left here: the tokens issued and their call counts (kernel/snapshot.ts). */
    snapshot: (): readonly Readonly<IssuedRow>[] => [...issued.values()],
    restore(rows: readonly Readonly<IssuedRow>[]) {
      for (const row of rows) keepIssued([...row]);
    },
    /** The closures issued here, oldest first. */
    issued: (): IssuedToken[] => [...issued.values()].map(([token, exportName, code, issuer, at, calls]) => ({ token, export: exportName, code, issuer, at, calls })),
    /** The closure in memory, if it is loaded. */
    loaded: (token: Token) => closures.get(token),
    here,
    closure,
    tokenBlock,
    putToken,
    hold,
    /** The closure a chain's innermost link names by its sealed reference, if this node holds it. */
    async sealedBy(reference: string): Promise<Closure | undefined> {
      const token = sealed.get(reference);
      return token && (closures.get(token) ?? (await here(token).catch(() => undefined)));
    },
    /** The token of a closure held here, by its sealed reference. */
    tokenSealedAs: (reference: string) => sealed.get(reference),

    /** Make a closure over a published module; returns its token. */
    issue: (spec: IssueSpec) => issue(asModuleId(spec.code), spec.export, spec.env ?? {}, { timeLimitMs: spec.timeLimitMs, replicable: spec.replicable === true }),

    /** `ctx.issue`: a closure may mint closures over its own module only. */
    issueFor(parent: Closure, spec: { export: string; env?: unknown }): Promise<Token> {
      if (parent.issuer !== identity.principal) throw new KernelError('ERR_NOT_ISSUER', "this node cannot sign for the closure's issuer");
      return issue(parent.code, spec?.export, spec?.env ?? {});
    },

    /**
     * Take in a replica fetched from a peer: every block is checked as if it
     * were published here (hash, analysis, compilation), the record's
     * signature is verified, and it must say the issuer allowed replication.
     */
    async adopt(token: Token, replica: Replica): Promise<Closure> {
      if (replica.modules.length > MAX_REPLICA_MODULES) throw new KernelError('ERR_BAD_REPLICA', `a replica brings at most ${MAX_REPLICA_MODULES} modules`);
      await modules.take(replica.modules);
      const adopted = readClosure(token, replica.closure);
      if (!adopted.replicable) throw new KernelError('ERR_BAD_REPLICA', 'the closure does not allow replication');
      if (!modules.isLoaded(adopted.code)) throw new KernelError('ERR_BAD_REPLICA', `the replica lacks module ${adopted.code}`);
      // Its CID is checked here: a record that does not hash to the token is refused.
      await putToken(token, replica.closure);
      hold(adopted);
      return adopted;
    },

    /** A replicable closure's blocks, for a peer that holds its token; refused for one that is not replicable. */
    async replica(token: string): Promise<Replica & { token: Token }> {
      const found = await closure(token);
      if (!found.replicable) throw new KernelError('ERR_NOT_REPLICABLE', 'this closure is not replicable: call it instead');
      return { token: found.token, closure: await store.get(CID.parse(found.token)), modules: await modules.blocks([found.code]) };
    },
  });
};
