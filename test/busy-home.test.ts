/**
 * A busy home lets commands through. A command that waits for the home's
 * lock while `grid start` is still starting goes through the node once it
 * announces itself (it used to wait out its 10 s and refuse, the node
 * listening all along); a `grid repl` serves its home to other commands as a
 * running node does (it used to shut them out for as long as it was open).
 * And `grid repair` says what it kept and what it moved.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { homePaths } from '../src/home/home.js';
import { gridProcesses } from './_processes.js';
import { tempDir } from './_helpers.js';

const BIN = join(process.cwd(), 'bin', 'grid.js');
// A command gives up on a held home after this long: long enough for a slow
// machine to start a node, far shorter than the REPL is held in the test.
const LOCK_WAIT_MS = '30000';
const { grid, ok, startNode } = gridProcesses({ GRID_LOCK_WAIT_MS: LOCK_WAIT_MS });

const homeWithToken = async (t: Parameters<typeof tempDir>[0]) => {
  const home = join(await tempDir(t), 'home');
  await ok(home, ['init']);
  const token = await ok(home, ['issue', 'examples/hello.js', '--export', 'greet', '--env', '{"greeting":"hi"}']);
  return { home, token };
};

test.serial('commands started while grid start is starting all succeed, through the node', async (t) => {
  t.timeout(600_000);
  const { home, token } = await homeWithToken(t);
  const starting = startNode(t, home);
  const COUNT = 24;
  const results = await Promise.all(Array.from({ length: COUNT }, (_, i) => grid(home, ['call', token, JSON.stringify(`c${i}`)], 300_000)));
  const node = await starting;
  const failed = results.filter((r) => r.code !== 0);
  t.deepEqual(failed.map((r) => r.stderr), [], `${failed.length} of ${COUNT} failed`);
  t.deepEqual(results.map((r) => JSON.parse(r.stdout)), Array.from({ length: COUNT }, (_, i) => `hi, c${i}`));
  t.true(node.isRunning());
  const slowest = Math.max(...results.map((r) => r.ms));
  t.log(`${COUNT} calls while the node started: slowest ${slowest} ms`);
  await node.stop();
});

test.serial('a command runs through an open grid repl, which serves its home until it exits', async (t) => {
  t.timeout(300_000);
  const { home, token } = await homeWithToken(t);
  const repl = spawn(process.execPath, [BIN, 'repl', '--home', home], { env: { ...process.env, GRID_HOME: '' }, stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  repl.stdout.on('data', (d) => (output += d));
  repl.stderr.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => repl.on('close', resolve));
  t.teardown(() => void repl.kill('SIGKILL'));
  // The REPL is up once it announces itself on the home.
  const deadline = Date.now() + 120_000;
  let announced: { url: string; pid: number } | undefined;
  while (!announced && Date.now() < deadline) {
    announced = await readFile(homePaths(home).node, 'utf8').then(
      (text) => {
        try {
          return JSON.parse(text);
        } catch {
          return undefined; // caught while being written
        }
      },
      () => undefined,
    );
    if (!announced) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.is(announced?.pid, repl.pid, `the REPL serves the home (${output})`);
  t.regex(announced!.url, /^ws:\/\/127\.0\.0\.1:\d+$/);

  const call = await grid(home, ['call', token, '"through the repl"'], 120_000);
  t.is(call.code, 0, call.stderr);
  t.is(JSON.parse(call.stdout), 'hi, through the repl');
  // The REPL's own graph shows the call it answered for the other command.
  repl.stdin.write("'calls=' + (await graph.calls()).length\n");
  const started = Date.now();
  while (!/calls=\d/.test(output) && Date.now() - started < 60_000) await new Promise((resolve) => setTimeout(resolve, 100));
  t.regex(output, /calls=1'/);

  repl.stdin.end('.exit\n');
  t.is(await exited, 0, output);
  // Gone with it: the home's next command opens the home itself.
  await t.throwsAsync(readFile(homePaths(home).node, 'utf8'));
  t.is(JSON.parse(await ok(home, ['call', token, '"after"'])), 'hi, after');
});

test.serial('grid repair keeps what verifies, moves the rest aside and says so; a broken journal says to run it', async (t) => {
  const { home, token } = await homeWithToken(t);
  await ok(home, ['call', token, '"one"']);
  // A small home's journal is one segment (see README: Retention).
  const journal = join(homePaths(home).journal, '0000000000000000');
  const whole = await readFile(journal);
  // A second writer's record after the end: a copy of the last frame, which does not link to it.
  const view = new DataView(whole.buffer, whole.byteOffset, whole.byteLength);
  let last = 0;
  for (let offset = 0; offset < whole.length; offset += 4 + view.getUint32(offset)) last = offset;
  const stray = whole.subarray(last);
  await writeFile(journal, Buffer.concat([whole, stray]));

  const refused = await grid(home, ['call', token, '"two"']);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /^grid: journal: record \d+ at byte \d+ does not link to the record before it; run `grid repair` to keep the records before it and move the rest aside$/);

  const repaired = await ok(home, ['repair']);
  const lines = repaired.split('\n');
  t.is(lines.length, 3, repaired);
  t.regex(lines[0]!, new RegExp(`^journal broke at byte ${whole.length}: record \\d+ at byte ${whole.length} does not link`));
  t.regex(lines[1]!, new RegExp(`^kept the \\d+ records before it \\(bytes 0–${whole.length}\\)$`));
  const moved = new RegExp(`^moved 1 record \\(bytes ${whole.length}–${whole.length + stray.length}, ${stray.length} bytes\\) to (.*journal\\.broken-[0-9T:.Z-]+)$`).exec(lines[2]!);
  t.truthy(moved, lines[2]);
  t.deepEqual(new Uint8Array(await readFile(moved![1]!)), new Uint8Array(stray));
  t.deepEqual(new Uint8Array(await readFile(journal)), new Uint8Array(whole));
  t.is(JSON.parse(await ok(home, ['call', token, '"two"'])), 'hi, two');
  t.regex(await ok(home, ['repair']), /^journal is whole: \d+ records, nothing moved$/);
});
