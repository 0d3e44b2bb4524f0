/**
 * Sync: replicas of a document exchange what the other lacks over the
 * nodes' authenticated sessions (net/doc-sync.ts carries it; frames.ts has
 * the `doc-sync` request and `doc-heads` notice).
 *
 * Who may have a document's versions — the serving side, `serve`: a peer
 * that presents a token reaching the document *for that peer*: one of the
 * document's role tokens itself (any role may read), or a delegation of one
 * whose outermost link names the peer in its audience, whose chain holds up
 * (each link made by one its inner link names, ending at the document's
 * issuer), none of whose links is revoked or past its expiry policy's
 * `until` (other policies screen calls, and a sync is none); or the document's issuer,
 * with no token. Anything else is refused in one line with a revoke code.
 * Each answer carries at most SYNC_MAX_VERSIONS versions and stops adding
 * versions past SYNC_MAX_BYTES; the asker comes back for `more`.
 *
 * What a replica takes — the asking side, `take`: a bundle of at most
 * MAX_BUNDLE_BLOCKS blocks and MAX_BUNDLE_BYTES bytes, of the document it
 * asked for; the first time, only a document the token it presented reaches
 * (its genesis names the token's root among its roles), and only once the
 * reducer and merge closures the document needs are here (fetched from the
 * peer that answered). Then every version is checked by `ingest`
 * (documents.ts): signature, the author's authority, replay through the
 * reducer, merges re-run; refused versions come back with their reasons.
 */
import { CID } from 'multiformats/cid';
import { asToken, quote, type Principal, type Token } from '../interface/ids.js';
import { describeThrown, GridError } from '../interface/errors.js';
import { fulfilled, revoked, type Outcome, type RevokeCode } from '../interface/outcome.js';
import type { GridValue } from '../closures/values.js';
import type { Closure } from '../closures/closure.js';
import type { Journal } from '../journal/journal.js';
import { blockCid } from '../store/hashing.js';
import { MAX_CHAIN, sealToken, type Delegation } from '../delegation/delegation.js';
import type { ChainBlocks, Replica, RevocationNotice } from '../wire/shapes.js';
import { MAX_BUNDLE_VERSIONS, MAX_TIPS, ROLE_MODULE_ID, type Bundle, type Documents } from './documents.js';
import { DocumentError, readGenesis, rulesClosuresIn, type Genesis } from './records.js';

/** Most versions one answer carries: the bundle's own limit. */
export const SYNC_MAX_VERSIONS = MAX_BUNDLE_VERSIONS;
/** Past this many bytes of blocks an answer takes no further version (a frame is at most 16 MiB). */
export const SYNC_MAX_BYTES = 4 * 1024 * 1024;
/** Most blocks a bundle from a peer may carry: a version, its value and change each, the genesis, its first value, delegation links. */
export const MAX_BUNDLE_BLOCKS = 3 * SYNC_MAX_VERSIONS + 2 + 2 * MAX_CHAIN;
/** Most bytes of blocks a bundle from a peer may carry: SYNC_MAX_BYTES, and one version's worth past it. */
export const MAX_BUNDLE_BYTES = 3 * SYNC_MAX_BYTES;

/** Most revocation notices one answer carries. */
export const MAX_SYNC_REVOCATIONS = 64;

/** A refusal with the revoke code it is answered with. */
export class SyncRefusal extends GridError<RevokeCode> {}
const refuse = (code: RevokeCode, reason: string): never => {
  throw new SyncRefusal(code, reason);
};

/** What a sync request asks (frames.ts DocSyncRequest). */
export interface SyncRequest {
  readonly token?: Token;
  readonly doc?: string;
  readonly haves: readonly string[];
  readonly chain?: ChainBlocks;
}

/**
 * A bundle as it travels: `{ doc, blocks: [[cid, bytes]…], more, revocations? }`, each revocation a signed
 * notice of a revoked delegation the document's writers went through, with its revoker's signed date when known.
 */
export const bundleValue = (bundle: Bundle): GridValue => ({
  doc: bundle.doc,
  blocks: bundle.blocks.map(([cid, bytes]) => [cid, bytes]),
  more: bundle.more,
  ...(bundle.tips?.length ? { tips: [...bundle.tips] } : {}),
  ...(bundle.revocations?.length
    ? {
        revocations: bundle.revocations.slice(0, MAX_SYNC_REVOCATIONS).map(({ notice, since }) => ({
          token: notice.token,
          reason: notice.reason,
          by: notice.by,
          signature: notice.signature,
          ...(since ? { since: { at: since.at, signature: since.signature } } : {}),
        })),
      }
    : {}),
});

/** The revocations a bundle carries, shape-checked (the docs part checks their signatures when it takes the bundle). */
const revocationsIn = (list: unknown): NonNullable<Bundle['revocations']> => {
  if (list === undefined) return [];
  if (!Array.isArray(list) || list.length > MAX_SYNC_REVOCATIONS) return refuse('malformed', `a bundle's revocations are a list of at most ${MAX_SYNC_REVOCATIONS} notices`);
  return list.map((item) => {
    const { token, reason, by, signature, since } = (item ?? {}) as Record<string, unknown>;
    if (typeof token !== 'string' || typeof reason !== 'string' || typeof by !== 'string' || !(signature instanceof Uint8Array)) return refuse('malformed', 'a revocation is { token, reason, by, signature, since? }');
    const { at, signature: dated } = (since ?? {}) as Record<string, unknown>;
    const notice: RevocationNotice = { token: token as Token, reason, by: by as Principal, signature };
    return since === undefined ? { notice } : Number.isSafeInteger(at) && dated instanceof Uint8Array ? { notice, since: { at: at as number, signature: dated } } : refuse('malformed', 'a revocation is dated { at, signature }');
  });
};

/** The tips a bundle names, each a CID (a hint for the next request: nothing is taken on it). */
const tipsIn = (list: unknown): string[] => {
  if (list === undefined) return [];
  if (!Array.isArray(list) || list.length > MAX_TIPS) return refuse('malformed', `a bundle's tips are a list of at most ${MAX_TIPS} CIDs`);
  return list.map((tip) => {
    try {
      return CID.parse(tip as string).toString();
    } catch {
      return refuse('malformed', `a bundle's tip ${quote(tip)} is not a CID`);
    }
  });
};

/** A peer's bundle read back and bounded, or a refusal saying what is wrong with it. */
export const bundleFrom = (value: GridValue, doc?: string): Bundle => {
  const { doc: named, blocks, more, tips, revocations } = (value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {}) as Record<string, unknown>;
  if (typeof named !== 'string' || !Array.isArray(blocks) || typeof more !== 'boolean') return refuse('malformed', 'a bundle is { doc, blocks: [[cid, bytes]…], more }');
  if (doc !== undefined && named !== doc) return refuse('malformed', `the bundle is of document ${named}, not of ${doc} as asked`);
  if (blocks.length > MAX_BUNDLE_BLOCKS) return refuse('malformed', `the bundle carries ${blocks.length} blocks, more than the ${MAX_BUNDLE_BLOCKS} one answer may`);
  let bytes = 0;
  for (const block of blocks) {
    if (!Array.isArray(block) || block.length !== 2 || typeof block[0] !== 'string' || !(block[1] instanceof Uint8Array)) return refuse('malformed', 'a bundle block is [cid, bytes]');
    bytes += block[1].length;
  }
  if (bytes > MAX_BUNDLE_BYTES) return refuse('malformed', `the bundle carries ${bytes} bytes, more than the ${MAX_BUNDLE_BYTES} one answer may`);
  const notices = revocationsIn(revocations);
  const ends = tipsIn(tips);
  return { doc: named, blocks: blocks as Array<[string, Uint8Array]>, more, ...(ends.length > 0 ? { tips: ends } : {}), ...(notices.length > 0 ? { revocations: notices } : {}) };
};

export interface SyncPowers {
  readonly self: Principal;
  readonly docs: Documents;
  readonly journal: Journal;
  readonly delegationOf: (token: Token) => Promise<Delegation | undefined>;
  /** The chain `token` names, outermost first (delegation-table.ts); empty if it is no delegation. */
  readonly chainOf: (token: Token) => Promise<readonly Delegation[]>;
  /** The chain under a delegation and the closure it ends at (checked, revocations included), or undefined if that closure is not here. */
  readonly screenable: (outer: Delegation) => Promise<{ chain: Delegation[]; root: Closure } | undefined>;
  readonly importChain: (token: Token, blocks: ChainBlocks, importer: Principal) => Promise<boolean>;
  readonly closureHere: (token: Token) => Promise<unknown>;
  readonly adopt: (token: Token, replica: Replica) => Promise<unknown>;
  readonly clock: () => number;
  /** The shipped expiry policy's module: a delegation past its `until` serves no sync either. */
  readonly expiryPolicy?: string;
}

export type Sync = ReturnType<typeof makeSync>;

export const makeSync = (powers: SyncPowers) => {
  const { docs } = powers;
  /** The document `request` may have for `peer`, or a refusal. */
  const documentFor = async (request: SyncRequest, peer: Principal): Promise<string> => {
    const { token } = request;
    if (token === undefined) {
      const issuer = request.doc === undefined ? undefined : docs.issuerOf(request.doc);
      if (issuer === undefined) return refuse('unknown-token', `this node does not hold document ${request.doc}`);
      if (issuer !== peer) return refuse('denied', `only the document's issuer syncs without a token; present a token that reaches document ${request.doc}`);
      return request.doc!;
    }
    if (request.chain) {
      try {
        await powers.importChain(token, request.chain, peer);
      } catch (error) {
        return refuse('invalid', `the chain sent with ${token} does not hold: ${describeThrown(error)}`);
      }
    }
    let doc: string | undefined;
    const outer = await powers.delegationOf(token);
    if (outer) {
      if (!outer.audience.includes(peer)) return refuse('denied', `delegation ${token} was made for ${outer.audience.join(', ')}, not for ${peer}`);
      let screened: Awaited<ReturnType<SyncPowers['screenable']>>;
      try {
        screened = await powers.screenable(outer);
      } catch (error) {
        return refuse((error as { code?: string }).code === 'ERR_REVOKED' ? 'token-revoked' : 'invalid', describeThrown(error));
      }
      if (screened && screened.root.code !== ROLE_MODULE_ID) return refuse('denied', `${token} is not a document's token`);
      // Of a chain's policies only expiry bounds sync (rate, pattern, approvals screen calls, and a sync is none).
      for (const link of screened?.chain ?? []) {
        for (const policy of link.policies) {
          const until = (policy.settings as { until?: unknown } | null)?.until;
          if (policy.module === powers.expiryPolicy && typeof until === 'number' && powers.clock() >= until) {
            return refuse('screened', `delegation ${link.token} expired at ${new Date(until).toISOString()}`);
          }
        }
      }
      doc = screened && docs.docOf(screened.root);
    } else {
      const role = docs.roleBySealed(sealToken(token));
      doc = role && docs.docOf(role);
    }
    if (doc === undefined) return refuse('unknown-token', `this node holds no document that ${token} reaches`);
    if (request.doc !== undefined && request.doc !== doc) return refuse('denied', `${token} reaches document ${doc}, not ${request.doc}`);
    return doc;
  };

  /** The role's sealed reference a token stands for: its own, or the one its delegation chain ends at. */
  const rootSealed = async (token: Token): Promise<string> => {
    let chain: readonly Delegation[];
    try {
      chain = await powers.chainOf(token);
    } catch (error) {
      return refuse('invalid', `the chain of ${token} does not hold: ${describeThrown(error)}`);
    }
    return chain.at(-1)?.inner ?? sealToken(token);
  };

  /** The document held here that a delegation (or role token) reaches, if any. */
  const docOfToken = async (token: Token): Promise<string | undefined> => {
    try {
      const role = docs.roleBySealed(await rootSealed(token));
      return role && docs.docOf(role);
    } catch {
      return undefined;
    }
  };

  const genesisIn = (bundle: Bundle): Genesis => {
    const bytes = bundle.blocks.find(([cid]) => cid === bundle.doc)?.[1];
    if (!bytes) return refuse('malformed', `the bundle lacks document ${bundle.doc}'s genesis`);
    try {
      const cid = CID.parse(bundle.doc);
      if (!blockCid(bytes, cid.code).equals(cid)) return refuse('malformed', `the genesis does not hash to ${bundle.doc}`);
      return readGenesis(cid, bytes);
    } catch (error) {
      return error instanceof SyncRefusal ? refuse(error.code, error.message) : refuse('malformed', describeThrown(error));
    }
  };

  return harden({
    /**
     * Replicate the document `token` reaches from now on, presenting `token`
     * to peers (journaled: a restart keeps it). `token` is a delegation made
     * for this node (its chain imported): that is safe to show any peer, who
     * cannot use it. A role token itself is refused — shown to every peer
     * asked, it would hand each of them the role.
     */
    async follow(token: string): Promise<{ token: Token; doc?: string }> {
      const checked = asToken(token);
      const known = docs.followed().find((followed) => followed.token === checked);
      if (known) return known;
      const delegation = await powers.delegationOf(checked);
      if (!delegation) throw new DocumentError('ERR_NOT_DELEGATED', `${checked} is not a delegation this node holds: follow a document token delegated to this node (grid delegate TOKEN --to ${powers.self}), its chain imported`);
      if (!delegation.audience.includes(powers.self)) throw new DocumentError('ERR_NOT_AUDIENCE', `delegation ${checked} was made for ${delegation.audience.join(', ')}, not for this node (${powers.self})`);
      powers.journal.append({ kind: 'doc-token', token: checked });
      return { token: checked };
    },

    /** The document held here that `token` (a delegation, or a role token) reaches. */
    docOfToken,

    /** What this replica tells a peer it holds of `doc` (documents.ts `haves`): heads first. */
    haves: (doc: string, max: number) => docs.haves(doc, max),
    /** Whether version `cid` is held here. */
    knows: (cid: string) => docs.knows(cid),

    /** What this node syncs: the documents it issued (no token needed) and every token it follows (with its document once known). */
    following(): Array<{ doc?: string; token?: Token }> {
      const issued = docs.held().filter((held) => docs.issuerOf(held.doc) === powers.self && docs.tokenFor(held.doc) === undefined).map((held) => ({ doc: held.doc }));
      return [...issued, ...docs.followed()];
    },

    /** Answer `peer`'s sync request: the bundle (as it travels), or a refusal with its code. Never throws. */
    async serve(request: SyncRequest, peer: Principal): Promise<Outcome> {
      try {
        const doc = await documentFor(request, peer);
        return fulfilled(bundleValue(await docs.bundle(doc, request.haves, SYNC_MAX_VERSIONS, SYNC_MAX_BYTES)));
      } catch (error) {
        return error instanceof SyncRefusal ? revoked(error.code, error.message) : revoked('internal', describeThrown(error));
      }
    },

    /**
     * Take in a bundle a peer answered this node's request with (read back
     * by `bundleFrom`). `token`: the one this node presented (none for a
     * document it issued); `from`: the peer that answered; `fetch`: a closure's replica from that peer.
     * Throws a SyncRefusal when the bundle is refused as a whole.
     */
    async take(bundle: Bundle, options: { token?: Token; from: Principal; fetch: (token: Token) => Promise<Replica> }): Promise<{ doc: string; accepted: number; refused: Array<{ version: string; reason: string }> }> {
      const { token } = options;
      const held = docs.issuerOf(bundle.doc) !== undefined;
      if (!held && token === undefined) return refuse('denied', `document ${bundle.doc} was not asked for`);
      const known = token !== undefined && docs.tokenFor(bundle.doc) === token;
      const fetchAll = async (tokens: readonly Token[]) => {
        for (const needed of tokens) {
          if (await powers.closureHere(needed).catch(() => undefined)) continue;
          try {
            await powers.adopt(needed, await options.fetch(needed));
          } catch (error) {
            return refuse('unreachable', `the document's closure ${needed} could not be fetched: ${describeThrown(error)}`);
          }
        }
      };
      if (!known && token !== undefined) {
        const genesis = genesisIn(bundle);
        const sealed = await rootSealed(token);
        if (!Object.values(genesis.roles).includes(sealed)) return refuse('malformed', `the bundle's document ${bundle.doc} is not one that ${token} reaches`);
        // The closures a replica runs to check versions: fetched from the peer before the first ingest.
        await fetchAll([genesis.reducer, ...genesis.merges.flatMap((step) => ('token' in step ? [step.token] : []))]);
      }
      // A rules change (a new reducer or cascade) names closures of its own: fetched too, before its versions are checked.
      await fetchAll(rulesClosuresIn(bundle));
      let result: Awaited<ReturnType<Documents['ingest']>>;
      try {
        result = await docs.ingest(bundle, options.from);
      } catch (error) {
        return refuse('malformed', describeThrown(error));
      }
      if (!known && token !== undefined) powers.journal.append({ kind: 'doc-token', token, doc: bundle.doc });
      return { doc: bundle.doc, ...result };
    },
  });
};
