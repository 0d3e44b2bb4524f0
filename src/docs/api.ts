/**
 * `kernel.docs`: the library's face of documents. Everything but `create`
 * is a call on one of the document's tokens — the same path a peer, the CLI
 * or a closure in a vat takes — so a delegated token works here as well,
 * screened and journaled like any call.
 */
import { fulfilled, type Outcome } from '../interface/outcome.js';
import type { GridValue } from '../closures/values.js';
import type { Identity } from '../identity/identity.js';
import type { Closure } from '../closures/closure.js';
import { asPrincipal, asToken } from '../interface/ids.js';
import type { Bundle, ConflictView, DocumentTokens, Documents, StepSpec } from './documents.js';
import { signVote, type Choice, type Governance } from './governance.js';
import type { Sync } from './sync.js';

export type DocsApi = ReturnType<typeof makeDocsApi>;

/** A new document: its reducer's token, its merge cascade, its initial value, and how it is governed if it is (members: a document's CID, or `self`). */
export interface DocumentSpec {
  readonly reducer: string;
  readonly merges?: readonly StepSpec[];
  readonly init: GridValue;
  readonly governance?: Omit<Governance, 'members'> & { readonly members: string };
}

/**
 * `ownRole`: the role closure `token` names if this node holds it and it is
 * not revoked — the node owner's own reads through it are answered without
 * a call (a delegated token, or anyone else's read, is a call: screened and
 * journaled).
 */
export const makeDocsApi = (docs: Documents, identity: Identity, call: (token: string, args: readonly GridValue[]) => Promise<Outcome>, ownRole: (token: string) => Closure | undefined, sync?: Sync) =>
  harden({
    /** A new document over closure `reducer`, merged by `merges` in order: its genesis CID and its read, write, settle and admin tokens. */
    create: (spec: DocumentSpec): Promise<DocumentTokens> => docs.create(spec),
    /** Apply `change` through the reducer: `{ version, value }`. */
    apply: (token: string, change: GridValue) => call(token, ['apply', change]),
    /** The current value, or the one at `version`: `{ version, value }`. */
    read: async (token: string, version?: string): Promise<Outcome> => {
      const role = ownRole(token);
      return (role && (await docs.read(role, version))) ?? call(token, version === undefined ? [] : ['at', version]);
    },
    /** The document (its genesis CID) that role token `token` reaches, if this node holds both and the token is not revoked: no call. */
    docOf: (token: string): string | undefined => {
      const role = ownRole(token);
      return role && docs.docOf(role);
    },
    /** Versions from the heads down, newest first. */
    log: (token: string, options: { limit?: number } = {}) => call(token, ['log', { ...options }]),
    /** Open conflicts of one document (through a token), or of every document held here. */
    conflicts: (token?: string): Promise<Outcome> => (token === undefined ? Promise.resolve(fulfilled(docs.conflicts() as unknown as GridValue)) : call(token, ['conflicts'])),
    /** Settle conflict `conflict` (a settle or admin token): pick one of its heads, or write the value. */
    resolve: (token: string, conflict: string, choice: { pick: string } | { value: GridValue }) => call(token, ['resolve', conflict, choice]),
    /** The closures a replica of `doc` runs (reducer, merge steps): a replica fetches them once. */
    closuresOf: (doc: string) => docs.closuresOf(doc),
    /** Put `change` to a governed document's members (a write or admin token): a proposal's token, a further promise. */
    propose: (token: string, change: GridValue) => call(token, ['propose', change]),
    /**
     * Propose new rules for a document (an admin token): a new reducer's
     * token and/or merge cascade (what is left out stays). Put to its
     * members (an ungoverned document's issuer alone): a proposal's token, a
     * further promise; carried, the change lands as a rules version.
     */
    rules: (token: string, rules: { reducer?: string; merges?: readonly StepSpec[] }) => call(token, ['rules', { ...(rules.reducer === undefined ? {} : { reducer: rules.reducer }), ...(rules.merges ? { merges: [...rules.merges] } : {}) }]),
    /** Vote on `proposal` as this node's principal, signing the choice. */
    vote: async (proposal: string, choice: Choice) => call(proposal, ['vote', choice, await signVote(identity, asToken(proposal), choice)]),
    /** Proposals held here: open ones, or all. */
    proposals: (options: { all?: boolean } = {}) => docs.proposals(options),
    /** The documents held here, with their heads. */
    held: () => docs.held(),
    /** The owner's own view of a document held here, no call: its rules, heads and latest `limit` versions. */
    history: (doc: string, limit: number) => docs.history(doc, limit),
    /** What a replica with heads `haves` lacks of `doc` (sync). */
    bundle: (doc: string, haves: readonly string[], maxVersions?: number, maxBytes?: number): Promise<Bundle> => docs.bundle(doc, haves, maxVersions, maxBytes),
    /** Take in a bundle from another replica: checked, then merged. */
    ingest: (bundle: Bundle, from: string) => docs.ingest(bundle, asPrincipal(from)),
    /** Every conflict known here, settled ones too. */
    allConflicts: (): ConflictView[] => docs.conflicts({ all: true }),
    /** Replicate the document `token` reaches (any role, or a delegation of one to this node): the node's peers are asked, now and whenever they connect. */
    follow: (token: string) => sync!.follow(token),
    /** What this node syncs with its peers: documents it issued, and the tokens it follows (with their documents once known). */
    following: () => sync!.following(),
  });
