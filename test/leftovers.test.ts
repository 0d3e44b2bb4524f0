/**
 * What a crash or an unusual embedding left behind: temporary block files
 * a crash left in a home's store are removed when the home opens (and only
 * then, under its lock), and the library works from `node -e` — its vat
 * workers do not inherit the eval script through `execArgv`.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { spawn } from 'node:child_process';
import { access, mkdir, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { openKernel } from '../src/index.js';
import { homePaths } from '../src/home/home.js';
import { blockPath, openFsBlockStore } from '../src/store/index.js';
import { vatExecArgv } from '../src/vat/thread.js';
import { tempDir } from './_helpers.js';

const utf8 = (text: string) => new TextEncoder().encode(text);

/** The `.tmp-*` files in every shard of the store at `dir`. */
const temps = async (dir: string) => {
  const found: string[] = [];
  for (const shard of await readdir(dir, { withFileTypes: true })) {
    if (!shard.isDirectory()) continue;
    for (const name of await readdir(join(dir, shard.name))) if (name.startsWith('.tmp-')) found.push(`${shard.name}/${name}`);
  }
  return found.sort();
};

test('temporary block files a crash left are removed when the home opens; blocks are untouched; a reader of the store removes nothing', async (t) => {
  const home = join(await tempDir(t), 'home');
  await (await openKernel({ home })).close();
  const { blocks } = homePaths(home);
  const store = openFsBlockStore(blocks);
  const kept = await Promise.all(['one', 'two', 'three'].map((text) => store.put(utf8(text))));
  // What a crash mid-put leaves: a temporary file beside a block, a half-written one, one in a shard of its own.
  const planted = [
    join(dirname(blockPath(blocks, kept[0]!)), '.tmp-0123456789abcdef'),
    join(dirname(blockPath(blocks, kept[1]!)), '.tmp-fedcba9876543210'),
    join(blocks, 'zz', '.tmp-00000000000000ff'),
  ];
  await mkdir(join(blocks, 'zz'), { recursive: true });
  for (const path of planted) await writeFile(path, 'half a block');
  t.is((await temps(blocks)).length, 3);

  // A store opened without the home's lock (as `grid run` reads a module) could be beside a writer: it removes nothing.
  openFsBlockStore(blocks);
  t.is((await temps(blocks)).length, 3, 'a reader leaves them');

  const kernel = await openKernel({ home });
  t.teardown(() => kernel.close());
  t.deepEqual(await temps(blocks), [], 'the home removed every temporary file when it opened');
  for (const [i, cid] of kept.entries()) {
    await access(blockPath(blocks, cid));
    t.deepEqual(await store.get(cid), utf8(['one', 'two', 'three'][i]!), `block ${i} is untouched`);
  }
  // And the store still writes.
  const code = await kernel.publish('export const f = () => 1;');
  t.deepEqual(await kernel.call(await kernel.issue({ code, export: 'f' }), []), { status: 'fulfilled', value: 1 });
});

test("a vat worker's execArgv: loaders and preloads kept, the eval script, --print and --input-type dropped, V8 options left to the process", (t) => {
  t.deepEqual(vatExecArgv(['--input-type=module', '-e', 'import("x")']), []);
  t.deepEqual(vatExecArgv(['--input-type', 'module', '--eval', '--import=looks-like-an-option']), []);
  t.deepEqual(vatExecArgv(['-pe', '1 + 1']), []);
  t.deepEqual(vatExecArgv(['-p', '--no-warnings']), [], "the script is dropped whatever it looks like");
  t.deepEqual(vatExecArgv(['--eval=1', '--print=2']), []);
  t.deepEqual(vatExecArgv(['--import=tsx', '-r', './pnp.cjs', '--experimental-loader', './pnp.mjs', '--conditions=dev', '-e', 'x']), [
    '--import=tsx',
    '-r',
    './pnp.cjs',
    '--experimental-loader',
    './pnp.mjs',
    '--conditions=dev',
  ]);
  t.deepEqual(vatExecArgv(['--expose-gc', '--max-old-space-size=300', '--stack-size=900', '--enable-source-maps', '--no-warnings']), ['--enable-source-maps', '--no-warnings']);
});

/** Run `node <args>` with the built library; resolves with its exit code and output. */
const node = (args: string[]) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: stdout.trim(), stderr: stderr.trim() });
    });
  });

/** Open a memory kernel from the built library (run `npm run build` first), publish, issue and call a closure, print the outcome. */
const script = (library: string) => `
const { openKernel } = await import(${JSON.stringify(library)});
const kernel = await openKernel({ memory: true });
const code = await kernel.publish('export const add = (ctx, a, b) => a + b;');
const token = await kernel.issue({ code, export: 'add' });
console.log(JSON.stringify(await kernel.call(token, [2, 3])));
await kernel.close();`;

test('the library from `node --input-type=module -e` and from `node -e`: calls are answered, not revoked', async (t) => {
  const library = pathToFileURL(join(process.cwd(), 'dist', 'index.js')).href;
  const esm = await node(['--input-type=module', '-e', script(library)]);
  t.is(esm.stdout, JSON.stringify({ status: 'fulfilled', value: 5 }), esm.stderr);
  t.is(esm.code, 0);
  const cjs = await node(['-e', `(async () => {${script(library)}\n})()`]);
  t.is(cjs.stdout, JSON.stringify({ status: 'fulfilled', value: 5 }), cjs.stderr);
  t.is(cjs.code, 0);
});
