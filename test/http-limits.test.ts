/**
 * The node's port against clients that never finish: a slow-loris request
 * (headers begun, never ended), a connection that says nothing, and many
 * connections from one address or in all that never authenticate. Real
 * sockets against a real node, with the limits set small through serveNode's
 * `http` option; bounds on time are generous multiples of those limits.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { openKernel } from '../src/index.js';
import { generateIdentity } from '../src/identity/index.js';
import { serveNode, HTTP_LIMITS, type HttpLimits } from '../src/net/node.js';
import { connectNode } from '../src/net/client.js';
import { makeWebPage } from '../src/web/page.js';

const random = (n: number) => new Uint8Array(randomBytes(n));

const serve = async (t: import('ava').ExecutionContext, http: Partial<HttpLimits>) => {
  const identity = generateIdentity(random);
  const kernel = await openKernel({ memory: true, identity, limits: { vats: 1 } });
  const server = await serveNode(kernel, { identity, random, http, web: makeWebPage(kernel, { key: 'k'.repeat(32) }) });
  t.teardown(async () => {
    await server.close();
    await kernel.close();
  });
  const { port } = new URL(server.url);
  return { server, port: Number(port), identity };
};

interface Raw {
  readonly socket: Socket;
  /** Resolves, once the server closes the connection, with the ms since it was opened and what was received. */
  readonly closed: Promise<{ ms: number; received: string }>;
  readonly isOpen: () => boolean;
}

/** A raw TCP client that sends `text` once connected and then nothing more. */
const raw = (port: number, text: string, localAddress = '127.0.0.1'): Promise<Raw> =>
  new Promise((resolve, reject) => {
    const began = Date.now();
    let received = '';
    let open = true;
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    socket.on('data', (chunk) => (received += chunk));
    socket.on('error', () => {}); // a reset is a close too
    const closed = new Promise<{ ms: number; received: string }>((done) =>
      socket.on('close', () => {
        open = false;
        done({ ms: Date.now() - began, received });
      }),
    );
    socket.once('connect', () => {
      if (text) socket.write(text);
      resolve({ socket, closed, isOpen: () => open });
    });
    socket.once('error', reject);
  });

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('the defaults are named, and shorter than a slow-loris would like', (t) => {
  t.true(HTTP_LIMITS.headersTimeoutMs <= 10_000, `headers ${HTTP_LIMITS.headersTimeoutMs} ms`);
  t.true(HTTP_LIMITS.requestTimeoutMs <= 30_000, `request ${HTTP_LIMITS.requestTimeoutMs} ms`);
  t.true(Object.isFrozen(HTTP_LIMITS));
});

test('a connection that sends nothing at all is closed once the header time limit passes', async (t) => {
  // Alone, not beside a slow-loris whose timing could close it too.
  const headersTimeoutMs = 600;
  const { port } = await serve(t, { headersTimeoutMs, requestTimeoutMs: 1200 });
  const silent = await raw(port, '');
  const { ms } = await silent.closed;
  t.true(ms < headersTimeoutMs + 5000, `closed after ${ms} ms`);
  t.true(ms >= headersTimeoutMs / 2, `not before its time (${ms} ms)`);
});

test('a half-sent request, and a connection that sends nothing, are closed once the header time limit passes', async (t) => {
  const headersTimeoutMs = 600;
  const { port } = await serve(t, { headersTimeoutMs, requestTimeoutMs: 1200 });
  const loris = await raw(port, 'GET / HTTP/1.1\r\nHost: x\r\n');
  const silent = await raw(port, '');
  const [a, b] = await Promise.all([loris.closed, silent.closed]);
  // Generous: the limit plus Node's check interval plus a loaded machine's delay — against 60–90 s without limits.
  const bound = headersTimeoutMs + 5000;
  t.true(a.ms < bound, `the slow-loris connection was closed after ${a.ms} ms`);
  t.true(b.ms < bound, `the silent connection was closed after ${b.ms} ms`);
  t.true(a.ms >= headersTimeoutMs / 2, `not before its time (${a.ms} ms)`);
  t.regex(a.received, /^(HTTP\/1\.1 408 |$)/, 'answered 408 or just closed');
});

test('a request whose body trickles in is closed once the request time limit passes', async (t) => {
  const requestTimeoutMs = 1000;
  const { port } = await serve(t, { headersTimeoutMs: 500, requestTimeoutMs });
  const trickle = await raw(port, 'POST /api/state HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\nx');
  const timer = setInterval(() => trickle.isOpen() && trickle.socket.write('x'), 100);
  t.teardown(() => clearInterval(timer));
  const { ms } = await trickle.closed;
  t.true(ms < requestTimeoutMs + 5000, `closed after ${ms} ms`);
});

test('connections that have not authenticated are capped per address and in all; an authenticated session stops counting', async (t) => {
  // Long time limits: whatever closes here is the caps' doing.
  const { server, port } = await serve(t, { headersTimeoutMs: 60_000, requestTimeoutMs: 60_000, maxPendingPerAddress: 3, maxPending: 4 });
  const first = await Promise.all([0, 1, 2].map(() => raw(port, 'GET / HTTP/1.1\r\n')));
  const fourth = await raw(port, '');
  const { ms } = await fourth.closed;
  t.true(ms < 5000, `the fourth from one address was closed at once (${ms} ms)`);
  await settle(100);
  t.true(first.every((c) => c.isOpen()), 'the first three are still open');

  // Another address still gets in, up to the total.
  const other = await raw(port, '', '127.0.0.2');
  await settle(100);
  t.true(other.isOpen(), 'a second address has its own count');
  const overTotal = await raw(port, '', '127.0.0.3');
  await overTotal.closed;
  t.pass('past the total, a third address is closed too');

  // Free one place: an authenticated session takes it only while it authenticates.
  first[0]!.socket.destroy();
  await first[0]!.closed;
  await settle(100);
  const client = await connectNode(server.url, { identity: generateIdentity(random), random });
  t.teardown(() => client.close());
  await settle(100);
  const after = await raw(port, 'GET / HTTP/1.1\r\n');
  await settle(200);
  t.true(after.isOpen(), 'the authenticated session gave its place back');
  t.true(client.session !== undefined);
  for (const c of [...first, other, after]) c.socket.destroy();
});

test('an address that opens connections faster than its rate is refused at once past its burst; another address is not', async (t) => {
  const { server, port } = await serve(t, { maxPendingPerAddress: 8, newPerAddressPerSecond: 2 });
  // Open and drop, one after another: never more than one pending, so only the rate can refuse them.
  for (let i = 0; i < 16; i += 1) {
    const connection = await raw(port, '');
    connection.socket.destroy();
    await connection.closed;
  }
  // Without the rate it would stay open until the header time limit (10 s).
  const refusedNow = await raw(port, '');
  const { ms } = await refusedNow.closed;
  t.true(ms < 1000, `past its burst of 8 (and 2 a second), the next connection from 127.0.0.1 is closed at once (${ms} ms)`);
  const elsewhere = await raw(port, 'GET / HTTP/1.1\r\n', '127.0.0.2');
  await settle(200);
  t.true(elsewhere.isOpen(), '127.0.0.2 has an allowance of its own');
  elsewhere.socket.destroy();
  // The allowance comes back with time: one connection a half second.
  await settle(1_200);
  const client = await connectNode(server.url, { identity: generateIdentity(random), random });
  t.teardown(() => client.close());
  t.truthy(client.session.peer, 'once the rate allows, the address gets in again');
});
