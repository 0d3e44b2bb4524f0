/**
 * A session corks the TCP socket under its WebSocket while a turn's frames
 * are sent (net/session.ts, `corkable`). ws offers no public way to do it,
 * so `corkable` reaches for ws's private `_socket`: this test says when a ws
 * upgrade takes that away (the cork is then lost — calls get slower, not
 * wrong), and that anything else degrades to no cork.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { corkable } from '../src/net/session.js';

test("the ws in node_modules has a corkable socket under each WebSocket, both ends", async (t) => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  t.teardown(() => server.close());
  await new Promise((resolve) => server.once('listening', resolve));
  const accepted = new Promise<WebSocket>((resolve) => server.once('connection', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as { port: number }).port}`);
  t.teardown(() => client.terminate());
  await new Promise((resolve) => client.once('open', resolve));
  t.true(corkable(client) instanceof Socket, 'the dialling end');
  t.true(corkable(await accepted) instanceof Socket, 'the accepting end');
});

test('anything without a corkable socket under it gets no cork', (t) => {
  for (const [what, socket] of [
    ['no _socket', {}],
    ['a null _socket', { _socket: null }],
    ['a _socket that is not an object', { _socket: 'tcp' }],
    ['a _socket without cork', { _socket: { uncork() {} } }],
    ['a _socket whose cork is not a function', { _socket: { cork: 1, uncork() {} } }],
  ] as const) {
    t.is(corkable(socket as unknown as WebSocket), undefined, what);
  }
});
