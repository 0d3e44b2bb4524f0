/**
 * The perimeter installs WebSocket masking for ws (perimeter/ws-mask.ts): ws must
 * have taken it as it loaded, and it must XOR exactly as the protocol says
 * (in JavaScript below 1 KiB, through WebAssembly a MiB at a time above),
 * at every length and offset.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import WebSocket, { WebSocketServer } from 'ws';

const require = createRequire(import.meta.url);
const http = require('node:http') as { websocketMask?: (s: Uint8Array, k: Uint8Array, o: Uint8Array, offset: number, length: number) => void; websocketUnmask?: (b: Uint8Array, k: Uint8Array) => void };
// ws's exports hide its lib/; the file itself is what its receiver and sender use.
const wsBufferUtil = require(require.resolve('ws').replace(/index\.js$/, 'lib/buffer-util.js')) as { unmask: (b: Buffer, k: Buffer) => void; mask: (...args: unknown[]) => void };

/**
 * The XOR the protocol defines, byte by byte. Built in a plain array and
 * copied once: stores into a typed array take a slow path after lockdown
 * (perimeter/ws-mask.ts), which made this reference cost seconds a MiB.
 */
const naive = (bytes: Uint8Array, key: Uint8Array) => new Uint8Array(Array.from(bytes, (byte, i) => byte ^ key[i & 3]!));
/** Byte arrays compared natively: ava's deepEqual walks a megabyte item by item. */
const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0;

test('ws masks and unmasks frames with the perimeter\'s functions, not its store loop', (t) => {
  t.regex(wsBufferUtil.unmask.toString(), /websocketUnmask/);
  t.regex(wsBufferUtil.mask.toString(), /websocketMask/);
});

test('masking is the XOR of the 4-byte key, at every length and offset', (t) => {
  for (const length of [0, 1, 3, 4, 5, 23, 24, 25, 31, 64, 1001, 1023, 1024, 1029, 1 << 20, (1 << 20) + 13, (3 << 20) + 3]) {
    const key = new Uint8Array(randomBytes(4));
    const source = new Uint8Array(randomBytes(length + 3)).subarray(3);
    const expected = naive(source, key);
    const output = new Uint8Array(length + 7);
    http.websocketMask!(source, key, output, 5, length);
    t.true(sameBytes(output.subarray(5, 5 + length), expected), `mask, ${length} bytes`);
    t.true(output.subarray(0, 5).every((byte) => byte === 0) && output.subarray(5 + length).every((byte) => byte === 0), `mask, ${length} bytes: nothing written outside`);
    const inPlace = Buffer.from(source.slice());
    http.websocketUnmask!(inPlace, key);
    t.true(sameBytes(inPlace, expected), `unmask, ${length} bytes`);
  }
});

test('a large binary frame crosses a real WebSocket intact', async (t) => {
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((resolve) => server.once('listening', resolve));
  const port = (server.address() as { port: number }).port;
  const payload = new Uint8Array(randomBytes(900_001));
  const received = new Promise<Buffer>((resolve) => server.once('connection', (socket) => socket.once('message', (data) => resolve(data as Buffer))));
  const client = new WebSocket(`ws://127.0.0.1:${port}`);
  await new Promise((resolve) => client.once('open', resolve));
  client.send(payload, { binary: true });
  t.true(sameBytes(await received, payload));
  client.terminate();
  await new Promise((resolve) => server.close(resolve));
});
