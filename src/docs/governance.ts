/**
 * Governance as a system call: a proposal is a change to a governed
 * document that applies only with consent. It is a further promise (its own
 * token) that the document's quorum policy fulfils — the change is applied
 * through the reducer — or breaks: rejected by the votes, or past its
 * deadline. Members are read from the member document when the proposal is
 * made and fixed for its life, so a vote counts against the list the
 * proposal was put to.
 *
 * Votes are signed statements (domain-separated) by the voter, checked
 * against the principal the call came from, journaled with their signature:
 * anyone reading the journal can check who voted what. A member votes once;
 * a non-member, a second vote and a vote after the end are refused.
 *
 * State comes from journal entries (`proposal`, `vote`, `proposal-ended`)
 * through `apply`, on replay and live alike; a proposal still open after a
 * restart gets its deadline timer back.
 */
import { CID } from 'multiformats/cid';
import { DAG_CBOR_CODEC, asPrincipal, quote, type Principal, type Token } from '../interface/ids.js';
import { describeThrown } from '../interface/errors.js';
import { fulfilled, promised, revoked, type Outcome } from '../interface/outcome.js';
import type { GridValue } from '../closures/values.js';
import { blockCid } from '../store/hashing.js';
import { encode } from '../wire/index.js';
import { concatBytes, verify, type Identity } from '../identity/identity.js';
import type { Entry, Journal } from '../journal/journal.js';

const VOTE_DOMAIN = new TextEncoder().encode('promisegrid:vote:v1\n');

/** k of the members, a simple majority (more than half), or all of them. */
export type Quorum = 'majority' | 'unanimity' | { readonly k: number };
export type Choice = 'yes' | 'no';

/** How a document is governed: who votes, what carries a proposal, how long it stays open. */
export interface Governance {
  /** The member document (its genesis CID), or `self`: the document's own value lists its members. */
  readonly members: CID | 'self';
  readonly quorum: Quorum;
  /** Weigh each member's vote by its reputation here ((fulfilled + 1) / (broken + 1)) instead of one each. */
  readonly weighted: boolean;
  /** How long a proposal stays open, in ms. */
  readonly deadlineMs: number;
}

/** Most members one proposal is put to; longest a proposal may stay open. */
export const MAX_MEMBERS = 1000;
export const MAX_DEADLINE_MS = 366 * 24 * 60 * 60 * 1000;
/** Most proposals open on one node at once. */
const MAX_OPEN = 10_000;

export const quorumToWire = (quorum: Quorum): string | number => (typeof quorum === 'string' ? quorum : quorum.k);
export const quorumFromWire = (value: unknown): Quorum => {
  if (value === 'majority' || value === 'unanimity') return value;
  if (Number.isSafeInteger(value) && (value as number) >= 1 && (value as number) <= MAX_MEMBERS) return { k: value as number };
  throw new TypeError(`a quorum is majority, unanimity or a number of members from 1 to ${MAX_MEMBERS} (got ${quote(value)})`);
};
export const describeQuorum = (quorum: Quorum): string => (typeof quorum === 'string' ? quorum : `${quorum.k} of the members`);

/** What a voter signs. */
export const voteStatement = (proposal: Token, choice: Choice) => concatBytes(VOTE_DOMAIN, encode({ proposal: CID.parse(proposal), choice }));
export const signVote = (identity: Identity, proposal: Token, choice: Choice): Promise<Uint8Array> => identity.sign(voteStatement(proposal, choice));

interface Proposal {
  readonly doc: string;
  readonly change: GridValue;
  readonly proposer: Principal;
  readonly members: readonly Principal[];
  readonly weights: readonly number[];
  readonly quorum: Quorum;
  readonly deadline: number;
  readonly via?: Token;
  /** A rules change (documents.ts): its proposal's nonce and member list version, which its token commits to. */
  readonly admin?: AdminProposal;
  readonly votes: Map<Principal, Choice>;
  readonly signatures: Map<Principal, Uint8Array>;
  ended?: { status: 'passed' | 'rejected' | 'expired'; version?: string; reason: string };
  cancelTimer?: () => void;
}

/** What a proposal to change a document's rules journals beside its change (the rules). */
export interface AdminProposal {
  readonly nonce: Uint8Array;
  readonly base?: string;
}
/** What a carried rules change is enacted with: everything a replica needs to check the consent. */
export interface Carried extends AdminProposal {
  readonly token: Token;
  readonly members: readonly Principal[];
  readonly weights: readonly number[];
  readonly quorum: string | number;
  readonly votes: ReadonlyArray<readonly [Principal, Choice, Uint8Array]>;
}

/** Where a tally stands: carried, impossible to carry, or still open. */
export const tally = (proposal: Pick<Proposal, 'members' | 'weights' | 'quorum' | 'votes'>): 'passed' | 'rejected' | undefined => {
  const weight = (choice: Choice) => proposal.members.reduce((sum, member, i) => sum + (proposal.votes.get(member) === choice ? proposal.weights[i]! : 0), 0);
  const total = proposal.weights.reduce((sum, w) => sum + w, 0);
  const yes = weight('yes');
  const no = weight('no');
  const { quorum } = proposal;
  if (quorum === 'unanimity') return no > 0 ? 'rejected' : yes >= total ? 'passed' : undefined;
  if (quorum === 'majority') return yes * 2 > total ? 'passed' : no * 2 >= total ? 'rejected' : undefined;
  // k of n: counted in weight when weighted, where k is a share of n members' weight.
  const needed = (quorum.k / proposal.members.length) * total;
  return yes >= needed ? 'passed' : total - no < needed ? 'rejected' : undefined;
};

export type Proposals = ReturnType<typeof makeProposals>;
export type ProposalsSnapshot = ReadonlyArray<
  Omit<Proposal, 'votes' | 'signatures' | 'cancelTimer' | 'quorum'> & { token: Token; quorum: string | number; votes: ReadonlyArray<readonly [Principal, Choice, Uint8Array]> }
>;

export const makeProposals = (powers: {
  journal: Journal;
  identity: Identity;
  clock: () => number;
  setTimer: (ms: number, callback: () => void) => () => void;
  randomBytes: (length: number) => Uint8Array;
  /** Apply a carried proposal's change to its document (through the reducer, as this node). */
  enact: (doc: string, change: GridValue, via: Token | undefined, admin?: Carried) => Promise<Outcome>;
}) => {
  const { journal, clock } = powers;
  const proposals = new Map<Token, Proposal>();
  let open = 0;

  const end = (token: Token, status: 'passed' | 'rejected' | 'expired', reason: string, version?: string) =>
    journal.append({ kind: 'proposal-ended', proposal: token, status, reason, ...(version ? { version } : {}) });

  const expire = (token: Token) => {
    const proposal = proposals.get(token);
    if (proposal && !proposal.ended) end(token, 'expired', `no quorum (${describeQuorum(proposal.quorum)}) by the deadline`);
  };

  const arm = (token: Token, proposal: Proposal) => {
    proposal.cancelTimer = powers.setTimer(Math.max(0, proposal.deadline - clock()), () => expire(token));
  };

  /** Act on a tally that carried or failed: enact the change, or break the promise. */
  const settle = async (token: Token, proposal: Proposal) => {
    const verdict = tally(proposal);
    if (!verdict || proposal.ended) return;
    if (verdict === 'rejected') return end(token, 'rejected', `rejected: the votes cannot reach ${describeQuorum(proposal.quorum)}`);
    const admin: Carried | undefined = proposal.admin && {
      ...proposal.admin,
      token,
      members: proposal.members,
      weights: proposal.weights,
      quorum: quorumToWire(proposal.quorum),
      votes: [...proposal.votes].map(([voter, choice]) => [voter, choice, proposal.signatures.get(voter)!] as const),
    };
    const outcome = await powers.enact(proposal.doc, proposal.change, proposal.via, admin).catch((error: unknown) => revoked('internal', describeThrown(error)));
    if (outcome.status === 'fulfilled') end(token, 'passed', 'carried', (outcome.value as { version: string }).version);
    else end(token, 'rejected', `carried, but the change did not apply: ${outcome.status === 'revoked' ? outcome.reason : 'further promise'}`);
  };

  const answerOf = (token: Token, proposal: Proposal): Outcome => {
    if (!proposal.ended) return promised(token);
    if (proposal.ended.status === 'passed') return fulfilled({ version: proposal.ended.version ?? null, status: 'passed' });
    return revoked(proposal.ended.status === 'expired' ? 'expired' : 'refused', proposal.ended.reason);
  };

  return harden({
    /** The proposals the journal left here, as plain data (kernel/snapshot.ts). */
    snapshot: (): ProposalsSnapshot =>
      [...proposals].map(([token, { votes, signatures, cancelTimer: _, quorum, ...proposal }]) => ({
        token,
        ...proposal,
        quorum: quorumToWire(quorum),
        votes: [...votes].map(([voter, choice]) => [voter, choice, signatures.get(voter)!] as const),
      })),
    restore(from: ProposalsSnapshot) {
      for (const { token, votes, quorum, ...rest } of from) {
        const proposal: Proposal = {
          ...rest,
          quorum: quorumFromWire(quorum),
          votes: new Map(votes.map(([voter, choice]) => [voter, choice])),
          signatures: new Map(votes.map(([voter, , signature]) => [voter, signature])),
        };
        proposals.set(token, proposal);
        if (proposal.ended) continue;
        open += 1;
        arm(token, proposal);
      }
    },

    isProposal: (token: Token) => proposals.has(token),

    apply(entry: Entry) {
      switch (entry.kind) {
        case 'proposal': {
          const proposal: Proposal = {
            doc: entry.doc,
            change: entry.change,
            proposer: entry.proposer,
            members: entry.members,
            weights: entry.weights,
            quorum: quorumFromWire(entry.quorum),
            deadline: entry.deadline,
            ...(entry.via ? { via: entry.via } : {}),
            ...(entry.admin ? { admin: entry.admin as AdminProposal } : {}),
            votes: new Map(),
            signatures: new Map(),
          };
          proposals.set(entry.proposal, proposal);
          open += 1;
          arm(entry.proposal, proposal);
          break;
        }
        case 'vote':
          proposals.get(entry.proposal)?.votes.set(entry.voter, entry.choice);
          proposals.get(entry.proposal)?.signatures.set(entry.voter, entry.signature);
          break;
        case 'proposal-ended': {
          const proposal = proposals.get(entry.proposal);
          if (!proposal || proposal.ended) break;
          proposal.ended = { status: entry.status, reason: entry.reason, ...(entry.version ? { version: entry.version } : {}) };
          proposal.cancelTimer?.();
          open -= 1;
          break;
        }
        default:
      }
    },

    /** Put `change` to the members of `doc`; returns the proposal's token, a further promise. */
    async propose(spec: {
      doc: string;
      change: GridValue;
      proposer: Principal;
      members: readonly Principal[];
      weights: readonly number[];
      governance: Omit<Governance, 'members'>;
      via?: Token;
      /** A rules change: the member list's version, and the token its proposal is named by (which commits to its contents). */
      admin?: { base?: string; tokenOf: (nonce: Uint8Array) => Token };
    }): Promise<Outcome> {
      if (open >= MAX_OPEN) return revoked('quota', `too many proposals are open here (limit ${MAX_OPEN})`);
      if (spec.members.length === 0) return revoked('invalid', 'the document has no members to vote');
      if (spec.members.length > MAX_MEMBERS) return revoked('invalid', `a proposal is put to at most ${MAX_MEMBERS} members (the list has ${spec.members.length})`);
      const { quorum } = spec.governance;
      if (typeof quorum === 'object' && quorum.k > spec.members.length) return revoked('invalid', `the quorum needs ${quorum.k} members but there are ${spec.members.length}`);
      const nonce = powers.randomBytes(16);
      const token = spec.admin ? spec.admin.tokenOf(nonce) : (blockCid(encode({ proposal: CID.parse(spec.doc), nonce }), DAG_CBOR_CODEC).toString() as Token);
      journal.append({
        kind: 'proposal',
        proposal: token,
        doc: spec.doc,
        change: spec.change,
        proposer: spec.proposer,
        members: [...spec.members],
        weights: [...spec.weights],
        quorum: quorumToWire(quorum),
        deadline: clock() + spec.governance.deadlineMs,
        ...(spec.via ? { via: spec.via } : {}),
        ...(spec.admin ? { admin: { nonce, ...(spec.admin.base ? { base: spec.admin.base } : {}) } } : {}),
      });
      await journal.written();
      return promised(token);
    },

    /**
     * A call on a proposal's token: `[]` collects it (a further promise
     * while open), `['vote', 'yes' | 'no', signature]` votes as the caller.
     */
    async answer(token: Token, args: readonly GridValue[], caller: Principal): Promise<Outcome> {
      const proposal = proposals.get(token)!;
      if (args.length === 0) return answerOf(token, proposal);
      const [operation, choice, signature] = args;
      if (operation !== 'vote') return revoked('invalid', `a proposal takes no arguments (to collect it) or ['vote', 'yes' | 'no', signature] (got ${quote(operation)})`);
      if (proposal.ended) return revoked(proposal.ended.status === 'expired' ? 'expired' : 'denied', `the proposal has ended: ${proposal.ended.reason}`);
      if (clock() >= proposal.deadline) {
        expire(token);
        return revoked('expired', 'the proposal is past its deadline');
      }
      if (choice !== 'yes' && choice !== 'no') return revoked('invalid', `a vote is yes or no (got ${quote(choice)})`);
      if (!proposal.members.includes(caller)) return revoked('denied', `${caller} is not a member of the document this proposal was put to`);
      if (proposal.votes.has(caller)) return revoked('denied', `${caller} has voted on this proposal already`);
      if (!(signature instanceof Uint8Array) || !verify(asPrincipal(caller), voteStatement(token, choice), signature)) {
        return revoked('invalid', `the vote is not signed by ${caller}`);
      }
      journal.append({ kind: 'vote', proposal: token, voter: caller, choice, signature });
      await settle(token, proposal);
      await journal.written();
      return answerOf(token, proposal);
    },

    /** Proposals this node holds: open ones (or all), with their votes. */
    list(options: { all?: boolean } = {}) {
      return [...proposals]
        .filter(([, p]) => options.all || !p.ended)
        .map(([token, p]) =>
          harden({
            proposal: token,
            doc: p.doc,
            change: p.change,
            proposer: p.proposer,
            quorum: describeQuorum(p.quorum),
            deadline: p.deadline,
            members: [...p.members],
            votes: Object.fromEntries(p.votes),
            ...(p.ended ? { ended: { ...p.ended } } : {}),
          }),
        );
    },

    close() {
      for (const proposal of proposals.values()) proposal.cancelTimer?.();
    },
  });
};
