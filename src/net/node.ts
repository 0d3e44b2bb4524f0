/// <reference types="ses" />
/**
 * A node on the network: a WebSocket server in front of a kernel. Every
 * connection authenticates first; the authenticated principal is then
 * `ctx.caller` for every call it makes. A peer can call tokens — nothing
 * else: holding a token is the authority, and the connection adds only who
 * is asking.
 */
import { E, Far } from '@endo/far';
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Principal } from '../interface/ids.js';
import type { Identity } from '../identity/identity.js';
import type { Forwarder, Kernel } from '../kernel/kernel.js';
import { ownerOf } from '../kernel/owner.js';
import { makePeers, type Peers, type PeerState } from './peers.js';
import { makeMembership, type Membership, type MembershipPowers } from './membership.js';
import { connectNode, type RemoteNode } from './client.js';
import { ownerFacet, serveOperation } from './owner.js';
import { acceptSession, meterBeforeAuthentication, MAX_FRAME_BYTES, type Session } from './session.js';
import { silentLog, type Log } from './log.js';
import { makeAddressBook, type AddressRecord } from './addresses.js';
import { GridError } from '../interface/errors.js';
import { MAX_PREAUTH_BYTES } from './handshake.js';
import { NodeSessions, refusing, type TabPeer } from './sessions.js';

export { MAX_LOGGED_REFUSALS, NodeSessions } from './sessions.js';


export interface NodeServer {
  readonly url: string;
  /** The web page's address, access key included, when the node serves one. */
  readonly web?: string;
  close(): Promise<void>;
}

/**
 * The node's web page (web/page.ts makes one), as the HTTP side of its port
 * serves it: made by whoever starts the node, so net/ needs nothing of web/.
 */
export interface WebPage {
  /** Answer one HTTP request. Never throws. */
  handle(request: IncomingMessage, response: ServerResponse): void;
  /** The page's address, key included, for the listen host and port. */
  url(host: string, port: number): string;
  /** Once the server listens: its port, which every accepted Host header must carry. */
  listening(host: string, port: number): void;
  /** Whether a browser page of `origin`, asking with Host `host`, is one this node served (a tab node joins so). */
  servesOrigin(origin: string, host: string | undefined): boolean;
  /** End the live streams and stop listening to the journal. */
  close(): void;
}

export interface ServeOptions {
  readonly identity: Identity;
  readonly random: (n: number) => Uint8Array;
  readonly host?: string;
  readonly port?: number;
  /** Web origins allowed to connect; a browser from any other site is refused. */
  readonly allowedOrigins?: readonly string[];
  readonly handshakeMs?: number;
  /** Shared with the node's outbound peer connections; made here if absent. */
  readonly sessions?: NodeSessions;
  /** Invitations and joining, once the node has them. */
  readonly membership?: () => Membership | undefined;
  /** Serve the node's read-only web page (src/web/page.ts) on the same port, closed with the server or if serving fails; without it, plain HTTP gets 426. */
  readonly web?: WebPage;
  /**
   * If `port` is taken, listen on a free one instead (logged at warn) rather
   * than fail: a node coming back on its remembered port whose port someone
   * else took. Its peers then follow it (addresses.ts).
   */
  readonly fallbackPort?: boolean;
  /** Where the node's events go (net/log.ts); without it, nowhere. */
  readonly log?: Log;
  /** Time limits and connection caps of the HTTP side (defaults: HTTP_LIMITS). */
  readonly http?: Partial<HttpLimits>;
  /** Where the node's control plane (src/p2p) listens, once it does; none without one. */
  readonly multiaddrs?: () => readonly string[];
}

/**
 * What a stranger can hold open on the node's port before it has proven who
 * it is (a WebSocket session authenticated) — a plain HTTP exchange counts
 * for the whole of its connection. A slow-loris client that sends half a
 * request and then nothing is dropped once `headersTimeoutMs` passes; one
 * that trickles a body, once `requestTimeoutMs` passes; an idle keep-alive
 * connection after `keepAliveTimeoutMs`. A WebSocket upgrade then has the
 * session's handshake deadline (session.ts) to authenticate. Past either cap
 * a new connection is closed at once, before a byte of it is read; and so is
 * one from an address that opened more than `newPerAddressPerSecond` a
 * second (past a burst of `maxPendingPerAddress`): a stranger that opens and
 * drops connections as fast as it can would otherwise make the node set up a
 * WebSocket and a handshake for each (measured: 370 a second from one
 * address took honest clients' p99 to 4.3×).
 */
export interface HttpLimits {
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs: number;
  /** Connections not yet authenticated, from one address. */
  readonly maxPendingPerAddress: number;
  /** Connections not yet authenticated, in all. */
  readonly maxPending: number;
  /** New connections one address may open per second, once it has opened maxPendingPerAddress at once. */
  readonly newPerAddressPerSecond: number;
}

export const HTTP_LIMITS: HttpLimits = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxPendingPerAddress: 64,
  maxPending: 512,
  newPerAddressPerSecond: 32,
});

/** Addresses whose connection rate is remembered; past it the oldest is forgotten. */
const MAX_RATED_ADDRESSES = 10_000;

const refuse = (code: string, message: string): never => {
  throw new GridError(code, message);
};

/**
 * What a client can do with a node over CapTP: call tokens it holds, as
 * itself, and redeem an invitation.
 */
const makeNodeFacet = (
  kernel: Kernel,
  peer: Principal,
  membership: () => Membership | undefined,
  log: Log,
  heard: { address(record: unknown): Promise<unknown>; announce(records: unknown): number },
  multiaddrs: () => readonly string[],
) => {
  // The token may arrive as a promise — say `E.get(E(node).call(order)).token`,
  // the further promise of a call not yet answered: CapTP hands the node its
  // own answer's promise, so the second call waits here, not a round trip
  // away (promise pipelining).
  const call = async (token: string | Promise<string>, args: unknown[] = [], options: { follow?: boolean } = {}) =>
    kernel.call(await token, args, { follow: options?.follow === true, caller: peer });
  const member = () => membership() ?? refuse('ERR_NO_INVITATIONS', 'this node takes no invitations');
  const redeem = (token: string, joinerUrl?: string) => member().redeem(token, joinerUrl);
  // What waits here for this peer's approval, or for it to collect.
  const pending = serveOperation('pending', async () => kernel.pendingFor(peer));
  const { address, announce } = heard;
  // Where this node's libp2p side listens: a node that dials this one bootstraps its DHT from here.
  const p2p = async () => [...multiaddrs()];
  const everyone = { principal: () => kernel.principal, call, redeem, address, announce, pending, p2p };
  // The node's own principal — its home's CLI — also gets to act as the node: the owner API (kernel/owner.ts), and invitations.
  const { pending: _forOwner, ...operations } = ownerFacet(ownerOf(kernel));
  const owner = {
    invite: (expiresInMs: number) => member().invite(Number(expiresInMs)),
    join: (invitationUrl: string) => member().join(String(invitationUrl)),
    ...operations,
  };
  if (peer === kernel.principal) return Far('PromiseGridOwner', refusing({ ...everyone, ...owner }, log, peer));
  // Anyone else asking for the owner's methods is refused by name, in one line (CapTP's own "no such method" is an Error, logged with its stack).
  const notYours = Object.fromEntries(
    Object.keys(owner).map((method) => [method, () => refuse('ERR_NOT_OWNER', `${method}: only this node's own principal may ${method} through it`)]),
  ) as { [K in keyof typeof owner]: () => never };
  return Far('PromiseGridNode', refusing({ ...everyone, ...notYours }, log, peer));
};

const httpLimits = (given: Partial<HttpLimits> = {}): HttpLimits => {
  for (const [name, value] of Object.entries(given)) {
    if (!(name in HTTP_LIMITS)) throw new TypeError(`serveNode: unknown HTTP limit ${JSON.stringify(name)}`);
    if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`serveNode: the HTTP limit ${name} must be a positive integer (got ${String(value)})`);
  }
  const limits = { ...HTTP_LIMITS, ...given };
  if (limits.requestTimeoutMs < limits.headersTimeoutMs) throw new RangeError(`serveNode: requestTimeoutMs (${limits.requestTimeoutMs}) is shorter than headersTimeoutMs (${limits.headersTimeoutMs})`);
  return limits;
};

/**
 * Count the connections that have not authenticated, per remote address and
 * in all, and close a new one at once past either cap. A connection stops
 * counting when it closes or when its WebSocket session is authenticated.
 * Once upgraded, the bytes it sends are counted too, until it authenticates:
 * past MAX_PREAUTH_BYTES it is closed at once.
 */
const capPending = (http: Server, limits: HttpLimits, log: Log, clock: () => number) => {
  const perAddress = new Map<string, number>();
  let total = 0;
  /** Per address, the connections it may still open now (a token bucket) and when that was reckoned. */
  const allowance = new Map<string, { left: number; at: number }>();
  const mayOpen = (address: string): boolean => {
    const now = clock();
    const burst = limits.maxPendingPerAddress;
    const refill = (bucket: { left: number; at: number }) => {
      bucket.left = Math.min(burst, bucket.left + (Math.max(0, now - bucket.at) / 1000) * limits.newPerAddressPerSecond);
      bucket.at = now;
    };
    let bucket = allowance.get(address);
    if (!bucket) {
      // The oldest is forgotten: it gets a fresh allowance, as a new address does (an attacker with many
      // addresses has fresh ones anyway; the caps on connections pending bound them all together).
      if (allowance.size >= MAX_RATED_ADDRESSES) allowance.delete(allowance.keys().next().value!);
      allowance.set(address, (bucket = { left: burst, at: now }));
    }
    refill(bucket);
    if (bucket.left < 1) return false;
    bucket.left -= 1;
    return true;
  };
  const release = new WeakMap<Socket, () => void>();
  const stopReading = new WeakMap<Socket, () => void>();
  http.on('connection', (socket: Socket) => {
    const address = socket.remoteAddress ?? '';
    const count = perAddress.get(address) ?? 0;
    const refusal =
      count >= limits.maxPendingPerAddress || total >= limits.maxPending
        ? 'too many not yet authenticated'
        : !mayOpen(address)
          ? `more than ${limits.newPerAddressPerSecond} new connections a second from it`
          : undefined;
    if (refusal) {
      // debug, not info: a flood of these must not become a flood of log lines.
      log.debug({ event: 'connection-refused', address, pending: count, total }, `connection from ${address} refused: ${refusal}`);
      socket.destroy();
      return;
    }
    perAddress.set(address, count + 1);
    total += 1;
    let counted = true;
    const done = () => {
      if (!counted) return;
      counted = false;
      total -= 1;
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
    };
    release.set(socket, done);
    socket.once('close', done);
  });
  return {
    /**
     * `socket` now carries the WebSocket `ws`. Its bytes are counted as they
     * arrive (after ws's receiver has taken each read, which is why one read
     * may pass the limit); past MAX_PREAUTH_BYTES the close reason is sent if
     * it can go out and the TCP connection is destroyed at once.
     */
    upgraded: (socket: Socket, ws: WebSocket) => {
      const address = socket.remoteAddress ?? '';
      const stop = meterBeforeAuthentication(socket, (read) => {
        log.debug(
          { event: 'preauth-overrun', address, read, limit: MAX_PREAUTH_BYTES },
          `connection from ${address} closed: ${read} bytes before authenticating (limit ${MAX_PREAUTH_BYTES})`,
        );
        ws.close(1008, `handshake: more than ${MAX_PREAUTH_BYTES} bytes before authentication`);
        ws.terminate();
      });
      stopReading.set(socket, stop);
    },
    authenticated: (socket: Socket) => {
      stopReading.get(socket)?.();
      release.get(socket)?.();
    },
    /** Connections counted now, for tests and the curious. */
    counts: () => ({ total, addresses: perAddress.size }),
  };
};

export const serveNode = async (kernel: Kernel, options: ServeOptions): Promise<NodeServer> => {
  const page = options.web;
  let limits: HttpLimits;
  try {
    if (options.identity.principal !== kernel.principal) {
      throw new TypeError(`serveNode: the node must authenticate as its kernel's principal ${kernel.principal}`);
    }
    limits = httpLimits(options.http);
  } catch (error) {
    page?.close();
    throw error;
  }
  const allowed = new Set(options.allowedOrigins ?? []);
  const log = options.log ?? silentLog;
  // One port for both: WebSocket upgrades go to the node's sessions, plain
  // HTTP to the web page — or, without one, the 426 that ws itself answers.
  const http = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node checks the two timeouts above only this often (30 s by default): a limit is as late as its check.
      connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
    },
    (request, response) => {
      if (page) return page.handle(request, response);
      const body = STATUS_CODES[426]!;
      response.writeHead(426, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
      response.end(body);
    },
  );
  const pending = capPending(http, limits, log, Date.now);
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      const failed = (error: Error) => {
        http.off('listening', listened);
        reject(error);
      };
      const listened = () => {
        http.off('error', failed);
        resolve();
      };
      http.once('listening', listened);
      http.once('error', failed);
      http.listen(port, options.host ?? '127.0.0.1');
    });
  try {
    try {
      await listen(options.port ?? 0);
    } catch (error) {
      if (!options.fallbackPort || !options.port || (error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      await listen(0);
      const taken = options.port;
      const now = (http.address() as { port: number }).port;
      log.warn({ event: 'port-taken', port: taken, listening: now }, `port ${taken} is taken: listening on ${now} instead; peers are told where`);
    }
  } catch (error) {
    page?.close();
    throw error;
  }
  const server = new WebSocketServer({
    server: http,
    maxPayload: MAX_FRAME_BYTES,
    // Browsers always send Origin; other clients don't. A page from another
    // site must not be able to drive this node with the user's browser. The
    // node's own pages may connect: an app page's tab node joins so, as its
    // own principal (a stranger here), never as the node's owner.
    verifyClient: ({ origin, req }: { origin?: string; req: IncomingMessage }) =>
      origin === undefined || allowed.has(origin) || page?.servesOrigin(origin, req.headers.host) === true,
  });
  const sessions = options.sessions ?? new NodeSessions(kernel);
  server.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    socket.on('error', () => socket.terminate());
    pending.upgraded(request.socket, socket);
    let accepted: Session | undefined;
    const offer = (peer: Principal) => ({
      bootstrap: makeNodeFacet(kernel, peer, options.membership ?? (() => undefined), log, {
        address: (record) => sessions.hearAddress(record, peer, accepted),
        announce: (records) => sessions.announce(peer, records),
      }, options.multiaddrs ?? (() => [])),
      handlers: sessions.handlers(peer),
    });
    acceptSession(socket, { ...options, offer }).then(
      (session) => {
        accepted = session;
        pending.authenticated(request.socket);
        sessions.track(session);
      },
      () => {}, // refused: acceptSession closed the socket with the reason
    );
  });
  const address = http.address();
  const { address: host, port } = typeof address === 'object' && address ? address : { address: '127.0.0.1', port: 0 };
  page?.listening(host, port);
  return harden({
    url: `ws://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ...(page ? { web: page.url(host, port) } : {}),
    close: async () => {
      if (!options.sessions) sessions.close();
      page?.close();
      for (const client of server.clients) client.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // ws does not close a server it was given: stop listening, and drop idle keep-alive and live-view connections.
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await closed;
    },
  });
};

/** What the control plane is handed when the node listens (src/p2p/routing.ts). */
export interface ControlPlaneParts {
  readonly kernel: Kernel;
  /** The node's own signed address record. */
  readonly ownAddress: () => AddressRecord | undefined;
  /** A session to another node, handled and tracked as a dialled peer's. */
  readonly connect: (url: string) => Promise<RemoteNode>;
}

/** The node's control plane as the node uses it (src/p2p/routing.ts `Routing`). */
export interface ControlPlane {
  /** Asked about a call no peer could answer. */
  readonly forward: Forwarder;
  multiaddrs(): string[];
  /** Reach `principal`'s control plane at the addresses it gave. */
  bootstrap(addresses: readonly unknown[], principal: Principal): Promise<void>;
  close(): Promise<void>;
}

/** Control-plane addresses taken from one peer. */
const MAX_BOOTSTRAP_ADDRESSES = 16;

export interface GridNode {
  readonly kernel: Kernel;
  readonly server: NodeServer;
  readonly peers: Peers;
  /** Stop serving, drop the peers, close the kernel (its journal flushed). */
  close(): Promise<void>;
}

/**
 * A whole node: a kernel that forwards what it cannot answer to its peers,
 * served on a WebSocket, with one NodeSessions for inbound and outbound
 * connections alike. `open` makes the kernel, given the forwarder to use.
 */
export const startNode = async (
  open: (forward: Forwarder) => Promise<Kernel>,
  options: Omit<ServeOptions, 'sessions' | 'membership' | 'web'> & {
    /** Serve a web page too: made here for the kernel, given the peers and the tab nodes connected as they stand (web/page.ts). */
    readonly web?: (kernel: Kernel, peers: () => readonly PeerState[], tabs: () => readonly TabPeer[]) => WebPage;
    readonly peers?: readonly string[];
    /** Where invitations are kept; without it the node hands out none. */
    readonly invitations?: MembershipPowers['invitations'];
    /** Keep peer URLs learned by joining across restarts. */
    readonly remember?: (urls: readonly string[]) => Promise<void>;
    /** Address records believed before a restart, and where to keep them (addresses.ts). */
    readonly addresses?: { readonly known: readonly AddressRecord[]; save(records: readonly AddressRecord[]): Promise<void> };
    /** A peer moved: remember `url` in place of the `former` URLs it was kept at. */
    readonly moved?: (former: readonly string[], url: string) => Promise<void>;
    /** Start the node's control plane (src/p2p) once it listens: how it finds nodes its peers do not know. */
    readonly controlPlane?: (parts: ControlPlaneParts) => Promise<ControlPlane>;
  },
): Promise<GridNode> => {
  let peers: Peers | undefined;
  // No call reaches the forwarder before the kernel is served, and by then the peers exist.
  let sessions: NodeSessions | undefined;
  let plane: ControlPlane | undefined;
  // A token a connected tab answers goes to the tab; any other to the peers, and what no peer has to the control plane.
  const viaPeers: Forwarder = async (request) => {
    const heard = await peers?.forward(request);
    if (!plane || (heard && !(heard.answer.outcome.status === 'revoked' && heard.answer.outcome.code === 'unreachable'))) return heard;
    return (await plane.forward(request)) ?? heard;
  };
  const kernel = await open(async (request) => (await sessions?.hosted.forward(request)) ?? viaPeers(request));
  sessions = new NodeSessions(kernel);
  const { identity, random } = options;
  const log = options.log ?? silentLog;
  const book = makeAddressBook({
    identity,
    clock: Date.now,
    known: options.addresses?.known ?? [],
    peers: () => peers?.state() ?? [],
    move: async (_principal, url, former) => {
      for (const old of former) peers?.drop(old);
      peers?.add(url);
      await options.moved?.(former, url);
    },
    save: options.addresses?.save ?? (async () => {}),
  });
  sessions.useAddresses(book, (principal) => peers?.state().some((peer) => peer.principal === principal) ?? false, log);
  peers = makePeers(options.peers ?? [], { identity, random, sessions, log });
  let membership: Membership | undefined;
  let server: NodeServer;
  try {
    const { web: webOptions, ...serveOptions } = options;
    const p = peers;
    const connected = sessions;
    const web = webOptions?.(kernel, () => p.state(), () => connected.tabs());
    const { controlPlane, ...serving } = serveOptions;
    server = await serveNode(kernel, { ...serving, sessions, membership: () => membership, multiaddrs: () => plane?.multiaddrs() ?? [], ...(web ? { web } : {}) });
    log.info({ event: 'listening', principal: kernel.principal, url: server.url }, `node ${kernel.principal} listening on ${server.url}`);
    await sessions.listening(server.url);
    if (controlPlane) {
      plane = await controlPlane({
        kernel,
        ownAddress: () => book.own(),
        connect: async (url) => {
          const remote = await connectNode(url, { identity, random, offer: (principal) => connected.offer(principal) });
          connected.track(remote.session, { dialled: true });
          return remote;
        },
      });
      const started = plane;
      // Every node this one dials is a way into the DHT: ask it where its control plane listens.
      sessions.onDialled((session) =>
        void E(session.bootstrap() as Promise<{ p2p(): Promise<unknown> }>)
          .p2p()
          .then((addresses) => (Array.isArray(addresses) ? started.bootstrap(addresses.slice(0, MAX_BOOTSTRAP_ADDRESSES), session.peer) : undefined))
          .catch(() => {}),
      );
    }
    const invitations = options.invitations;
    if (invitations) {
      membership = makeMembership({
        principal: kernel.principal,
        url: server.url,
        peers,
        invitations,
        clock: Date.now,
        random,
        connect: (url) => connectNode(url, { identity, random }),
        remember: options.remember ?? (async () => {}),
        multiaddrs: () => plane?.multiaddrs() ?? [],
        bootstrap: async (addresses, introducer) => void (await plane?.bootstrap(addresses, introducer)),
      });
    }
  } catch (error) {
    peers.close();
    sessions.close();
    await plane?.close();
    await kernel.close();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return harden({
    kernel,
    server,
    peers,
    close: () =>
      (closing ??= (async () => {
        peers!.close();
        await plane?.close();
        await server.close();
        sessions.close();
        await kernel.close();
      })()),
  });
};
