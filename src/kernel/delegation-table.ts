/**
 * Delegations this node made or was sent: signed records in the block
 * store, read and checked once and kept in memory, with the chains through
 * them verified once (their links are immutable; only revocations need
 * checking again, at each call). Every delegation made or taken in here is
 * journaled as a `wrap`: the promise graph shows it, and the original
 * closure's issuer is thereby one who must hear of its revocation
 * (revocation-table.ts reads that from the same record).
 */
import type { Closure } from '../closures/closure.js';
import { CID } from 'multiformats/cid';
import { asModuleId, asToken, DAG_CBOR_CODEC, type Principal, type Token } from '../interface/ids.js';
import { blockCid } from '../store/hashing.js';
import type { Identity } from '../identity/identity.js';
import { readClosure } from '../closures/closure.js';
import type { GridValue } from '../closures/values.js';
import type { Journal } from '../journal/journal.js';
import { decode } from '../wire/index.js';
import { isDelegationRecord, makeDelegation, MAX_CHAIN, readDelegation, sealToken, verifyChain, type Delegation, type PolicyRef } from '../delegation/delegation.js';
import type { BlockStore } from '../store/types.js';
import type { ClosureTable } from './closure-table.js';
import { MAX_REPLICA_MODULES } from './closure-table.js';
import type { ModuleTable } from './module-table.js';
import type { QuotaKeeper } from './quota.js';
import { KernelError, type ChainBlocks, type DelegateSpec } from './types.js';

export type DelegationTable = ReturnType<typeof makeDelegationTable>;

/** Delegations, and verified chains, kept in memory: each a few hundred bytes, read again from the store past this. */
const MAX_HELD = 10_000;

export const makeDelegationTable = ({
  store,
  identity,
  randomBytes,
  journal,
  closures,
  modules,
  quota,
  revokedReason,
  learned,
  documentRole,
}: {
  store: BlockStore;
  identity: Identity;
  randomBytes: (length: number) => Uint8Array;
  journal: Journal;
  closures: ClosureTable;
  modules: ModuleTable;
  quota: QuotaKeeper;
  revokedReason: (token: Token) => string | undefined;
  /** Told of each delegation when it is first read or made here (a revocation of it may have come first). */
  learned: (delegation: Delegation) => void;
  /** A document's role a replica holds by its sealed reference only (documents.ts `roleBySealed`): a chain may end there. */
  documentRole: (sealed: string) => Closure | undefined;
}) => {
  /** The closure a chain's innermost link wraps, if this node holds it (or, for a document's role, holds the document). */
  const rootOf = async (sealed: string) => (await closures.sealedBy(sealed)) ?? documentRole(sealed);
  /** Delegations read here: a cache of the store, the oldest forgotten past MAX_HELD (read again when next needed). */
  const delegations = new Map<Token, Delegation>();
  /** Chains verified once, by their outermost token; likewise bounded. */
  const chains = new Map<Token, Delegation[]>();
  const hold = <T>(held: Map<Token, T>, token: Token, value: T) => {
    if (held.size >= MAX_HELD && !held.has(token)) held.delete(held.keys().next().value!);
    held.set(token, value);
  };

  const learn = (delegation: Delegation) => {
    hold(delegations, delegation.token, delegation);
    learned(delegation);
  };

  /** A delegation record, from memory or the store; undefined if `token` names anything else. */
  const delegationOf = async (token: Token): Promise<Delegation | undefined> => {
    const known = delegations.get(token);
    if (known || closures.loaded(token)) return known;
    let bytes: Uint8Array | undefined;
    let record: unknown;
    try {
      bytes = await closures.tokenBlock(token);
      if (!bytes) return undefined;
      record = decode(bytes);
    } catch {
      return undefined;
    }
    if (!isDelegationRecord(record)) {
      // A closure record, read anyway: keep it, so that loading it next does not read it again.
      try {
        closures.hold(readClosure(token, bytes));
      } catch {
        // Not a valid closure either: whoever loads it as one gets the reason.
      }
      return undefined;
    }
    const delegation = readDelegation(token, bytes);
    learn(delegation);
    return delegation;
  };

  /** The chain from `outer` down to the link that wraps the original closure, outermost first. */
  const chainOf = async (outer: Delegation): Promise<Delegation[]> => {
    const chain = [outer];
    const below = async (link: Delegation) => (closures.tokenSealedAs(link.inner) ? undefined : delegationOf(link.inner as Token));
    for (let next = await below(outer); next; next = await below(next)) {
      if (chain.length >= MAX_CHAIN) throw new KernelError('ERR_BAD_CHAIN', `a delegation chain has at most ${MAX_CHAIN} links`);
      chain.push(next);
    }
    return chain;
  };

  /** Journal a delegation made or seen here, with the original closure's issuer, who answers calls through it. */
  const recordWrap = (link: Delegation, issuer: Principal) =>
    journal.append({
      kind: 'wrap',
      token: link.token,
      // This node's own graph names the closure when it holds it; the record itself never does.
      inner: closures.tokenSealedAs(link.inner) ?? link.inner,
      delegator: link.delegator,
      audience: link.audience,
      policies: link.policies.map((p) => p.module),
      issuer,
    });

  return harden({
    /** Whether `token` is a delegation read here lately (if not, the store says). */
    known: (token: Token) => delegations.has(token),
    delegationOf,

    /** The chain `token` names, outermost first, down to the link that wraps a closure; empty if `token` is no delegation. At most MAX_CHAIN links, else it throws. */
    async chainFrom(token: Token): Promise<Delegation[]> {
      const outer = await delegationOf(token);
      return outer ? chainOf(outer) : [];
    },

    /**
     * The chain under `outer` and the closure it ends at, if this node holds
     * it; the chain is checked (links, audiences, issuer, revocations) each
     * time, read and verified from the store only the first time.
     */
    async screenable(outer: Delegation) {
      const chain = chains.get(outer.token) ?? (await chainOf(outer));
      const root = await rootOf(chain.at(-1)!.inner);
      if (!root) return undefined;
      verifyChain(chain, root, revokedReason);
      hold(chains, outer.token, chain);
      return { chain, root };
    },

    /**
     * Delegate a token this node issued, or one delegated to it: a screener
     * around it for `to`, applying `policies` in order. Returns the new token.
     */
    async delegate(spec: DelegateSpec): Promise<Token> {
      const inner = asToken(spec.token);
      const self = identity.principal;
      const below = await delegationOf(inner);
      let issuer: Principal;
      if (below) {
        if (!below.audience.includes(self)) throw new KernelError('ERR_NOT_AUDIENCE', `${inner} is delegated to ${below.audience.join(', ')}, not to ${self}`);
        issuer = (await chainOf(below)).at(-1)!.delegator;
      } else {
        const closure = await closures.closure(inner);
        if (closure.issuer !== self) {
          throw new KernelError('ERR_NOT_ISSUER', `you can delegate only tokens you issued or that were delegated to you (${inner} was issued by ${closure.issuer})`);
        }
        issuer = self;
      }
      const reason = revokedReason(inner);
      if (reason !== undefined) throw new KernelError('ERR_REVOKED', `${inner} is revoked: ${reason}`);
      const policies: PolicyRef[] = [];
      for (const { module, settings } of spec.policies ?? []) {
        const id = modules.policyNames.get(module) ?? asModuleId(module);
        await modules.loadPolicy(id);
        if (!modules.exportsOf(id).includes('screen')) throw new KernelError('ERR_NOT_A_POLICY', `module ${id} exports no screen function`);
        policies.push({ module: id, settings: (settings ?? null) as GridValue });
      }
      // A closure is named by its sealed reference: the chain must not hand its holders the original token.
      const wrapped = below ? inner : sealToken(inner);
      const { bytes, delegation } = await makeDelegation({ inner: wrapped, audience: spec.to, policies }, identity, randomBytes(16));
      await closures.putToken(delegation.token, bytes);
      learn(delegation);
      recordWrap(delegation, issuer);
      return delegation.token;
    },

    /**
     * What a call through delegated `token` must carry for a node that has
     * never seen its chain: the records, and the policy modules not shipped
     * with every node. Undefined for a token that is not a delegation.
     */
    async chainBlocks(token: string): Promise<ChainBlocks | undefined> {
      const outer = await delegationOf(asToken(token));
      if (!outer) return undefined;
      const chain = await chainOf(outer);
      const links = await Promise.all(chain.map((link) => store.get(CID.parse(link.token))));
      const policyModules = chain.flatMap((link) => link.policies.map((p) => p.module)).filter((id) => !modules.isShipped(id));
      return { links, modules: await modules.blocks([...new Set(policyModules)]) };
    },

    /**
     * Take in the chain of delegated `token` (from a grid URL, or sent with a
     * call): links outermost first, each wrapping the next, every signature
     * checked. Throws what is wrong, naming the link. A chain that ends at a
     * closure held here must hold up (each link made by one its inner link
     * names; revocations are checked at each call) before anything of it is
     * stored; one that ends elsewhere is stored only for this node's own
     * principal — for anyone else it is passed on with the call (false).
     * Either way what is stored counts against `importer`'s storage quota.
     */
    async importChain(token: string, blocks: ChainBlocks, importer: Principal = identity.principal): Promise<boolean> {
      if (blocks.links.length === 0 || blocks.links.length > MAX_CHAIN) throw new KernelError('ERR_BAD_CHAIN', `a delegation chain has 1 to ${MAX_CHAIN} links`);
      if (blocks.modules.length > MAX_REPLICA_MODULES) throw new KernelError('ERR_BAD_CHAIN', `a chain brings at most ${MAX_REPLICA_MODULES} modules`);
      // Links this home has (in memory or stored) are not checked again; the others are read from the bytes sent.
      const links: Delegation[] = [];
      const fresh = new Set<Delegation>();
      for (const bytes of blocks.links) {
        const linkToken = blockCid(bytes, DAG_CBOR_CODEC).toString() as Token;
        const known = await delegationOf(linkToken);
        const link = known ?? readDelegation(linkToken, bytes);
        if (!known) fresh.add(link);
        links.push(link);
      }
      if (links[0]!.token !== asToken(token)) throw new KernelError('ERR_BAD_CHAIN', `the chain sent starts with ${links[0]!.token}, not with the token called`);
      links.forEach((link, index) => {
        const next = links[index + 1];
        if (next && link.inner !== next.token) {
          throw new KernelError('ERR_BAD_CHAIN', `delegation link ${index + 1} of ${links.length} (${link.token}) wraps ${link.inner}, not the next link ${next.token}`);
        }
      });
      const root = await rootOf(links.at(-1)!.inner);
      if (root) verifyChain(links, root, () => undefined);
      else if (importer !== identity.principal) return false;
      const bytes = [...blocks.links.filter((_, index) => fresh.has(links[index]!)), ...blocks.modules].reduce((sum, block) => sum + block.length, 0);
      const refusal = quota.take(importer, bytes);
      if (refusal) throw new KernelError('ERR_QUOTA', refusal);
      await modules.take(blocks.modules);
      for (const [index, link] of links.entries()) {
        if (!fresh.has(link)) continue;
        await closures.putToken(link.token, blocks.links[index]!);
        learn(link);
        recordWrap(link, links.at(-1)!.delegator);
      }
      return true;
    },
  });
};
