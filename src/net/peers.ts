/**
 * The peers a node forwards to: calls for tokens it holds no closure for go
 * to each peer in turn until one answers with anything but "unknown token".
 * Connections are opened on first use and dropped when they break (the next
 * forward reconnects). If no peer knows the token and some could not be
 * reached, the call ends `unreachable`: the answer may exist on a node that is
 * offline. Answers are not cached on this node (see Kernel#forward).
 */
import type { Principal } from '../caps/ids.js';
import type { Identity } from '../identity/identity.js';
import type { Forwarder } from '../kernel/kernel.js';
import { connectNode, type RemoteNode } from './client.js';

export interface Peers {
  readonly forward: Forwarder;
  close(): void;
}

export const makePeers = (urls: readonly string[], options: { identity: Identity; random: (n: number) => Uint8Array }): Peers => {
  const connections = new Map<string, Promise<RemoteNode>>();
  const reach = (url: string) => {
    let connection = connections.get(url);
    if (!connection) {
      connection = connectNode(url, options);
      connections.set(url, connection);
      connection.then(
        (remote) => void remote.session.closed.then(() => connections.delete(url)),
        () => connections.delete(url),
      );
    }
    return connection;
  };
  const forward: Forwarder = async ({ token, args, path }) => {
    let unreachable = false;
    for (const url of urls) {
      let remote: RemoteNode;
      try {
        remote = await reach(url);
      } catch {
        unreachable = true;
        continue;
      }
      const answer = await remote.forward(token, args, path as readonly Principal[]);
      if (answer.outcome.status === 'revoked' && answer.outcome.reason === 'disconnected') {
        unreachable = true;
        continue;
      }
      if (answer.outcome.status === 'revoked' && answer.outcome.reason === 'unknown token') continue;
      return { ...answer, peer: remote.session.peer };
    }
    return unreachable ? { outcome: Object.freeze({ status: 'revoked' as const, reason: 'unreachable' }), pure: false } : undefined;
  };
  return {
    forward,
    close: () => {
      for (const connection of connections.values()) connection.then((remote) => remote.close(), () => {});
    },
  };
};
