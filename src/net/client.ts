/**
 * Reaching a node: connect, authenticate as this home's principal, and get
 * the node's facet for `E(node).call(token, args)`.
 */
import { E } from '@endo/far';
import WebSocket from 'ws';
import type { Identity } from '../identity/identity.js';
import type { Outcome } from '../kernel/kernel.js';
import type { ModuleId, Token } from '../caps/ids.js';
import { describeThrown } from '../caps/errors.js';
import { openSession, type Session } from './session.js';
import { MAX_FRAME_BYTES } from './node.js';

export interface RemoteNode {
  readonly session: Session;
  call(token: string, args: readonly unknown[], options?: { follow?: boolean }): Promise<Outcome>;
  /** What the node's own principal may also do (refused for anyone else). */
  publish(bytes: Uint8Array): Promise<ModuleId>;
  issue(spec: { code: string; export: string; env?: unknown; timeLimitMs?: number }): Promise<Token>;
  revoke(token: string, reason?: string): Promise<void>;
  /** Hand the node a call this one could not answer. */
  forward(token: string, args: readonly unknown[], path: readonly string[]): Promise<Outcome>;
  close(): void;
}

type OwnerFacet = {
  call(token: string, args: readonly unknown[], options: object): Promise<Outcome>;
  publish(base64: string): Promise<ModuleId>;
  issue(spec: object): Promise<Token>;
  revoke(token: string, reason?: string): Promise<void>;
  forward(token: string, args: readonly unknown[], path: readonly string[]): Promise<Outcome>;
};

export const connectNode = async (url: string, options: { identity: Identity; random: (n: number) => Uint8Array; handshakeMs?: number }): Promise<RemoteNode> => {
  const socket = new WebSocket(url, { maxPayload: MAX_FRAME_BYTES });
  socket.on('error', () => {}); // reported by the session as a failed handshake or a disconnect
  let session: Session;
  try {
    session = await openSession(socket, options);
  } catch (error) {
    throw new Error(`cannot reach ${url}: ${(error as Error).message}`);
  }
  const node = session.bootstrap();
  const facet = () => E(node as unknown as OwnerFacet);
  /** A refusal from the node arrives as a rejection; pass on its message alone. */
  const plain = <T>(promise: Promise<T>) =>
    promise.catch((error: unknown) => {
      throw new Error(describeThrown(error));
    });
  // A broken connection is an outcome like any other: revoked, with the reason.
  const asOutcome = (promise: Promise<Outcome>) =>
    promise.catch((error: unknown) => Object.freeze({ status: 'revoked' as const, reason: describeThrown(error) }));
  return {
    session,
    call: (token, args, callOptions = {}) => asOutcome(facet().call(token, args, callOptions)),
    publish: (bytes) => plain(facet().publish(Buffer.from(bytes).toString('base64'))),
    issue: (spec) => plain(facet().issue(spec)),
    revoke: (token, reason) => plain(facet().revoke(token, reason)),
    forward: (token, args, path) => asOutcome(facet().forward(token, args, path)),
    close: () => session.close(),
  };
};
