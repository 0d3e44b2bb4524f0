/**
 * The checks a replica makes of versions it receives (documents.ts
 * `ingest`), before any lands: who may have authored each (a role reached
 * through a delegation unrevoked when it was made), what its reducer makes
 * of each change (chains of changes replayed in one vat hop), that a merge
 * is what its step makes of its parents, and that a rules change is backed
 * by a carried proposal. Each answers a reason, or undefined when the
 * version holds.
 */
import type { CID } from 'multiformats/cid';
import { asPrincipal, DAG_CBOR_CODEC, type Principal, type Token } from '../interface/ids.js';
import { describeThrown } from '../interface/errors.js';
import type { Outcome } from '../interface/outcome.js';
import { decodeValue, encodeValue, type GridValue } from '../closures/values.js';
import type { BlockStore } from '../store/types.js';
import { blockCid, cidText } from '../store/hashing.js';
import { verify } from '../identity/identity.js';
import { verifyChain, type Delegation } from '../delegation/delegation.js';
import { ancestors, lowestCommonAncestor } from './dag.js';
import { describeQuorum, quorumFromWire, quorumToWire, tally, voteStatement, type Choice } from './governance.js';
import { conflictToken, DocumentError, rulesProposalToken, stepName, type AuthoredVersion, type Genesis, type MergeStep, type Role, type Rules, type Version } from './records.js';

/** Roles whose holders may author a version of each kind. */
const AUTHORS: Readonly<Record<'change' | 'settle' | 'rules', readonly Role[]>> = { change: ['write', 'admin'], settle: ['settle', 'admin'], rules: ['admin'] };
/** Most changes replayed in one vat hop. */
const MAX_FOLD = 1000;

/** What the reducer made of a received change: its value's CID, or why it refused. */
export type Replayed = { readonly value: string } | { readonly reason: string };

/** Flat, made once per CID (see cidText): versions' texts are kept as keys. */
const text = cidText;

/** The members a list names: a list, or a record with a `members` list. */
export const memberList = (value: GridValue): Principal[] => {
  const list = Array.isArray(value) ? value : (value as Record<string, GridValue> | null)?.members;
  if (!Array.isArray(list)) throw new DocumentError('ERR_NO_MEMBERS', 'the member document lists no members (a list, or a record with a members list)');
  return [...new Set(list.map((member) => asPrincipal(member)))];
};

/** What the checks read of the docs part: its store and powers, the versions it holds, and its walks of a document's DAG. */
export interface CheckPowers<S extends { readonly cid: CID }> {
  readonly store: BlockStore;
  /** Run a reducer or merge step as the node; `fold` runs a reducer over a list of changes in one hop (documents.ts `DocRun`). */
  readonly run: (token: Token, args: readonly GridValue[], options?: { fold?: boolean }) => Promise<Outcome>;
  readonly chainOf: (token: Token) => Promise<readonly Delegation[]>;
  /** When a delegation was revoked: its revoker's own signed date, else when this node revoked it or heard of it. */
  readonly revokedSince: (token: Token) => number | undefined;
  readonly versions: ReadonlyMap<string, Version>;
  /** A document held here, by its genesis CID. */
  readonly held: (doc: string) => S | undefined;
  readonly parentsOf: (cid: CID) => readonly CID[];
  readonly rulesIn: (genesis: Genesis, cid: CID, lookup?: (key: string) => Version | undefined) => { readonly source: CID; readonly rules: Rules };
  /** Whether a rules change of document `doc` has landed here (until one has, the genesis's rules hold at every version held). */
  readonly ruled: (doc: CID) => boolean;
  readonly valueAt: (state: S, cid: CID) => Promise<GridValue>;
  readonly stepResult: (step: MergeStep, base: GridValue, ours: GridValue, theirs: GridValue) => Promise<Outcome>;
}

export const makeVersionChecks = <S extends { readonly cid: CID }>(deps: CheckPowers<S>) => {
  const { store, versions, parentsOf, rulesIn, valueAt, stepResult } = deps;

  /** Whether `version`'s author held a role that may author it, through `via`, unrevoked when it was made. */
  const authorized = async (genesis: Genesis, version: Version & { by: 'change' | 'settle' | 'rules' }): Promise<string | undefined> => {
    if (version.author === genesis.issuer && version.via === undefined) return undefined;
    if (version.via === undefined) return `author ${version.author} did not issue the document and names no delegation`;
    const chain = await deps.chainOf(version.via);
    const innermost = chain.at(-1);
    if (!innermost) return `delegation ${version.via} was not sent with the version`;
    if (!chain[0]!.audience.includes(version.author)) return `delegation ${version.via} was not made for ${version.author}`;
    const role = AUTHORS[version.by].find((r) => genesis.roles[r] === innermost.inner);
    if (!role) return `delegation ${version.via} does not lead to a token that may ${{ change: 'write', settle: 'settle', rules: 'administer' }[version.by]}`;
    try {
      verifyChain(chain, { token: innermost.inner as Token, sealed: innermost.inner, issuer: genesis.issuer }, () => undefined);
    } catch (error) {
      return describeThrown(error);
    }
    for (const link of chain) {
      const since = deps.revokedSince(link.token);
      if (since !== undefined && version.at >= since) return `delegation ${link.token} was revoked before this version was made`;
    }
    return undefined;
  };

  /**
   * What the reducer makes of each received change, chains of changes in
   * one vat hop each (a fold): the value's CID, or why the reducer refused.
   * A change missing here (its chain could not be folded) is replayed alone.
   * Only the candidates from `from` to `to` are replayed (those before them
   * are looked up as parents): a bundle is replayed a part at a time as it is read.
   */
  const replayChains = async (genesis: Genesis, candidates: readonly Version[], blocks: ReadonlyMap<string, Uint8Array>, from = 0, to = candidates.length): Promise<Map<string, Replayed>> => {
    const replayed = new Map<string, Replayed>();
    const sent = new Map(candidates.slice(0, to).map((version) => [text(version.cid), version]));
    const lookup = (key: string) => versions.get(key) ?? sent.get(key);
    // No rules change held here nor sent: the genesis's rules hold at every version, with no walk.
    const genesisRules = deps.ruled(genesis.cid) || [...sent.values()].some((version) => version.by === 'rules') ? undefined : { source: genesis.cid, rules: { reducer: genesis.reducer, merges: genesis.merges } };
    const blockOf = async (cid: CID) => blocks.get(text(cid)) ?? (await store.get(cid));
    // A change sent once and named by many versions is decoded once.
    const decodedChanges = new Map<string, GridValue>();
    const changeOf = async (cid: CID) => {
      let value = decodedChanges.get(text(cid));
      if (value === undefined) decodedChanges.set(text(cid), (value = decodeValue(await blockOf(cid))));
      return value;
    };
    let index = from;
    while (index < to) {
      const first = candidates[index]!;
      if (first.by !== 'change' || first.parents.length !== 1 || !first.change) {
        index += 1;
        continue;
      }
      const chain = [first];
      for (let next = index + chain.length < to ? candidates[index + chain.length] : undefined; next && next.by === 'change' && next.change && chain.length < MAX_FOLD && next.parents.length === 1 && next.parents[0]!.equals(chain.at(-1)!.cid); next = index + chain.length < to ? candidates[index + chain.length] : undefined) {
        chain.push(next);
      }
      index += chain.length;
      try {
        const parent = first.parents[0]!;
        const base = versions.get(text(parent)) ?? sent.get(text(parent));
        // Rules set by a version not yet taken (its consent unchecked) run nothing: its changes are replayed one at a time once it is taken.
        const { source, rules } = genesisRules ?? rulesIn(genesis, parent, lookup);
        if (!source.equals(genesis.cid) && !versions.has(text(source))) continue;
        const baseValue = decodeValue(await blockOf(base ? base.value : genesis.init));
        const changes = await Promise.all(chain.map((version) => changeOf((version as { change: CID }).change)));
        const outcome = await deps.run(rules.reducer, [baseValue, changes], { fold: true });
        if (outcome.status !== 'fulfilled') continue;
        const { cids, refusal } = outcome.value as { cids: string[]; refusal?: { index: number; reason: string } };
        cids.forEach((cid, i) => replayed.set(text(chain[i]!.cid), { value: cid }));
        if (refusal) for (const version of chain.slice(refusal.index)) replayed.set(text(version.cid), { reason: `the reducer refuses its change: ${refusal.reason}` });
      } catch {
        // Left to be replayed one at a time, which reports its own reason.
      }
    }
    return replayed;
  };

  /**
   * Why a rules change is not backed by a carried proposal, or undefined if
   * it is: its votes are signed by members over the proposal's token (which
   * commits to the rules and the members), and they carry the document's
   * quorum; the members are those the member document listed at the
   * version named, or, for an ungoverned document, its issuer alone.
   */
  const consentRefusal = async (state: S, genesis: Genesis, version: AuthoredVersion): Promise<string | undefined> => {
    const consent = version.consent!;
    const governance = genesis.governance;
    if (!governance) {
      if (consent.members.length !== 1 || consent.members[0] !== genesis.issuer || consent.quorum !== 1 || consent.base) return `an ungoverned document's rules change is consented to by its issuer ${genesis.issuer} alone`;
    } else {
      if (quorumToWire(governance.quorum) !== consent.quorum) return `its proposal's quorum is not the document's (${describeQuorum(governance.quorum)})`;
      if (!governance.weighted && consent.weights.some((weight) => weight !== 1)) return 'its proposal weighs votes on a document whose votes weigh one each';
      const source = governance.members === 'self' ? state : deps.held(text(governance.members));
      if (!source) return `its members cannot be checked: the member document ${text(governance.members as CID)} is not held here`;
      if (!consent.base) return 'its proposal names no version of the member document';
      const listed = memberList(await valueAt(source, consent.base));
      if (listed.length !== consent.members.length || listed.some((member) => !consent.members.includes(member))) return `its proposal's members are not those the member document listed at ${consent.base}`;
    }
    const token = rulesProposalToken(state.cid, version.rules!, consent);
    // One proposal, one rules change: its consent replayed further down the same line (to bring back rules since replaced) is refused.
    for (const [key, cid] of ancestors(version.parents[0]!, parentsOf)) {
      const earlier = cid.equals(state.cid) ? undefined : versions.get(key);
      if (earlier?.by === 'rules' && rulesProposalToken(state.cid, earlier.rules!, earlier.consent!) === token) return `its proposal ${token} carried version ${key} already`;
    }
    const votes = new Map<Principal, Choice>();
    for (const [voter, choice, signature] of consent.votes) {
      if (!consent.members.includes(voter)) return `${voter} voted but is not a member the proposal was put to`;
      if (votes.has(voter)) return `${voter} voted twice`;
      if (!verify(voter, voteStatement(token, choice), signature)) return `the vote of ${voter} is not signed by ${voter} for this proposal`;
      votes.set(voter, choice);
    }
    const verdict = tally({ members: consent.members, weights: consent.weights, quorum: quorumFromWire(consent.quorum), votes });
    return verdict === 'passed' ? undefined : `its votes do not carry the quorum (${describeQuorum(quorumFromWire(consent.quorum))}): no carried proposal backs it`;
  };

  /** Why a received version does not follow from its parents (or may not be taken), or undefined if it does. */
  const refusalOf = async (state: S, genesis: Genesis, version: Version, blocks: ReadonlyMap<string, Uint8Array>, replayed: ReadonlyMap<string, Replayed>): Promise<string | undefined> => {
    if (!blocks.has(text(version.value)) && !(await store.has(version.value))) return `its value ${version.value} was not sent`;
    const valueCid = (value: GridValue) => blockCid(encodeValue(value), DAG_CBOR_CODEC);
    if (version.by === 'merge') {
      const [ours, theirs] = version.parents as [CID, CID];
      const base = lowestCommonAncestor(ours, theirs, parentsOf) ?? state.cid;
      if (version.base === null || !version.base.equals(base)) return `its base is not its parents' lowest common ancestor ${base}`;
      const step = rulesIn(genesis, version.cid, (key) => (key === text(version.cid) ? version : versions.get(key))).rules.merges[version.step];
      if (!step) return `the document has no merge step ${version.step}`;
      const outcome = await stepResult(step, await valueAt(state, base), await valueAt(state, ours), await valueAt(state, theirs));
      if (outcome.status !== 'fulfilled') return `merge step ${stepName(step)} does not make it: ${outcome.status === 'revoked' ? outcome.reason : 'further promise'}`;
      return valueCid(outcome.value).equals(version.value) ? undefined : `its value is not what merge step ${stepName(step)} makes of its parents`;
    }
    const denied = await authorized(genesis, version);
    if (denied) return denied;
    if (version.by === 'settle') {
      return version.conflict === conflictToken(state.cid, version.parents) ? undefined : 'it settles a conflict between other heads';
    }
    if (version.parents.length !== 1) return `a ${version.by === 'rules' ? 'rules change' : 'change'} has one parent`;
    if (version.by === 'rules') {
      const parent = version.parents[0]!;
      const kept = parent.equals(state.cid) ? genesis.init : versions.get(text(parent))?.value;
      if (!kept || !kept.equals(version.value)) return 'a rules change keeps its parent\'s value';
      return consentRefusal(state, genesis, version);
    }
    const expected = replayed.get(text(version.cid));
    if (expected && 'reason' in expected) return expected.reason;
    if (expected) return expected.value === text(version.value) ? undefined : 'its value does not follow from its parent and change';
    const changeBytes = version.change && (blocks.get(text(version.change)) ?? (await store.get(version.change).catch(() => undefined)));
    if (!changeBytes) return 'its change was not sent';
    const outcome = await deps.run(rulesIn(genesis, version.parents[0]!).rules.reducer, [await valueAt(state, version.parents[0]!), decodeValue(changeBytes)]);
    if (outcome.status !== 'fulfilled') return `the reducer refuses its change: ${outcome.status === 'revoked' ? outcome.reason : 'further promise'}`;
    return valueCid(outcome.value).equals(version.value) ? undefined : 'its value does not follow from its parent and change';
  };

  return { replayChains, refusalOf };
};
