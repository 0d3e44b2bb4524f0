/**
 * Reaching a node: connect, authenticate as this home's principal, then call
 * tokens with grid messages and, for what only the node's owner may do,
 * through the node's CapTP facet.
 */
import { E } from '@endo/far';
import WebSocket from 'ws';
import type { Outcome } from '../kernel/kernel.js';
import type { NodeOwner } from '../kernel/owner.js';
import { remoteOwner } from './owner.js';
import type { Answer, ChainBlocks } from '../wire/shapes.js';
import { asToken, type Principal, type Token } from '../interface/ids.js';
import { describeThrown } from '../interface/errors.js';
import { revoked } from '../interface/outcome.js';
import type { Welcome } from './membership.js';
import { verifyDisclosure, type Verified } from '../journal/disclosure.js';
import { MAX_FRAME_BYTES, openSession, type Session, type SessionOptions, type SessionSocket } from './session.js';

/**
 * A node reached over the network: its calls, its records, and — refused
 * for anyone but the node's own principal — the owner API (kernel/owner.ts,
 * crossing CapTP as net/owner.ts says) and invitations.
 */
export interface RemoteNode extends NodeOwner {
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
  invite(expiresInMs: number): Promise<{ invitation: string; expires: number }>;
  join(invitationUrl: string): Promise<Welcome>;
  close(): void;
}

/** What only the node's owner may do besides the owner API: invitations (membership.ts). */
type InvitationFacet = {
  invite(expiresInMs: number): Promise<{ invitation: string; expires: number }>;
  join(invitationUrl: string): Promise<Welcome>;
};

/** How long to wait for a node's journal records. */
const RECORDS_TIMEOUT_MS = 10_000;

/** A WebSocket to `url`, connecting: ws's in Node; a tab hands in the browser's (net/browser-socket.ts). */
export type OpenSocket = (url: string) => SessionSocket;

const openWs: OpenSocket = (url) => new WebSocket(url, { maxPayload: MAX_FRAME_BYTES });

export const connectNode = async (
  url: string,
  options: Pick<SessionOptions, 'identity' | 'random' | 'handshakeMs' | 'offer'> & { readonly openSocket?: OpenSocket },
): Promise<RemoteNode> => {
  const socket = (options.openSocket ?? openWs)(url);
  socket.on('error', () => {}); // reported by the session as a failed handshake or a disconnect
  let session: Session;
  try {
    session = await openSession(socket, options);
  } catch (error) {
    throw new Error(`cannot reach ${url}: ${(error as Error).message}`);
  }
  const facet = () => E(session.bootstrap() as unknown as Promise<InvitationFacet>);
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
    ...remoteOwner(() => session.bootstrap(), plain),
    invite: (expiresInMs) => plain(facet().invite(expiresInMs)),
    join: (invitationUrl) => plain(facet().join(invitationUrl)),
    close: () => session.close(),
  };
};
