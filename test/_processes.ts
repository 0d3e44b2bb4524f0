/**
 * Real `grid` processes for tests that run the CLI and nodes the way people
 * do: one command at a time, nodes started with `grid start --json`, ports
 * that are free for a restart on the same URL, and polling with a deadline.
 */
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const BIN = join(process.cwd(), 'bin', 'grid.js');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
  /** How long the command ran. */
  ms: number;
}

/** A promise-graph record as `grid graph --json` prints it: the fields tests read. */
export interface GraphEntry {
  seq: number;
  kind: string;
  token?: string;
  call?: number;
  caller?: string;
  to?: string;
}

/** Commands and nodes with `env` added to the environment (and no GRID_HOME: every command names its home). */
export const gridProcesses = (env: Record<string, string> = {}) => {
  const ENV = { ...process.env, GRID_HOME: '', ...env };

  /** One `grid` command. Killed if it outlives `limitMs`, so a hung command cannot outlive its test. */
  const grid = (home: string, args: string[], limitMs = 60_000): Promise<Result> =>
    new Promise((resolve, reject) => {
      const began = Date.now();
      const child = spawn(process.execPath, [BIN, ...args, '--home', home], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout: stdout.trim(), stderr: stderr.trim(), ms: Date.now() - began });
      });
    });

  const ok = async (home: string, args: string[]) => {
    const result = await grid(home, args);
    if (result.code !== 0) throw new Error(`grid ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
    return result.stdout;
  };

  /** The home's promise graph, every record. */
  const entries = async (home: string): Promise<GraphEntry[]> => JSON.parse(await ok(home, ['graph', '--json'])).entries;

  /** `grid start --json` on a home, resolved once it listens; the test's teardown kills it if the test did not stop it. */
  const startNode = async (t: ExecutionContext, home: string, extra: string[] = []) => {
    const child = spawn(process.execPath, [BIN, 'start', '--home', home, '--json', ...extra], { env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    let stdoutAll = '';
    child.stdout.on('data', (d) => (stdoutAll += d));
    let running = true;
    const exited = new Promise<number | string>((resolve) =>
      child.on('close', (code, signal) => {
        running = false;
        resolve(code ?? signal ?? -1);
      }),
    );
    t.teardown(async () => {
      if (running) child.kill('SIGKILL');
      await exited;
    });
    const info = await new Promise<{ url: string; principal: string; peers: string[] }>((resolve, reject) => {
      let stdout = '';
      child.stdout.on('data', (d) => {
        stdout += d;
        const end = stdout.indexOf('\n');
        if (end < 0) return;
        try {
          resolve(JSON.parse(stdout.slice(0, end)));
        } catch {
          reject(new Error(`grid start printed ${JSON.stringify(stdout.slice(0, end))}`));
        }
      });
      void exited.then((code) => reject(new Error(`grid start exited ${code}: ${stderr.trim()}`)));
    });
    return {
      ...info,
      /** What the node wrote to stderr so far (its log). */
      stderr: () => stderr,
      /** Everything it printed on stdout so far. */
      stdout: () => stdoutAll,
      isRunning: () => running,
      /** SIGTERM: resolves to the exit code (0 when it stopped cleanly). */
      stop: () => (child.kill('SIGTERM'), exited),
      /** SIGKILL: a crash, with no chance to flush or say goodbye. */
      crash: () => (child.kill('SIGKILL'), exited),
    };
  };

  return { grid, ok, entries, startNode };
};

/** A port free right now, so a node can be restarted on the same URL. */
export const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });

/** Poll until `done(value)` or the time is up; returns the last value either way, for the assertion to judge. */
export const eventually = async <T>(probe: () => Promise<T>, done: (value: T) => boolean, withinMs: number, everyMs = 250): Promise<T> => {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() >= deadline) return value;
    await sleep(everyMs);
  }
};
