/**
 * The peers a node forwards to: calls for tokens it holds no closure for go
 * to each peer in turn until one answers with anything but "unknown token".
 * Connections are opened on first use and dropped when they break (the next
 * forward reconnects). If no peer knows the token and some could not be
 * reached, the call ends `unreachable`: the answer may exist on a node that is
 * offline. Answers are not cached on this node (see Kernel#forward).
 *
 * A peer that could not be reached is not tried again until a backoff has
 * passed (1 s, doubling to a minute), so a node that is down costs the calls
 * that would go to it nothing but a skip; the first success resets it.
 */
import type { Principal } from '../caps/ids.js';
import type { Identity } from '../identity/identity.js';
import type { Forwarder } from '../kernel/kernel.js';
import { connectNode, type RemoteNode } from './client.js';

export interface Peers {
  readonly forward: Forwarder;
  close(): void;
}

const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 60_000;

export const makePeers = (
  urls: readonly string[],
  options: { identity: Identity; random: (n: number) => Uint8Array; clock?: () => number },
): Peers => {
  const clock = options.clock ?? Date.now;
  const connections = new Map<string, Promise<RemoteNode>>();
  /** url → when it may be tried again, and the wait after the next failure */
  const backoff = new Map<string, { until: number; next: number }>();
  const reach = (url: string) => {
    const waiting = backoff.get(url);
    if (waiting && clock() < waiting.until) return Promise.reject(new Error(`${url} is backing off`));
    let connection = connections.get(url);
    if (!connection) {
      connection = connectNode(url, options);
      connections.set(url, connection);
      connection.then(
        (remote) => {
          backoff.delete(url);
          void remote.session.closed.then(() => connections.delete(url));
        },
        () => {
          connections.delete(url);
          const wait = waiting?.next ?? FIRST_BACKOFF_MS;
          backoff.set(url, { until: clock() + wait, next: Math.min(wait * 2, MAX_BACKOFF_MS) });
        },
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
      const outcome = await remote.forward(token, args, path as readonly Principal[]);
      if (outcome.status === 'revoked' && outcome.reason === 'disconnected') {
        unreachable = true;
        continue;
      }
      if (outcome.status === 'revoked' && outcome.reason === 'unknown token') continue;
      return { outcome, peer: remote.session.peer };
    }
    return unreachable ? { outcome: Object.freeze({ status: 'revoked' as const, reason: 'unreachable' }) } : undefined;
  };
  return {
    forward,
    close: () => {
      for (const connection of connections.values()) connection.then((remote) => remote.close(), () => {});
    },
  };
};
