/// <reference types="ses" />
/**
 * The owner API, defined once: what a node's own principal does with it.
 * `ownerOf` gives it over a kernel opened in this process; net/owner.ts
 * derives, from the same interface, the facet a running node serves its
 * owner over CapTP and the form a client holding the node's key calls.
 * Adding an operation: a line here in `NodeOwner`, one in `ownerOf`, and one
 * in net/owner.ts saying how its bytes cross CapTP (TypeScript insists on
 * all three) — plus the kernel's own method.
 */
import type { ModuleId, Token } from '../interface/ids.js';
import type { ChainBlocks } from '../wire/shapes.js';
import type { RevocationNotice } from './revocations.js';
import type { DelegateSpec, IssueSpec, Kernel, Outcome, PendingView } from './kernel.js';
import type { ConflictView, DocumentTokens } from '../docs/documents.js';
import type { DocumentSpec } from '../docs/api.js';
import type { Choice } from '../docs/governance.js';
import type { Reputation } from '../journal/reputation.js';

export interface OwnerCallOptions {
  /** Chase further promises until fulfilled or revoked. */
  readonly follow?: boolean;
  /** The delegation chain of the token called, for a node that has not seen it. */
  readonly chain?: ChainBlocks;
  /** Cancels the call, wherever it runs. */
  readonly signal?: AbortSignal;
}

export interface NodeOwner {
  /** Store a JS or WebAssembly module; its CID. */
  publish(bytes: Uint8Array): Promise<ModuleId>;
  /** Make a closure over a published module; its token. */
  issue(spec: IssueSpec): Promise<Token>;
  /** Delegate a token the node issued or was delegated; the new token. */
  delegate(spec: DelegateSpec): Promise<Token>;
  /** Break the promise: every later call through `token` is revoked. */
  revoke(token: string, reason?: string): Promise<void>;
  /** What a call through delegated `token` must carry for a node that has never seen its chain. */
  chainBlocks(token: string): Promise<ChainBlocks | undefined>;
  /** Take in the chain of delegated `token`. */
  importChain(token: string, chain: ChainBlocks): Promise<void>;
  /** The signed notice of a revocation made or heard here, to hand to a node that must hear it. */
  revocationNotice(token: string): Promise<RevocationNotice | undefined>;
  /** The calls waiting on the node for the owner's approval, or for the owner to collect. */
  pending(): Promise<PendingView[]>;
  /** A new document over closure `reducer` (kernel.docs.create): its genesis CID and its role tokens. */
  createDocument(spec: DocumentSpec): Promise<DocumentTokens>;
  /** Replicate the document a delegation made for this node reaches, syncing it with the node's peers. */
  followDocument(token: string): Promise<void>;
  /** Vote on a proposal as the node's own principal, the choice signed by it. */
  vote(proposal: string, choice: Choice): Promise<Outcome>;
  /** The open conflicts of every document the node holds. */
  documentConflicts(): Promise<ConflictView[]>;
  /** Promises kept and broken per issuer, as the node's state holds them (kept from the journal, never read from it again). */
  reputation(): Promise<Reputation[]>;
  /** Call a token as the node's own principal. Never rejects: every failure is a revoked outcome. */
  call(token: string, args: readonly unknown[], options?: OwnerCallOptions): Promise<Outcome>;
}

/** The owner API over `kernel`, in this process. */
export const ownerOf = (kernel: Kernel): NodeOwner =>
  harden({
    publish: (bytes) => kernel.publish(bytes),
    issue: (spec) => kernel.issue(spec),
    delegate: (spec) => kernel.delegate(spec),
    revoke: (token, reason) => kernel.revoke(token, reason),
    chainBlocks: (token) => kernel.chainBlocks(token),
    importChain: async (token, chain) => void (await kernel.importChain(token, chain)),
    revocationNotice: async (token) => kernel.revocationNotice(token),
    pending: async () => kernel.pendingFor(kernel.principal),
    createDocument: (spec) => kernel.docs.create(spec),
    vote: (proposal, choice) => kernel.docs.vote(proposal, choice),
    followDocument: async (token) => {
      await kernel.docs.follow(token);
    },
    documentConflicts: async () => kernel.docs.allConflicts().filter((conflict) => conflict.settled === undefined),
    reputation: async () => kernel.reputation(),
    call: (token, args, options) => kernel.call(token, args, options),
  });
