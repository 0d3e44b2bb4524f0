/**
 * A node that cannot be dialled — a browser tab — joining the node that
 * served it. It keeps one connection to that node (peers.ts: redialled after
 * a backoff whenever it drops), forwards there every call on a token it
 * does not hold, answers the calls the node routes to it, syncs documents
 * over it (doc-sync.ts, as any node does), and tells the node which
 * closures it issued — on every connect, and as it issues more — so that
 * calls on them reach it (hosted.ts).
 */
import { E } from '@endo/far';
import { base64 } from 'multiformats/bases/base64';
import type { Token } from '../interface/ids.js';
import type { Identity } from '../identity/identity.js';
import type { Forwarder, Kernel } from '../kernel/kernel.js';
import { MAX_ANNOUNCED } from './hosted.js';
import { NodeSessions } from './sessions.js';
import { makePeers, type PeerState } from './peers.js';
import type { OpenSocket } from './client.js';
import type { Session } from './session.js';
import { silentLog, type Log } from './log.js';

export interface JoinedNode {
  /** The kernel's forwarder: calls on tokens it does not hold go to the node joined. */
  readonly forward: Forwarder;
  /** The node now answers `tokens` (closures issued here) through this connection. */
  announce(tokens: readonly Token[]): Promise<void>;
  /** The connection as it stands. */
  state(): PeerState;
  /** The session, while connected. */
  session(): Session | undefined;
  /** Resolves at the next connect (at once if connected). */
  connected(): Promise<Session>;
  /** Drop the connection now (the network went away): calls on tokens not held here end `unreachable` until `redial`. */
  disconnect(): void;
  /** Dial again now, not at the end of a backoff (the network is back). */
  redial(): void;
  close(): void;
}

type NodeFacet = { announce(records: string[]): Promise<number> };

export const joinNode = (
  kernel: Kernel,
  url: string,
  powers: {
    identity: Identity;
    random: (n: number) => Uint8Array;
    openSocket?: OpenSocket;
    log?: Log;
    setTimer?: (ms: number, callback: () => void) => () => void;
    clock?: () => number;
  },
): JoinedNode => {
  const log = powers.log ?? silentLog;
  const sessions = new NodeSessions(kernel, log);
  let current: Session | undefined;
  let waiting: Array<(session: Session) => void> = [];

  const announceOn = async (session: Session, tokens: readonly Token[]) => {
    for (let i = 0; i < tokens.length; i += MAX_ANNOUNCED) {
      const records = await Promise.all(tokens.slice(i, i + MAX_ANNOUNCED).map(async (token) => base64.baseEncode(await kernel.issuedRecord(token))));
      await E(session.bootstrap() as Promise<NodeFacet>).announce(records);
    }
  };
  const issuedHere = () => kernel.hosted().tokens.filter((row) => row.issuer === kernel.principal).map((row) => row.token);

  const peers = makePeers([url], {
    identity: powers.identity,
    random: powers.random,
    log,
    ...(powers.openSocket ? { openSocket: powers.openSocket } : {}),
    ...(powers.clock ? { clock: powers.clock } : {}),
    ...(powers.setTimer ? { setTimer: powers.setTimer } : {}),
    sessions: {
      offer: (peer) => sessions.offer(peer),
      track: (session, options) => {
        sessions.track(session, options);
        current = session;
        void session.closed.then(() => {
          if (current === session) current = undefined;
        });
        for (const resolve of waiting.splice(0)) resolve(session);
        void announceOn(session, issuedHere()).catch((error: unknown) => log.warn({ event: 'announce-failed', err: error }, `could not tell ${url} which closures this node answers`));
      },
    },
  });

  return {
    forward: peers.forward,
    announce: async (tokens) => {
      if (current) await announceOn(current, tokens);
    },
    state: () => peers.state()[0] ?? { url, connected: false, failures: 0 },
    session: () => current,
    connected: () => (current ? Promise.resolve(current) : new Promise((resolve) => waiting.push(resolve))),
    disconnect: () => peers.drop(url),
    redial: () => {
      peers.drop(url);
      peers.add(url);
    },
    close: () => {
      waiting = [];
      peers.close();
      sessions.close();
    },
  };
};
