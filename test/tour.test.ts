/**
 * The README's tour, run as written: every shell line of its first ```sh
 * block, in order, from the repository's root, on a fresh machine (an empty
 * $HOME, so `~/.promisegrid`, `~/other`, `~/bob` and `~/carol` are new).
 *
 * What the test supplies, each a thing the README itself says:
 * - `grid` on the PATH: a symlink to bin/grid.js in a bin directory of its
 *   own, which is what `npm link` makes (the README says to run it).
 * - Ports: the tour's 7000 and 7001 become free ports, so the tour can run
 *   beside other tests on one machine.
 * - A line ending in `&` is started in the background; the test waits for its
 *   first line of output (a node prints one once it listens) and stops it with
 *   SIGTERM at the end, as Ctrl-C would.
 * - Shell variables a line assigns (`name=$(…)`) are kept for the lines after
 *   it, as one shell session keeps them.
 * - `grid repl` and its `grid>` lines are typed by test/repl.test.ts.
 *
 * Every line must exit 0 and print no `grid:` error; a line whose comment
 * begins with a value (`"hi, Ada"`, `6765`, `3`) must print that value.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './_helpers.js';
import { freePort } from './_processes.js';

const ROOT = process.cwd();

interface TourLine {
  readonly line: string;
  /** What the line's comment says it prints, if the comment begins with a value. */
  readonly prints?: string;
  readonly background: boolean;
}

/** The tour's shell lines, in order: comment-only lines, blank lines and the REPL's lines left out. */
const tourLines = (readme: string): TourLine[] => {
  const tour = readme.slice(readme.indexOf('## A tour of the CLI'));
  const start = tour.indexOf('```sh\n') + '```sh\n'.length;
  const block = tour.slice(start, tour.indexOf('\n```', start));
  return block
    .split('\n')
    .filter((line) => line.trim() !== '' && !line.trim().startsWith('#') && !line.startsWith('grid> ') && !/^grid repl\b/.test(line))
    .map((line) => {
      const comment = /\s#\s(.*)$/.exec(line)?.[1] ?? '';
      const prints = /^("(?:[^"\\]|\\.)*"|-?\d+)(?=\s|$)/.exec(comment)?.[1];
      return { line, prints, background: /&\s*(#.*)?$/.test(line) };
    });
};

test("the README's tour runs top to bottom as written", async (t) => {
  t.timeout(40 * 60_000);
  const home = await tempDir(t, 'grid-tour-');
  const bin = join(home, 'bin');
  await mkdir(bin);
  await symlink(join(ROOT, 'bin', 'grid.js'), join(bin, 'grid'));
  const [first, second] = [await freePort(), await freePort()];
  const lines = tourLines(await readFile(join(ROOT, 'README.md'), 'utf8')).map((l) => ({
    ...l,
    line: l.line.replaceAll('127.0.0.1:7000', `127.0.0.1:${first}`).replaceAll('127.0.0.1:7001', `127.0.0.1:${second}`),
  }));
  t.true(lines.length >= 40, `the tour has its lines (${lines.length})`);
  t.true(lines.filter((l) => l.background).length === 2, 'and starts two nodes');

  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, PATH: `${bin}:${process.env.PATH}` };
  for (const name of ['GRID_HOME', 'GRID_PROGRESS', 'GRID_LOCK_WAIT_MS']) delete env[name];
  // The variables the tour assigns, kept in a file each line sources and rewrites.
  const variables = [...new Set(lines.flatMap((l) => [...l.line.matchAll(/(?:^|;\s*)(\w+)=\$\(/g)].map((m) => m[1]!)))];
  const state = join(home, 'tour-state.sh');
  await writeFile(state, '');
  const save = `for v in ${variables.join(' ')}; do [ -n "\${!v+x}" ] && printf '%s=%q\\n' "$v" "\${!v}"; done > "${state}.new"; mv "${state}.new" "${state}"`;

  const background: ChildProcess[] = [];
  t.teardown(() => {
    for (const child of background) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  for (const { line, prints, background: inBackground } of lines) {
    if (inBackground) {
      // The shell becomes the command (after any VAR=value prefixes), so SIGTERM reaches the node.
      const command = line.replace(/&\s*(#.*)?$/, '').replace(/^((?:\w+=\S+\s+)*)/, '$1exec ');
      const child = spawn('bash', ['-c', `source "${state}"\n${command}`], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      background.push(child);
      let stderr = '';
      child.stderr!.on('data', (d) => (stderr += d));
      const said = await new Promise<string>((resolve, reject) => {
        let stdout = '';
        child.stdout!.on('data', (d) => {
          stdout += d;
          if (stdout.includes('\n')) resolve(stdout.split('\n')[0]!);
        });
        child.on('close', (code) => reject(new Error(`${line}: exited ${code} before it listened: ${stderr}`)));
      });
      t.regex(said, /^node did:key:\S+ listening on ws:\/\/127\.0\.0\.1:\d+/, line);
      continue;
    }
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn('bash', ['-c', `source "${state}"\n${line}\nstatus=$?\n${save}\nexit $status`], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 5 * 60_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, stdout, stderr });
      });
    });
    t.log(`$ ${line}\n${result.stdout}${result.stderr}`);
    t.is(result.code, 0, `${line}\n${result.stderr}`);
    t.false(/^grid: /m.test(result.stderr), `${line}\n${result.stderr}`);
    if (prints !== undefined) t.true(result.stdout.includes(prints), `${line} prints ${prints}; it printed ${result.stdout}`);
  }

  // The nodes stop as Ctrl-C stops them: cleanly.
  const codes = await Promise.all(
    background.map((child) => new Promise<number | null>((resolve) => (child.once('close', (code) => resolve(code)), child.kill('SIGTERM')))),
  );
  t.deepEqual(codes, [0, 0]);
});
