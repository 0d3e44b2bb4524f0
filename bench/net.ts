/**
 * A call across two node processes over loopback WebSocket against raw `ws`
 * echo and plain `@endo/captp` over `ws`, each with its server in a child
 * process, all measured in this run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import WebSocket from 'ws';
import { makeCapTP } from '@endo/captp';
import { E } from '@endo/far';
import { generateIdentity } from '../dist/identity/index.js';
import { connectNode } from '../dist/net/client.js';
import { medianOf, mediansInTurns, row, throughput, type Row } from './measure.js';

const RAW_ECHO = `
  const { WebSocketServer } = require('ws');
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  server.on('listening', () => console.log(JSON.stringify({ url: 'ws://127.0.0.1:' + server.address().port })));
  server.on('connection', (socket) => socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary })));
`;

/** Start a child process that prints one JSON line once it listens. */
const startChild = (args: string[], cwd: string): Promise<{ child: ChildProcess; info: { url: string } }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      if (out.includes('\n')) resolve({ child, info: JSON.parse(out.split('\n')[0]!) });
    });
    child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
  });

const random = (n: number) => new Uint8Array(randomBytes(n));

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });

const opened = (url: string) =>
  new Promise<WebSocket>((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.once('open', () => resolve(socket));
    socket.once('error', reject);
  });

export const benchNet = async (): Promise<Row[]> => {
  const cwd = process.cwd();
  const rows: Row[] = [];
  const children: ChildProcess[] = [];
  const home = await mkdtemp(join(tmpdir(), 'grid-bench-net-'));
  try {
    // Raw ws echo.
    const raw = await startChild(['-e', RAW_ECHO], cwd);
    children.push(raw.child);
    const socket = await opened(raw.info.url);
    const waiting: Array<() => void> = [];
    socket.on('message', () => waiting.shift()?.());
    const echo = () => new Promise<void>((resolve) => (waiting.push(resolve), socket.send(new Uint8Array(64))));
    const rawPerSecond = await throughput(echo, 100_000, 256);

    // Plain CapTP over ws.
    const captpServer = await startChild([join(cwd, 'bench', 'captp-echo-server.mjs')], cwd);
    children.push(captpServer.child);
    const captpSocket = await opened(captpServer.info.url);
    const { dispatch, getBootstrap } = makeCapTP('client', (m) => captpSocket.send(JSON.stringify(m)), undefined);
    captpSocket.on('message', (data) => dispatch(JSON.parse(String(data))));
    const echoer = getBootstrap();
    const captpCall = (i: number) => E(echoer as unknown as { echo: (x: number) => number }).echo(i);
    const captp = { name: 'plain @endo/captp over ws round trip', median_ns: await medianOf(captpCall, 5_000) };
    rows.push(row(captp.name, captp.median_ns));
    const captpPerSecond = await throughput(captpCall, 30_000, 256);
    rows.push({ name: 'plain captp calls/s, 256 in flight', median_ns: Math.round(1e9 / captpPerSecond), ops_per_s: Math.round(captpPerSecond) });
    captpSocket.close();

    // A grid node in another process.
    const gridBin = join(cwd, 'bin', 'grid.js');
    const run = (args: string[], on: string) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, [gridBin, ...args, '--home', on], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (chunk) => (out += chunk));
        child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`grid ${args[0]} exited ${code}`))));
      });
    await run(['init'], home);
    await writeFile(join(home, 'add.js'), 'export const add = (ctx, a, b) => a + b; export const who = (ctx) => ctx.caller;');
    const add = await run(['issue', join(home, 'add.js'), '--export', 'add'], home);
    const node = await startChild([gridBin, 'start', '--home', home, '--json'], cwd);
    children.push(node.child);
    const client = await connectNode(node.info.url, { identity: generateIdentity(random), random });
    await client.call(add, [0, 0]);
    // Round trips in turns with a raw ws echo, so the machine's load falls on all of them alike.
    const turns = await mediansInTurns({
      raw: echo,
      hit: () => client.call(add, [1, 1]),
      executes: (i) => client.call(add, [i, 1]),
    });
    const rawEcho = { name: 'raw ws echo round trip', median_ns: turns.raw! };
    rows.unshift(
      row(rawEcho.name, rawEcho.median_ns),
      { name: 'raw ws messages/s, 256 in flight', median_ns: Math.round(1e9 / rawPerSecond), ops_per_s: Math.round(rawPerSecond) },
    );
    socket.close();
    rows[rows.findIndex((r) => r.name === captp.name)] = row(captp.name, captp.median_ns, rawEcho);
    rows.push(row('grid call across processes, cache hit', turns.hit!, rawEcho));
    rows.push(row('grid call across processes, executes in a vat', turns.executes!, rawEcho));
    rows.push(row('grid call across processes (vs plain captp)', turns.executes!, captp));
    const gridPerSecond = await throughput((i) => client.call(add, [i, 2]), 30_000, 256);
    rows.push({ name: 'grid calls/s across processes, 256 in flight', median_ns: Math.round(1e9 / gridPerSecond), ops_per_s: Math.round(gridPerSecond) });
    const hitsPerSecond = await throughput(() => client.call(add, [1, 1]), 50_000, 256);
    rows.push({ name: 'grid cache hits/s across processes, 256 in flight', median_ns: Math.round(1e9 / hitsPerSecond), ops_per_s: Math.round(hitsPerSecond) });
    client.close();

    // A node that will be killed and restarted on the same address; its home is fresh, so its
    // restart time is the node's own, not that of replaying the big journal the runs above wrote.
    const restartHome = join(home, 'restarts');
    await run(['init'], restartHome);
    const who = await run(['issue', join(home, 'add.js'), '--export', 'who'], restartHome);
    const listen = `127.0.0.1:${await freePort()}`;
    const startRestarting = () => startChild([gridBin, 'start', '--home', restartHome, '--json', '--listen', listen], cwd);
    let restarting = await startRestarting();
    children.push(restarting.child);

    // A node with both as peers: tokens issued there are remote-origin here.
    const peerHome = join(home, 'peer');
    await run(['init'], peerHome);
    const local = await run(['issue', join(home, 'add.js'), '--export', 'add'], peerHome);
    const peer = await startChild([gridBin, 'start', '--home', peerHome, '--json', '--peer', node.info.url, '--peer', restarting.info.url], cwd);
    children.push(peer.child);
    const viaPeer = await connectNode(peer.info.url, { identity: generateIdentity(random), random });
    await viaPeer.call(add, [1, 1]); // forwarded once, then cached on the peer
    await viaPeer.call(local, [1, 1]);
    const localHit = { name: 'cache hit on a local token (second node)', median_ns: await medianOf(() => viaPeer.call(local, [1, 1]), 5_000) };
    rows.push(row(localHit.name, localHit.median_ns, rawEcho));
    rows.push(row('cache hit on a remote-origin token (second node)', await medianOf(() => viaPeer.call(add, [1, 1]), 5_000), localHit));
    rows.push(row('forwarded call, executes on the origin', await medianOf((i) => viaPeer.call(add, [i, 3]), 2_000), rawEcho));

    // Rejoin: kill a node, start it again on the same address, and time until
    // a call that only it can answer (uncacheable) is answered through its peer.
    if ((await viaPeer.call(who, [])).status !== 'fulfilled') throw new Error('the restarting node does not answer');
    restarting.child.kill('SIGKILL');
    await new Promise((resolve) => restarting.child.once('exit', resolve));
    const spawned = process.hrtime.bigint();
    restarting = await startRestarting();
    children.push(restarting.child);
    const listening = process.hrtime.bigint();
    while ((await viaPeer.call(who, [])).status !== 'fulfilled') await new Promise((resolve) => setTimeout(resolve, 5));
    const answered = process.hrtime.bigint();
    rows.push({ name: 'rejoin: node restarted to answering via peer', median_ns: Number(answered - spawned), ops_per_s: 0 });
    rows.push({ name: 'rejoin: node listening to answering via peer', median_ns: Number(answered - listening), ops_per_s: 0 });
    viaPeer.close();
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await rm(home, { recursive: true, force: true });
  }
  return rows;
};
