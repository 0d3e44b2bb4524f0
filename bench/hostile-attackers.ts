/**
 * Hostile peers for `npm run bench -- hostile` (and for tests that want a
 * stranger to do its worst): each starts against a node's URL, keeps
 * attacking until `stop()`, and then says what it did. None needs a token
 * the node issued, except the reader that never reads (it needs a closure
 * that answers big values).
 *
 * Run one in its own process, so its CPU is not the honest clients':
 *   node --import=tsx bench/hostile-attackers.ts <attack> '<json options>'
 * It prints one JSON line once it attacks, and its report as one JSON line
 * when stdin closes or it gets SIGTERM.
 */
import '../dist/perimeter/lockdown.js';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { connect, type Socket } from 'node:net';
import { generateIdentity } from '../dist/identity/index.js';
import { openSession, type Session } from '../dist/net/session.js';
import { blockCid } from '../dist/store/hashing.js';
import { DAG_CBOR_CODEC, type Token } from '../dist/interface/ids.js';
import { encodeMessage } from '../dist/wire/index.js';

const random = (n: number) => new Uint8Array(randomBytes(n));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface Attack {
  /** Stop attacking, close every connection, and say what happened. */
  stop(): Promise<Record<string, number | string>>;
}

/** A token no node issued: the CID of random bytes. */
export const madeUpToken = (): Token => blockCid(random(32), DAG_CBOR_CODEC).toString() as Token;

/**
 * A TCP connection that asked `url` to upgrade to a WebSocket, resolved once
 * the node answered 101 (or rejected). The attacks before authentication
 * write prebuilt bytes on it rather than use ws's client, which masks every
 * frame it sends: at 16 MiB a frame that took the attacker a whole core of
 * the bench's two, and what the honest clients then measured was the
 * attacker's CPU, not the node's defence.
 */
const upgradedSocket = (url: string) =>
  new Promise<Socket>((resolve, reject) => {
    const { hostname, port } = new URL(url);
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before the upgrade')));
    socket.once('connect', () =>
      socket.write(
        `GET / HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    socket.once('data', (answer) => {
      socket.off('error', reject);
      socket.on('error', () => {}); // a reset is a close too
      if (answer.toString('latin1').startsWith('HTTP/1.1 101')) return resolve(socket);
      socket.destroy();
      reject(new Error(`no upgrade: ${answer.toString('latin1').split('\r\n')[0]}`));
    });
  });

/** One binary WebSocket frame from a client, whole: `payload` behind a header and an all-zero mask (so the payload goes as it is). */
const clientFrame = (payload: Uint8Array): Buffer => {
  const header = Buffer.alloc(14);
  header[0] = 0x82; // FIN, binary
  header[1] = 0x80 | 127; // masked, a 64-bit length follows
  header.writeBigUInt64BE(BigInt(payload.length), 2);
  return Buffer.concat([header, payload]); // the mask key, bytes 10–13, stays zero
};

/** An authenticated session under a fresh key, and its socket (to send raw frames or stop reading). */
export const strangerSession = async (url: string, identity = generateIdentity(random)): Promise<{ socket: WebSocket; session: Session }> => {
  const socket = new WebSocket(url, { maxPayload: 64 * 1024 * 1024 });
  socket.on('error', () => {});
  const session = await openSession(socket, { identity, random });
  return { socket, session };
};

const tally = (counts: Map<string, number>, key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
const topReasons = (counts: Map<string, number>) =>
  [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([reason, n]) => `${n}× ${reason.slice(0, 80)}`)
    .join('; ');

/**
 * Item 1: calls on made-up tokens, each with an argument of `argBytes`
 * bytes, `inFlight` at a time, all from one principal (reconnecting under
 * the same key if the node closes the connection).
 */
export const madeUpTokenCalls = (url: string, { argBytes = 1_000_000, inFlight = 4 } = {}): Attack => {
  const identity = generateIdentity(random);
  const argument = new Uint8Array(argBytes).fill(7);
  let running = true;
  let sent = 0;
  let connections = 0;
  const outcomes = new Map<string, number>();
  let current: { socket: WebSocket; session: Session } | undefined;
  const loop = (async () => {
    while (running) {
      try {
        current = await strangerSession(url, identity);
        connections += 1;
      } catch (error) {
        tally(outcomes, `connect: ${(error as Error).message}`);
        await sleep(100);
        continue;
      }
      const { session } = current;
      let open = true;
      void session.closed.then(() => (open = false));
      await Promise.all(
        Array.from({ length: inFlight }, async () => {
          while (running && open) {
            sent += 1;
            const { outcome } = await session.call(madeUpToken(), [argument], { timeoutMs: 30_000 });
            tally(outcomes, outcome.status === 'revoked' ? outcome.reason : outcome.status);
          }
        }),
      );
      current.socket.terminate();
    }
  })();
  return {
    stop: async () => {
      running = false;
      current?.socket.terminate();
      await loop;
      return { sent, connections, outcomes: topReasons(outcomes) };
    },
  };
};

/**
 * Item 2a: `connections` unauthenticated connections, each sending one frame
 * of `frameBytes` bytes before any handshake; a closed one is opened again.
 */
export const bigUnauthenticatedFrames = (url: string, { connections = 30, frameBytes = 16 * 1024 * 1024 } = {}): Attack => {
  const frame = clientFrame(new Uint8Array(frameBytes).fill(1));
  let running = true;
  let opened = 0;
  let closedByNode = 0;
  let failed = 0;
  const sockets = new Set<Socket>();
  const keepOne = async (): Promise<void> => {
    while (running) {
      let socket: Socket;
      try {
        socket = await upgradedSocket(url);
      } catch {
        failed += 1;
        await sleep(100);
        continue;
      }
      opened += 1;
      sockets.add(socket);
      socket.write(frame);
      await new Promise((resolve) => socket.once('close', resolve));
      sockets.delete(socket);
      if (running) closedByNode += 1;
    }
  };
  const all = Promise.all(Array.from({ length: connections }, keepOne));
  return {
    stop: async () => {
      running = false;
      for (const socket of sockets) socket.destroy();
      await all;
      return { opened, closedByNode, failed };
    },
  };
};

/**
 * Item 2b: `connections` connections that open (TCP and WebSocket upgrade)
 * and then say nothing, so the handshake stalls; one the node closes is
 * opened again.
 */
export const stalledHandshakes = (url: string, { connections = 250 } = {}): Attack => {
  let running = true;
  let opened = 0;
  let closedByNode = 0;
  let failed = 0;
  let heldMsTotal = 0;
  let lastError = '';
  const sockets = new Set<Socket>();
  const keepOne = async (): Promise<void> => {
    while (running) {
      let socket: Socket;
      try {
        socket = await upgradedSocket(url);
      } catch (error) {
        failed += 1;
        lastError = (error as Error).message;
        await sleep(200);
        continue;
      }
      opened += 1;
      const began = Date.now();
      sockets.add(socket);
      await new Promise((resolve) => socket.once('close', resolve));
      sockets.delete(socket);
      if (running) {
        closedByNode += 1;
        heldMsTotal += Date.now() - began;
      }
    }
  };
  const all = Promise.all(Array.from({ length: connections }, keepOne));
  return {
    stop: async () => {
      running = false;
      for (const socket of sockets) socket.destroy();
      await all;
      return { opened, closedByNode, failed, meanHeldMs: closedByNode ? Math.round(heldMsTotal / closedByNode) : 0, lastError };
    },
  };
};

/** Canonical CBOR of an array of `n` empty maps: 5 bytes of header, then one byte per map. */
export const emptyMapsArray = (n: number): Uint8Array => {
  const bytes = new Uint8Array(5 + n).fill(0xa0);
  bytes[0] = 0x9a;
  new DataView(bytes.buffer).setUint32(1, n);
  return bytes;
};

/**
 * Item 3: frames of about 0.9 MB holding `maps` empty maps. `where`:
 * 'args' — a call on a made-up token whose arguments are the maps (the
 * node decodes them, then answers), `inFlight` at a time on one connection;
 * 'slot' — the maps as an extra envelope slot of a call, a frame the node
 * must decode before it can refuse it (it then closes the connection, and
 * the attacker connects again).
 */
export const emptyMapFrames = (url: string, { maps = 900_000, where = 'args' as 'args' | 'slot', inFlight = 2 } = {}): Attack => {
  const identity = generateIdentity(random);
  const argsBytes = emptyMapsArray(maps);
  let running = true;
  let frames = 0;
  let replies = 0;
  let connections = 0;
  let current: WebSocket | undefined;
  const loop = (async () => {
    // The slot variant: [id, args, flags, path] with the maps as the path, decoded whole before it is refused.
    const slotFrame = where === 'slot' ? encodeMessage(madeUpToken(), 0, emptyMapsArray(0), 0, Array.from({ length: maps }, () => ({}))) : undefined;
    while (running) {
      let socket: WebSocket;
      try {
        ({ socket } = await strangerSession(url, identity));
      } catch {
        await sleep(100);
        continue;
      }
      current = socket;
      connections += 1;
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      if (slotFrame) {
        socket.send(slotFrame, { binary: true });
        frames += 1;
        await Promise.race([closed, sleep(5_000)]);
        socket.terminate();
        continue;
      }
      let outstanding = 0;
      let wake: (() => void) | undefined;
      socket.on('message', () => {
        replies += 1;
        outstanding -= 1;
        wake?.();
      });
      let open = true;
      void closed.then(() => {
        open = false;
        wake?.();
      });
      let id = 1_000_000;
      while (running && open) {
        if (outstanding >= inFlight) {
          await new Promise<void>((resolve) => (wake = resolve));
          continue;
        }
        outstanding += 1;
        frames += 1;
        socket.send(encodeMessage(madeUpToken(), id++, argsBytes, 0), { binary: true });
      }
      socket.terminate();
    }
  })();
  return {
    stop: async () => {
      running = false;
      current?.terminate();
      await loop;
      return { frames, replies, connections, frameBytes: argsBytes.length };
    },
  };
};

/**
 * Item 4: one peer starts `calls` calls on `token` (which answers about
 * `valueBytes` bytes for argument i), then stops reading its socket; after
 * `holdMs` (or when stopped) it drops the connection.
 */
export const nonReader = (url: string, { token, calls = 3_000, holdMs = 8_000 }: { token: string; calls?: number; holdMs?: number }): Attack => {
  let socket: WebSocket | undefined;
  let answered = 0;
  let closedByNodeAfterMs = -1;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const began = Date.now();
  const started = (async () => {
    const stranger = await strangerSession(url);
    socket = stranger.socket;
    socket.once('close', () => (closedByNodeAfterMs = Date.now() - began));
    for (let i = 0; i < calls; i++) void stranger.session.call(token as Token, [i], { timeoutMs: 600_000 }).then(() => (answered += 1));
    // Stop reading: the node's replies pile up in its socket buffers.
    (socket as unknown as { _socket: { pause(): void } })._socket.pause();
    timer = setTimeout(() => socket?.terminate(), holdMs);
  })();
  return {
    stop: async () => {
      await started.catch(() => {});
      clearTimeout(timer);
      const droppedAt = closedByNodeAfterMs;
      socket?.terminate();
      return { calls, answered, closedByNodeAfterMs: droppedAt };
    },
  };
};

export const attacks = {
  'made-up-tokens': madeUpTokenCalls,
  'big-unauthenticated-frames': bigUnauthenticatedFrames,
  'stalled-handshakes': stalledHandshakes,
  'empty-maps': emptyMapFrames,
  'non-reader': nonReader,
} as const;

// Run as a process: `node --import=tsx bench/hostile-attackers.ts <attack> '<json options>'` with GRID_URL set.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const [name, json = '{}'] = process.argv.slice(2);
  const start = attacks[name as keyof typeof attacks] as (url: string, options: object) => Attack;
  if (!start) throw new Error(`no such attack: ${JSON.stringify(name)} (one of ${Object.keys(attacks).join(', ')})`);
  const attack = start(process.env.GRID_URL!, JSON.parse(json));
  console.log(JSON.stringify({ attacking: name }));
  let stopping = false;
  const finish = async () => {
    if (stopping) return;
    stopping = true;
    console.log(JSON.stringify(await attack.stop()));
    process.exit(0);
  };
  process.on('SIGTERM', finish);
  process.stdin.on('end', finish);
  process.stdin.resume();
}
