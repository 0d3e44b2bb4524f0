/**
 * Reaching a node: connect, authenticate as this home's principal, then call
 * tokens with grid messages and, for what only the node's owner may do,
 * through the node's CapTP facet.
 */
import { base64 } from 'multiformats/bases/base64';
import { E } from '@endo/far';
import WebSocket from 'ws';
import type { Answer, ChainBlocks, DelegateSpec, IssueSpec, Outcome, PendingView } from '../kernel/kernel.js';
import { decodeValue, encodeValue, type GridValue } from '../closures/values.js';
import { asToken, type ModuleId, type Principal, type Token } from '../caps/ids.js';
import { describeThrown } from '../caps/errors.js';
import { revoked } from '../caps/outcome.js';
import type { Welcome } from './membership.js';
import { verifyDisclosure, type Verified } from '../journal/disclosure.js';
import type { RevocationNotice } from '../kernel/revocations.js';
import { MAX_FRAME_BYTES, openSession, type Session, type SessionOptions } from './session.js';

export interface RemoteNode {
  readonly session: Session;
  /**
   * Never rejects: a bad token, a refusal or a broken connection is a revoked
   * outcome. `signal` cancels the call, here and on the node.
   */
  call(token: string, args: readonly unknown[], options?: { follow?: boolean; timeoutMs?: number; chain?: ChainBlocks; signal?: AbortSignal }): Promise<Outcome>;
  /** The node's journal records about `token` that it shows this principal, checked (journal/disclosure.ts). */
  records(token: string, timeoutMs?: number): Promise<Verified>;
  /** Hand the node a call this one could not answer; `path` ends with this node. */
  forward(token: Token, args: readonly unknown[], path: readonly Principal[], timeoutMs: number, chain?: ChainBlocks, signal?: AbortSignal): Promise<Answer>;
  /** What the node's own principal may also do (refused for anyone else). */
  publish(bytes: Uint8Array): Promise<ModuleId>;
  issue(spec: IssueSpec): Promise<Token>;
  delegate(spec: DelegateSpec): Promise<Token>;
  /** The records and modules a call through delegated `token` carries. */
  chainBlocks(token: string): Promise<ChainBlocks | undefined>;
  importChain(token: string, chain: ChainBlocks): Promise<void>;
  /** The signed notice of a revocation the node made or heard, to hand to another node. */
  revocationNotice(token: string): Promise<RevocationNotice | undefined>;
  revoke(token: string, reason?: string): Promise<void>;
  invite(expiresInMs: number): Promise<{ invitation: string; expires: number }>;
  join(invitationUrl: string): Promise<Welcome>;
  /** The calls waiting on the node for this principal's approval, or for it to collect (any principal may ask). */
  pending(): Promise<PendingView[]>;
  close(): void;
}

type OwnerFacet = {
  pending(): Promise<PendingAsText[]>;
  publish(base64: string): Promise<ModuleId>;
  issue(spec: object): Promise<Token>;
  delegate(spec: object): Promise<Token>;
  chainBlocks(token: string): Promise<{ links: string[]; modules: string[] } | undefined>;
  importChain(token: string, links: string[], modules: string[]): Promise<void>;
  revocationNotice(token: string): Promise<(Omit<RevocationNotice, 'signature'> & { signature: string }) | undefined>;
  revoke(token: string, reason?: string): Promise<void>;
  invite(expiresInMs: number): Promise<{ invitation: string; expires: number }>;
  join(invitationUrl: string): Promise<Welcome>;
};

/** A pending call as it crosses CapTP: its arguments as base64 canonical CBOR (they may hold bytes or links). */
type PendingAsText = Omit<PendingView, 'args'> & { args: string };
export const pendingAsText = (views: readonly PendingView[]): PendingAsText[] => harden(views.map((view) => ({ ...view, args: base64.baseEncode(encodeValue(view.args)) })));
const pendingFromText = (list: readonly PendingAsText[]): PendingView[] =>
  list.map((view) => Object.freeze({ ...view, args: decodeValue(base64.baseDecode(String(view.args))) as readonly GridValue[] }));

/** CapTP carries JSON: blocks cross the owner facet as base64 text. */
export const blocksAsText = (list: readonly Uint8Array[]): string[] => list.map((bytes) => base64.baseEncode(bytes));
export const blocksFromText = (list: readonly string[]): Uint8Array[] => list.map((text) => base64.baseDecode(String(text)));

/** How long to wait for a node's journal records. */
const RECORDS_TIMEOUT_MS = 10_000;

export const connectNode = async (
  url: string,
  options: Pick<SessionOptions, 'identity' | 'random' | 'handshakeMs' | 'offer'>,
): Promise<RemoteNode> => {
  const socket = new WebSocket(url, { maxPayload: MAX_FRAME_BYTES });
  socket.on('error', () => {}); // reported by the session as a failed handshake or a disconnect
  let session: Session;
  try {
    session = await openSession(socket, options);
  } catch (error) {
    throw new Error(`cannot reach ${url}: ${(error as Error).message}`);
  }
  const facet = () => E(session.bootstrap() as unknown as Promise<OwnerFacet>);
  /** A refusal from the node arrives as a rejection; pass on its message alone. */
  const plain = <T>(promise: Promise<T>) =>
    promise.catch((error: unknown) => {
      throw new Error(describeThrown(error));
    });
  return {
    session,
    call: async (token, args, callOptions = {}) => {
      let checked: Token;
      try {
        checked = asToken(token);
      } catch (error) {
        return revoked('invalid', (error as Error).message);
      }
      return (await session.call(checked, args, callOptions)).outcome;
    },
    records: async (token, timeoutMs = RECORDS_TIMEOUT_MS) => {
      const checked = asToken(token);
      const disclosure = await session.records(checked, timeoutMs);
      return verifyDisclosure(disclosure, { node: session.peer, token: checked, requester: options.identity.principal });
    },
    forward: (token, args, path, timeoutMs, chain, signal) => session.call(token, args, { path, timeoutMs, ...(chain ? { chain } : {}), ...(signal ? { signal } : {}) }),
    publish: (bytes) => plain(facet().publish(base64.baseEncode(bytes))),
    issue: (spec) => plain(facet().issue(spec)),
    delegate: (spec) => plain(facet().delegate(spec)),
    chainBlocks: async (token) => {
      const blocks = await plain(facet().chainBlocks(token));
      return blocks && { links: blocksFromText(blocks.links), modules: blocksFromText(blocks.modules) };
    },
    revocationNotice: async (token) => {
      const notice = await plain(facet().revocationNotice(token));
      return notice && Object.freeze({ ...notice, signature: base64.baseDecode(notice.signature) });
    },
    importChain: (token, chain) => plain(facet().importChain(token, blocksAsText(chain.links), blocksAsText(chain.modules))),
    revoke: (token, reason) => plain(facet().revoke(token, reason)),
    invite: (expiresInMs) => plain(facet().invite(expiresInMs)),
    join: (invitationUrl) => plain(facet().join(invitationUrl)),
    pending: async () => pendingFromText(await plain(facet().pending())),
    close: () => session.close(),
  };
};
