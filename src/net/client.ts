/**
 * Reaching a node: connect, authenticate as this home's principal, and get
 * the node's facet for `E(node).call(token, args)`.
 */
import { E } from '@endo/far';
import WebSocket from 'ws';
import type { Identity } from '../identity/identity.js';
import type { Outcome } from '../kernel/kernel.js';
import { describeThrown } from '../caps/errors.js';
import { openSession, type Session } from './session.js';
import { MAX_FRAME_BYTES } from './node.js';

export interface RemoteNode {
  readonly session: Session;
  call(token: string, args: readonly unknown[], options?: { follow?: boolean }): Promise<Outcome>;
  close(): void;
}

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
  return {
    session,
    // A broken connection is an outcome like any other: revoked, with the reason.
    call: (token, args, callOptions = {}) =>
      (E(node) as { call: (t: string, a: readonly unknown[], o: object) => Promise<Outcome> })
        .call(token, args, callOptions)
        .catch((error: unknown) => Object.freeze({ status: 'revoked' as const, reason: describeThrown(error) })),
    close: () => session.close(),
  };
};
