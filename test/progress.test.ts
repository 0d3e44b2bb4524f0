/**
 * Progress on long CLI operations: a status line redrawn on a terminal and
 * erased at the end, nothing in a pipe, one line per step when asked for;
 * stdout keeps only the answer, and errors stay one line.
 */
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { progressOn, whileWaiting } from '../src/cli/progress.js';
import { tempDir } from './_helpers.js';
import { gridProcesses } from './_processes.js';

const terminal = () => {
  const written: string[] = [];
  return { written, stream: { isTTY: true, write: (text: string) => written.push(text) } };
};

test('on a terminal a status line is redrawn in place, at most every 80 ms, and erased at the end', (t) => {
  const { written, stream } = terminal();
  let now = 0;
  const progress = progressOn(stream, {}, () => now);
  progress('publishing 1/3');
  now = 10;
  progress('publishing 2/3'); // too soon: skipped
  now = 100;
  progress('publishing 3/3');
  progress(undefined);
  t.deepEqual(written, ['\r\x1b[Kpublishing 1/3', '\r\x1b[Kpublishing 3/3', '\r\x1b[K']);
});

test('in a pipe nothing is shown unless GRID_PROGRESS=lines asks for a line per step', (t) => {
  const piped: string[] = [];
  progressOn({ write: (text) => piped.push(text) }, {})('publishing');
  t.deepEqual(piped, []);
  const lines: string[] = [];
  const progress = progressOn({ write: (text) => lines.push(text) }, { GRID_PROGRESS: 'lines' });
  progress('joining: reaching ws://x');
  progress(undefined);
  t.deepEqual(lines, ['… joining: reaching ws://x\n']);
  const { written, stream } = terminal();
  progressOn(stream, { GRID_PROGRESS: 'off' })('hidden');
  t.deepEqual(written, []);
});

test('a wait says how long it has waited, and stops saying so when it ends', async (t) => {
  const seen: Array<string | undefined> = [];
  const value = await whileWaiting((s) => seen.push(s), 'waiting for ws://x', new Promise((resolve) => setTimeout(() => resolve(42), 130)), 40);
  t.is(value, 42);
  t.true(seen.length >= 3);
  t.regex(seen[0]!, /^waiting for ws:\/\/x \(0\.\d s\)$/);
  t.is(seen.at(-1), undefined);
});

test('grid publish shows each file as it goes; stdout has only the CIDs; --json shows no progress', async (t) => {
  const { grid, ok } = gridProcesses({ GRID_PROGRESS: 'lines' });
  const home = await tempDir(t);
  await ok(home, ['init']);
  const files = [join(home, 'a.js'), join(home, 'b.js')];
  await writeFile(files[0]!, 'export const a = () => 1;\n');
  await writeFile(files[1]!, `export const b = () => ${JSON.stringify('x'.repeat(3000))};\n`);
  const result = await grid(home, ['publish', ...files]);
  t.is(result.code, 0);
  t.is(result.stdout.split('\n').length, 2);
  t.regex(result.stderr, /^… publishing 1\/2: \S+a\.js \(\d+ B; \d+ B so far\)\n… publishing 2\/2: \S+b\.js \(3\.\d kB; 3\.\d kB so far\)$/);
  const json = await grid(home, ['publish', ...files, '--json']);
  t.is(json.stderr, '');
  const missing = await grid(home, ['publish', join(home, 'nope.js')]);
  t.is(missing.code, 1);
  t.is(missing.stderr.split('\n').filter((line) => !line.startsWith('…')).length, 1, 'the error is one line');
});
