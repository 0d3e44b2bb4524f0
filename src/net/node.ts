/// <reference types="ses" />
/**
 * A node on the network: a WebSocket server in front of a kernel. Every
 * connection authenticates first; the authenticated principal is then
 * `ctx.caller` for every call it makes. The bootstrap object a client gets
 * can call tokens — nothing else: holding a token is the authority, and the
 * connection adds only who is asking.
 */
import { Far } from '@endo/far';
import { WebSocketServer, type WebSocket } from 'ws';
import { asPrincipal, type Principal } from '../caps/ids.js';
import type { Identity } from '../identity/identity.js';
import type { Kernel } from '../kernel/kernel.js';
import { acceptSession, type Session } from './session.js';

/** Largest frame after authentication; the strict decoder's own limit. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;

export interface NodeServer {
  readonly url: string;
  close(): Promise<void>;
}

export interface ServeOptions {
  readonly identity: Identity;
  readonly random: (n: number) => Uint8Array;
  readonly host?: string;
  readonly port?: number;
  /** Web origins allowed to connect; a browser from any other site is refused. */
  readonly allowedOrigins?: readonly string[];
  readonly handshakeMs?: number;
}

/** What a client can do with a node: call tokens it holds, as itself. */
const makeNodeFacet = (kernel: Kernel, peer: Principal) => {
  const call = (token: string, args: unknown[] = [], options: { follow?: boolean } = {}) =>
    kernel.call(token, args, { follow: options?.follow === true, caller: peer });
  /** A call another node could not answer itself; `path` is the nodes it passed, ending with that node. */
  const forward = (token: string, args: unknown[] = [], path: unknown = []) => {
    if (!Array.isArray(path) || path.length === 0 || path.length > kernel.limits.maxHops || path.at(-1) !== peer) {
      return Object.freeze({ status: 'revoked', reason: 'bad forwarding path' });
    }
    return kernel.call(token, args, { caller: peer, path: path.map((p) => asPrincipal(p)) });
  };
  if (peer !== kernel.principal) return Far('PromiseGridNode', { principal: () => kernel.principal, call, forward });
  // The node's own principal — its home's CLI — also gets to act as the node.
  return Far('PromiseGridOwner', {
    principal: () => kernel.principal,
    call,
    forward,
    /** Module bytes travel as base64: CapTP passes strings, not byte arrays. */
    publish: (base64: string) => kernel.publish(new Uint8Array(Buffer.from(String(base64), 'base64'))),
    issue: (spec: { code: string; export: string; env?: unknown; timeLimitMs?: number }) => kernel.issue(spec),
    revoke: (token: string, reason?: string) => kernel.revoke(token, reason),
  });
};

export const serveNode = async (kernel: Kernel, options: ServeOptions): Promise<NodeServer> => {
  if (options.identity.principal !== kernel.principal) {
    throw new TypeError(`serveNode: the node must authenticate as its kernel's principal ${kernel.principal}`);
  }
  const allowed = new Set(options.allowedOrigins ?? []);
  const server = new WebSocketServer({
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 0,
    maxPayload: MAX_FRAME_BYTES,
    // Browsers always send Origin; other clients don't. A page from another
    // site must not be able to drive this node with the user's browser.
    verifyClient: ({ origin }: { origin?: string }) => origin === undefined || allowed.has(origin),
  });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const sessions = new Set<Session>();
  server.on('connection', (socket: WebSocket) => {
    socket.on('error', () => socket.terminate());
    acceptSession(socket, { ...options, bootstrap: (peer) => makeNodeFacet(kernel, peer) }).then(
      (session) => {
        sessions.add(session);
        void session.closed.then(() => sessions.delete(session));
      },
      () => {}, // refused: acceptSession closed the socket with the reason
    );
  });
  const address = server.address();
  const { address: host, port } = typeof address === 'object' && address ? address : { address: '127.0.0.1', port: 0 };
  return harden({
    url: `ws://${host.includes(':') ? `[${host}]` : host}:${port}`,
    close: async () => {
      for (const client of server.clients) client.terminate();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
};
