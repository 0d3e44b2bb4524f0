/**
 * Ctrl-C during `grid call`, with real processes: the call is cancelled
 * where it runs (a node started with `grid start`, or the CLI's own kernel),
 * journaled `revoked: cancelled by caller`, its vat freed; the CLI erases its
 * progress line, says so in one line and exits 130.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './_helpers.js';
import { gridProcesses } from './_processes.js';

const BIN = join(process.cwd(), 'bin', 'grid.js');
const { grid, ok, startNode } = gridProcesses();

const MODULE = 'export const spin = () => { for (;;) {} };\nexport const echo = (ctx, x) => x;\n';

const homeWithTokens = async (t: import('ava').ExecutionContext) => {
  const home = await tempDir(t);
  const file = join(home, 'spin.js');
  await writeFile(file, MODULE);
  await ok(home, ['init']);
  const spin = await ok(home, ['issue', file, '--export', 'spin']);
  const echo = await ok(home, ['issue', file, '--export', 'echo']);
  return { home, spin, echo };
};

/**
 * `grid call TOKEN` interrupted once its progress line shows (the call is
 * then on its way): `send` delivers the Ctrl-C. Resolves with how it ended.
 */
const interruptedCall = (command: string, args: string[], send: (child: ReturnType<typeof spawn>) => void, env: Record<string, string> = {}) =>
  new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(command, args, { env: { ...process.env, GRID_HOME: '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    const look = () => {
      if (!sent && /waiting for/.test(stdout + stderr)) {
        sent = true;
        send(child);
      }
    };
    child.stdout!.on('data', (d) => ((stdout += d), look()));
    child.stderr!.on('data', (d) => ((stderr += d), look()));
    // A call the Ctrl-C did not end would run out the node's time limit; this bounds the test, not the behaviour.
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });

const journaledEnd = async (home: string, token: string) => {
  const { entries } = JSON.parse(await ok(home, ['graph', token, '--format', 'json'])) as { entries: Array<{ kind: string; token?: string; seq: number; call?: number; reason?: string; cause?: string }> };
  const call = entries.find((e) => e.kind === 'call' && e.token === token);
  return entries.find((e) => e.kind === 'revoked' && e.call === call?.seq);
};

test('Ctrl-C during `grid call` through a running node cancels the call there and frees its vat', async (t) => {
  t.timeout(180_000);
  const { home, spin, echo } = await homeWithTokens(t);
  await startNode(t, home);
  const ended = await interruptedCall(process.execPath, [BIN, 'call', spin, '--home', home], (child) => child.kill('SIGINT'), { GRID_PROGRESS: 'lines' });
  t.is(ended.code, 130, `exit 130 (${ended.signal ?? ''} ${ended.stderr})`);
  t.regex(ended.stderr, /\ngrid: call cancelled \(Ctrl-C\): it ended revoked: cancelled by caller\n$/);
  t.is(ended.stdout, '');
  t.like(await journaledEnd(home, spin), { code: 'cancelled', reason: 'cancelled by caller', cause: 'node' }, "the node's journal shows the cancellation");
  t.is(await ok(home, ['call', echo, '"after"']), '"after"', 'the node answers the next call');
  const { reputation } = JSON.parse(await ok(home, ['reputation', '--json'])) as { reputation: Array<{ broken: number }> };
  t.true(reputation.length > 0 && reputation.every((row) => row.broken === 0), 'the cancellation counts against no issuer');
});

test('Ctrl-C at a terminal: the progress line is erased, the call cancelled in the CLI\'s own kernel, exit 130', async (t) => {
  t.timeout(180_000);
  const { home, spin, echo } = await homeWithTokens(t);
  // `script` gives the call a pseudo-terminal: the progress line is drawn, and ^C typed there is SIGINT.
  const command = `${process.execPath} ${BIN} call ${spin} --home ${home}`;
  const ended = await interruptedCall('script', ['-qec', command, '/dev/null'], (child) => child.stdin!.write('\x03'), { TERM: 'dumb' });
  t.is(ended.code, 130, ended.stdout);
  const screen = ended.stdout;
  const drawn = screen.lastIndexOf('waiting for the answer');
  const erased = screen.lastIndexOf('\r\x1b[K');
  t.true(drawn >= 0 && erased > drawn, `the progress line is erased: ${JSON.stringify(screen)}`);
  t.regex(screen.slice(erased), /grid: call cancelled \(Ctrl-C\): it ended revoked: cancelled by caller/);
  t.like(await journaledEnd(home, spin), { code: 'cancelled', reason: 'cancelled by caller', cause: 'node' });
  t.is(await ok(home, ['call', echo, '"after"']), '"after"');
  t.is((await grid(home, ['call', echo, '"again"'])).code, 0);
});
