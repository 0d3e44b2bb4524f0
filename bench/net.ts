/**
 * A call across two node processes over loopback WebSocket against raw `ws`
 * echo and plain `@endo/captp` over `ws`, each with its server in a child
 * process, all measured in this run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { makeCapTP } from '@endo/captp';
import { E } from '@endo/far';
import { generateIdentity } from '../dist/identity/index.js';
import { connectNode } from '../dist/net/client.js';
import { medianOf, row, throughput, type Row } from './measure.js';

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
    const rawEcho = { name: 'raw ws echo round trip', median_ns: await medianOf(echo, 10_000) };
    rows.push(row(rawEcho.name, rawEcho.median_ns));
    const rawPerSecond = await throughput(echo, 100_000, 256);
    rows.push({ name: 'raw ws messages/s, 256 in flight', median_ns: Math.round(1e9 / rawPerSecond), ops_per_s: Math.round(rawPerSecond) });
    socket.close();

    // Plain CapTP over ws.
    const captpServer = await startChild([join(cwd, 'bench', 'captp-echo-server.mjs')], cwd);
    children.push(captpServer.child);
    const captpSocket = await opened(captpServer.info.url);
    const { dispatch, getBootstrap } = makeCapTP('client', (m) => captpSocket.send(JSON.stringify(m)), undefined);
    captpSocket.on('message', (data) => dispatch(JSON.parse(String(data))));
    const echoer = getBootstrap();
    const captpCall = (i: number) => E(echoer as unknown as { echo: (x: number) => number }).echo(i);
    const captp = { name: 'plain @endo/captp over ws round trip', median_ns: await medianOf(captpCall, 5_000) };
    rows.push(row(captp.name, captp.median_ns, rawEcho));
    const captpPerSecond = await throughput(captpCall, 30_000, 256);
    rows.push({ name: 'plain captp calls/s, 256 in flight', median_ns: Math.round(1e9 / captpPerSecond), ops_per_s: Math.round(captpPerSecond) });
    captpSocket.close();

    // A grid node in another process.
    const gridBin = join(cwd, 'bin', 'grid.js');
    const run = (args: string[]) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, [gridBin, ...args, '--home', home], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.on('data', (chunk) => (out += chunk));
        child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`grid ${args[0]} exited ${code}`))));
      });
    await run(['init']);
    await writeFile(join(home, 'add.js'), 'export const add = (ctx, a, b) => a + b;');
    const add = await run(['issue', join(home, 'add.js'), '--export', 'add']);
    const node = await startChild([gridBin, 'start', '--home', home, '--json'], cwd);
    children.push(node.child);
    const client = await connectNode(node.info.url, { identity: generateIdentity((n) => new Uint8Array(randomBytes(n))), random: (n) => new Uint8Array(randomBytes(n)) });
    await client.call(add, [0, 0]);
    const executes = await medianOf((i) => client.call(add, [i, 1]), 5_000);
    rows.push(row('grid call across processes, executes in a vat', executes, rawEcho));
    rows.push(row('grid call across processes (vs plain captp)', executes, captp));
    const hit = await medianOf(() => client.call(add, [1, 1]), 5_000);
    rows.push(row('grid call across processes, cache hit', hit, rawEcho));
    const gridPerSecond = await throughput((i) => client.call(add, [i, 2]), 30_000, 256);
    rows.push({ name: 'grid calls/s across processes, 256 in flight', median_ns: Math.round(1e9 / gridPerSecond), ops_per_s: Math.round(gridPerSecond) });
    client.close();
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    await rm(home, { recursive: true, force: true });
  }
  return rows;
};
