/**
 * The tab node's bundle (`npm run build` runs it after tsc): src/tab/node.ts,
 * the page that boots it and the vat worker (src/vat/worker.ts, the same vat
 * code as Node's), into dist/tab/, which `grid start` serves at /tab/
 * (src/web/page.ts). Everything the tab runs is in these files: nothing is
 * loaded from another origin, and no source map points anywhere.
 *
 * The kernel core stays as it is. Where it reaches a Node module, one
 * platform module of the tree stands between, and here each is swapped for
 * its browser twin in src/tab/ (TWINS); the two Node globals the core uses
 * (Buffer, setImmediate) come from src/tab/globals.ts through esbuild's
 * `inject`. Any other `node:` import fails the build.
 *
 * `--report` prints the bundle's size and the kernel core's share of it.
 */
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'tab');
const src = (path) => join(root, 'src', path);
const require = createRequire(import.meta.url);

/** A Node platform module of the core → its twin for a tab (null: nothing, for what only Node's ws needs). */
const TWINS = new Map([
  [src('vat/thread.ts'), src('tab/vat-thread.ts')],
  [src('vat/vat-env.ts'), src('tab/vat-env.ts')],
  [src('identity/ed25519.ts'), src('tab/ed25519.ts')],
  [src('store/sha2.ts'), src('tab/sha2.ts')],
  [src('perimeter/ws-mask.ts'), null],
  // libp2p's Node 20 shims: a tab runs no libp2p, and browsers have both anyway.
  [src('perimeter/node20.ts'), null],
]);

const shippedIn = (folder) =>
  Object.fromEntries(
    readdirSync(join(root, folder))
      .filter((name) => name.endsWith('.js'))
      .sort()
      .map((name) => [name.slice(0, -'.js'.length), readFileSync(join(root, folder, name), 'utf8')]),
  );
const parserVersion = JSON.parse(readFileSync(join(dirname(require.resolve('@endo/module-source')), 'package.json'), 'utf8')).version;

const tabPlatform = {
  name: 'tab-platform',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, ({ path, resolveDir }) => {
      const target = resolve(resolveDir, path.replace(/\.js$/, '.ts'));
      if (!TWINS.has(target)) return undefined;
      const twin = TWINS.get(target);
      return twin ? { path: twin } : { path: target, namespace: 'tab-nothing' };
    });
    b.onLoad({ filter: /.*/, namespace: 'tab-nothing' }, () => ({ contents: 'export {};', loader: 'js' }));
    // early.ts is its own file, loaded by the page before the bundle: every importer shares that one module.
    b.onResolve({ filter: /^\.\/early\.js$/ }, ({ resolveDir }) => (resolveDir === src('tab') ? { path: './early.js', external: true } : undefined));
    b.onResolve({ filter: /^node:buffer$/ }, () => ({ path: src('tab/node-buffer.ts') }));
    b.onResolve({ filter: /^node:/ }, ({ path, importer }) => ({ errors: [{ text: `${path} in a tab's bundle (imported by ${relative(root, importer)}): give it a twin in src/tab/` }] }));
    // Automerge's browser entry imports its .wasm as an ES module, which no browser does yet; this one carries it as base64 (a lazy chunk: only a text merge loads it).
    b.onResolve({ filter: /^@automerge\/automerge$/ }, () => ({ path: join(dirname(require.resolve('@automerge/automerge/automerge.wasm')), 'mjs', 'entrypoints', 'fullfat_base64.js') }));
    b.onResolve({ filter: /^promisegrid:shipped$/ }, () => ({ path: 'shipped', namespace: 'promisegrid' }));
    b.onLoad({ filter: /.*/, namespace: 'promisegrid' }, () => ({
      contents: `export const POLICIES = Object.freeze(${JSON.stringify(shippedIn('policies'))});
export const MERGES = Object.freeze(${JSON.stringify(shippedIn('merges'))});
export const PARSER_VERSION = ${JSON.stringify(parserVersion)};`,
      loader: 'js',
    }));
  },
};

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { node: src('tab/node.ts'), joined: src('tab/joined.ts'), page: src('tab/page.ts'), vat: src('vat/worker.ts') },
  outdir: out,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: false,
  legalComments: 'eof',
  chunkNames: '[name]-[hash]',
  inject: [src('tab/globals.ts')],
  // Babel reads these without asking whether there is a `process` (every other read of it in the bundle asks first).
  define: { 'process.env.BABEL_TYPES_8_BREAKING': 'false', 'process.env.NODE_ENV': '"production"' },
  plugins: [tabPlatform],
  metafile: true,
  logLevel: 'warning',
});
copyFileSync(src('tab/index.html'), join(out, 'index.html'));

/** An output and the chunks it imports statically: what loads with it. */
const staticImports = (file, seen = new Set()) => {
  if (seen.has(file) || !result.metafile.outputs[file]) return seen;
  seen.add(file);
  for (const imported of result.metafile.outputs[file].imports) if (imported.kind === 'import-statement') staticImports(imported.path, seen);
  return seen;
};
const inTab = (file) => file.slice('dist/tab/'.length);

// What starts a tab node before its bundle runs (src/tab/early.ts), told which chunks the joined node's entry imports so the page fetches them at once.
const early = await build({
  absWorkingDir: root,
  entryPoints: { early: src('tab/early.ts') },
  outdir: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: false,
  define: { PRELOAD: JSON.stringify([...staticImports('dist/tab/joined.js')].filter((file) => file !== 'dist/tab/joined.js').map((file) => `./${inTab(file)}`).sort()) },
  metafile: true,
  logLevel: 'warning',
});
const earlyInputs = Object.keys(early.metafile.inputs).filter((input) => !input.startsWith('<define:'));
if (earlyInputs.length !== 1) throw new Error(`src/tab/early.ts runs before lockdown and imports nothing (got ${earlyInputs.join(', ')})`);
Object.assign(result.metafile.outputs, early.metafile.outputs);

// What an app page's service worker keeps on install (browser/apps/offline.js): what starts a joined tab node and a vat.
// The lazy chunks (the module parser, automerge) it keeps once a page has loaded them.
const offline = new Set(['dist/tab/early.js', 'dist/tab/joined.js', 'dist/tab/vat.js'].flatMap((entry) => [...staticImports(entry)]));
writeFileSync(join(out, 'offline.json'), `${JSON.stringify([...offline].map(inTab).sort())}\n`);

if (process.argv.includes('--report')) {
  const outputs = Object.entries(result.metafile.outputs);
  const total = outputs.reduce((sum, [, o]) => sum + o.bytes, 0);
  /** Bytes each output holds of one group of inputs, after minifying. */
  const share = (test) => outputs.reduce((sum, [, o]) => sum + Object.entries(o.inputs).filter(([input]) => test(input)).reduce((n, [, i]) => n + i.bytesInOutput, 0), 0);
  // An entry and the chunks it imports statically: what a page loads before the first publish.
  const eager = (entry) => [...staticImports(entry)].reduce((sum, file) => sum + result.metafile.outputs[file].bytes, 0);
  const kb = (bytes) => `${(bytes / 1024).toFixed(0)} KiB`;
  const rows = [
    ['all files', total],
    ['node.js and its static imports (page load)', eager('dist/tab/node.js')],
    ['vat.js and its static imports (each vat)', eager('dist/tab/vat.js')],
    ['kernel core (src/ but src/tab)', share((input) => input.startsWith('src/') && !input.startsWith('src/tab/'))],
    ['  of which src/kernel', share((input) => input.startsWith('src/kernel/'))],
    ['src/tab (browser powers)', share((input) => input.startsWith('src/tab/'))],
    ['ses + @endo', share((input) => /node_modules\/(ses|@endo)\//.test(input) && !input.includes('module-source'))],
    ['module parser (@endo/module-source, babel; lazy)', share((input) => /node_modules\/(@endo\/module-source|@babel|@jridgewell|jsesc|debug|ms|picocolors|js-tokens)\//.test(input))],
    ['automerge (lazy, text merge only)', share((input) => input.includes('@automerge/'))],
  ];
  for (const [name, bytes] of rows) console.log(`${name.padEnd(50)} ${kb(bytes).padStart(10)}`);
}
