/**
 * The peers a node keeps: one authenticated connection to each, opened at
 * once and reopened whenever it drops, after a backoff (250 ms, doubling to
 * a minute; the first success resets it). Over these connections the node
 * forwards calls for tokens it holds no closure for — to each peer in turn
 * until one answers with anything but "unknown token" — and hears the
 * revocations of tokens whose answers it cached (see NodeSessions). If no
 * peer knows the token and some could not be reached, the call ends
 * `unreachable`: the answer may exist on a node that is offline.
 */
import type { Principal } from '../interface/ids.js';
import { CANCELLED } from '../interface/cancel.js';
import { revoked, type RevokeCode } from '../interface/outcome.js';
import type { Identity } from '../identity/identity.js';
import type { Forwarder } from '../kernel/kernel.js';
import type { Answer } from '../wire/shapes.js';
import { connectNode, type OpenSocket, type RemoteNode } from './client.js';
import type { Session, SessionOptions } from './session.js';
import { silentLog, type Log } from './log.js';

export interface PeerState {
  readonly url: string;
  /** The peer's principal, once it has been reached. */
  readonly principal?: Principal;
  readonly connected: boolean;
  /** Failed attempts since the last success. */
  readonly failures: number;
}

export interface Peers {
  readonly forward: Forwarder;
  /** Keep a connection to `url` from now on (no-op if already known). */
  add(url: string): void;
  /** Stop keeping `url`: its connection closes, it is not dialled again. */
  drop(url: string): void;
  state(): PeerState[];
  close(): void;
}

export const FIRST_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 60_000;

/** Answers that say "not through this peer", so the next one is asked. */
const NOT_HERE: ReadonlySet<RevokeCode> = new Set(['unknown-token', 'loop']);
/** Answers that say "this peer could not answer": the next one is asked, and if none knows the token the call is `unreachable`. */
const MISSED: ReadonlySet<RevokeCode> = new Set(['disconnected', 'unreachable']);

const unreachable: Answer = Object.freeze({ outcome: revoked('unreachable', 'unreachable'), cacheable: false });
const cancelled: Answer = Object.freeze({ outcome: revoked('cancelled', CANCELLED), cacheable: false });

/** What the peers need of the node's sessions (NodeSessions, node.ts): what to offer a peer, and to hear of each session. */
export interface PeerSessions {
  offer: NonNullable<SessionOptions['offer']>;
  track(session: Session, options: { dialled?: boolean }): void;
}

interface Peer {
  readonly url: string;
  principal?: Principal;
  remote?: RemoteNode;
  dialing?: Promise<RemoteNode>;
  failures: number;
  /** When it may be dialled again. */
  until: number;
  cancelRetry?: () => void;
}

type Forwarded = NonNullable<Awaited<ReturnType<Forwarder>>>;

/**
 * Hand a call to one node this node reached: its answer (with the closure's
 * blocks when it is replicable), or why not — `not-here` (it knows no such
 * token, or the call would loop), `missed` (it could not answer now).
 */
export const askRemote = async (remote: RemoteNode, request: Parameters<Forwarder>[0], clock: () => number): Promise<Forwarded | 'not-here' | 'missed'> => {
  const { token, args, path, deadline, chain, signal } = request;
  // A cancelled call is cancelled on the peer too (session.call sends it a cancel).
  const answer = await remote.forward(token, args, path, deadline - clock(), chain, signal);
  const { outcome } = answer;
  if (outcome.status === 'revoked' && MISSED.has(outcome.code)) return 'missed';
  if (outcome.status === 'revoked' && NOT_HERE.has(outcome.code)) return 'not-here';
  // A replicable closure is fetched with its first answer, so this node can answer it on its own.
  const replica = answer.replicable ? await remote.session.fetch(token, Math.max(0, deadline - clock())).catch(() => undefined) : undefined;
  return { answer, peer: remote.session.peer, ...(replica ? { replica } : {}) };
};

export const makePeers = (
  urls: readonly string[],
  options: {
    identity: Identity;
    random: (n: number) => Uint8Array;
    /** How to open a WebSocket (client.ts); ws's unless given. */
    openSocket?: OpenSocket;
    /** The node's sessions: peers' calls and revocations are handled as on inbound connections. */
    sessions?: PeerSessions;
    clock?: () => number;
    log?: Log;
    setTimer?: (ms: number, callback: () => void) => () => void;
  },
): Peers => {
  const clock = options.clock ?? Date.now;
  const setTimer =
    options.setTimer ??
    ((ms, callback) => {
      const timer = setTimeout(callback, ms);
      (timer as { unref?: () => void }).unref?.(); // a node stays up for its server, not for its retries (a browser's timers have no unref)
      return () => clearTimeout(timer);
    });
  const peers = new Map<string, Peer>();
  const log = options.log ?? silentLog;
  let closed = false;

  const retryLater = (peer: Peer) => {
    peer.cancelRetry?.();
    peer.cancelRetry = setTimer(Math.max(0, peer.until - clock()), () => void dial(peer).catch(() => {}));
  };

  const dial = (peer: Peer): Promise<RemoteNode> => {
    if (peer.remote) return Promise.resolve(peer.remote);
    if (peer.dialing) return peer.dialing;
    if (closed) return Promise.reject(new Error('peers are closed'));
    if (clock() < peer.until) return Promise.reject(new Error(`${peer.url} is backing off`));
    const sessions = options.sessions;
    peer.dialing = connectNode(peer.url, { ...options, offer: sessions && ((principal) => sessions.offer(principal)) });
    peer.dialing.then(
      (remote) => {
        peer.dialing = undefined;
        if (closed || peers.get(peer.url) !== peer) return remote.close();
        peer.remote = remote;
        peer.principal = remote.session.peer;
        peer.failures = 0;
        log.info({ event: 'peer-connected', url: peer.url, peer: peer.principal }, `peer ${peer.principal} connected at ${peer.url}`);
        sessions?.track(remote.session, { dialled: true });
        void remote.session.closed.then(() => {
          if (!closed) log.info({ event: 'peer-lost', url: peer.url, peer: peer.principal }, `peer ${peer.principal} at ${peer.url} disconnected`);
          peer.remote = undefined;
          peer.until = clock() + FIRST_BACKOFF_MS;
          if (!closed && peers.get(peer.url) === peer) retryLater(peer);
        });
      },
      (error: unknown) => {
        peer.dialing = undefined;
        log.debug({ event: 'peer-unreachable', url: peer.url, failures: peer.failures + 1, err: error }, `peer at ${peer.url} unreachable`);
        peer.until = clock() + Math.min(FIRST_BACKOFF_MS * 2 ** peer.failures, MAX_BACKOFF_MS);
        peer.failures += 1;
        if (!closed && peers.get(peer.url) === peer) retryLater(peer);
      },
    );
    return peer.dialing;
  };

  const add = (url: string) => {
    if (peers.has(url)) return;
    const peer: Peer = { url, failures: 0, until: 0 };
    peers.set(url, peer);
    void dial(peer).catch(() => {});
  };
  for (const url of urls) add(url);

  const forward: Forwarder = async (request) => {
    const { path, deadline, signal } = request;
    let missed = false;
    for (const peer of peers.values()) {
      if (signal?.aborted) return { answer: cancelled };
      // A node the call has passed through would only find a loop.
      if (peer.principal && path.includes(peer.principal)) continue;
      const left = deadline - clock();
      if (left <= 0) return { answer: unreachable };
      let remote = peer.remote;
      if (!remote) {
        let cancel: (() => void) | undefined;
        try {
          // A peer still dialling (a handshake may take seconds) gets no more than the call has left.
          remote = await Promise.race([
            dial(peer),
            new Promise<never>((_, reject) => (cancel = setTimer(left, () => reject(new Error('no time left'))))),
          ]);
        } catch {
          missed = true;
          continue;
        } finally {
          cancel?.();
        }
      }
      const asked = await askRemote(remote, request, clock);
      if (asked === 'missed') missed = true;
      else if (asked !== 'not-here') return asked;
    }
    return missed ? { answer: unreachable } : undefined;
  };

  const drop = (url: string) => {
    const peer = peers.get(url);
    if (!peer) return;
    peers.delete(url);
    peer.cancelRetry?.();
    peer.remote?.close();
  };

  return {
    forward,
    add,
    drop,
    state: () =>
      [...peers.values()].map((peer) => ({ url: peer.url, principal: peer.principal, connected: peer.remote !== undefined, failures: peer.failures })),
    close: () => {
      closed = true;
      for (const peer of peers.values()) {
        peer.cancelRetry?.();
        peer.remote?.close();
      }
    },
  };
};
