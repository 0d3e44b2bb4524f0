/**
 * The import graph of src/ points one way. Every import of one src file by
 * another — `import`, `import type`, `export … from`, a dynamic `import()`
 * and an `import('…')` type — is read with the TypeScript parser, and:
 *
 *  - no file reaches itself (no cycles, type-only ones included: a cycle of
 *    types is a cycle of meaning, and the next value import makes it real);
 *  - each folder imports only from its own layer or the layers below it.
 *
 * The layers, lowest first (a folder may import from its own layer and any
 * layer before it, never after):
 *
 *  0. values    interface (ids, errors, outcomes), closures (values, modules),
 *               wire (CBOR, envelope, the shapes nodes hand each other),
 *               store (blocks), identity (keys), types (declarations)
 *  1. records   journal (promise graph), vat-wasm, perimeter (lockdown)
 *  2. running   delegation (delegation records, screening), vat (workers),
 *               docs (documents), apps (an app's shape, its view as text)
 *  3. kernel    the kernel core: no network (powers passed in give it one),
 *               no home directory of its own
 *  4. net       sessions, grid messages, node server and client, peers
 *  5. Node      home (home directory, and `home/open.ts`: a kernel wired to
 *               files, clock and WebSockets), web (the web page's HTTP side),
 *               tab (a kernel wired to a browser tab's IndexedDB, WebCrypto
 *               and Web Workers)
 *  6. commands  repl, cli (the `grid` command; bin/grid.js enters it)
 *  7. library   index.ts (the package's entry)
 *
 * So the kernel imports nothing from net/, cli/, repl/ or web/; net/ nothing
 * from cli/, repl/, web/ or home/; and only cli/ itself imports cli/.
 */
import test from 'ava';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

const LAYERS: readonly (readonly string[])[] = [
  ['interface', 'closures', 'wire', 'store', 'identity', 'types'],
  ['journal', 'vat-wasm', 'perimeter', 'db'],
  ['delegation', 'vat', 'docs', 'apps'],
  ['kernel'],
  ['net'],
  ['home', 'web', 'tab', 'p2p'],
  ['repl', 'cli'],
  ['index.ts'],
];

/** A src file's folder (its first path segment), or the file itself at the top. */
const folderOf = (file: string) => file.split('/')[0]!;

const layerOf = (file: string): number => {
  const layer = LAYERS.findIndex((folders) => folders.includes(folderOf(file)));
  if (layer < 0) throw new Error(`${file}: its folder is in no layer; add it to LAYERS in test/import-graph.test.ts`);
  return layer;
};

/** Every module specifier a file imports, of any kind. */
export const specifiersOf = (path: string, text: string): string[] => {
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [first] = node.arguments;
      // A computed import() cannot be checked: refuse it rather than miss an edge.
      if (!first || !ts.isStringLiteralLike(first)) throw new Error(`${path}: import() of a computed specifier`);
      found.push(first.text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push(node.argument.literal.text);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteral(node.moduleReference.expression)) {
      found.push(node.moduleReference.expression.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS));
  return found;
};

/** src files (relative to src/, with `/`) and the src files each imports. */
const importGraph = (root: string): Map<string, string[]> => {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.ts')) files.push(path);
    }
  };
  walk(root);
  const graph = new Map<string, string[]>();
  for (const path of files) {
    const imports = specifiersOf(path, readFileSync(path, 'utf8'))
      .filter((specifier) => specifier.startsWith('.'))
      .map((specifier) => {
        const target = resolve(dirname(path), specifier.replace(/\.js$/, '.ts'));
        if (!target.startsWith(root)) throw new Error(`${relative(root, path)} imports ${specifier}, outside src/`);
        return relative(root, target).split(sep).join('/');
      });
    graph.set(relative(root, path).split(sep).join('/'), [...new Set(imports)]);
  }
  return graph;
};

/** Each cycle once, as the path around it (first file repeated at the end). */
const cyclesOf = (graph: ReadonlyMap<string, readonly string[]>): string[][] => {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next) && graph.has(next)) visit(next);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return cycles;
};

/** The imports that go up a layer, as `from → to`. */
const upwardImports = (graph: ReadonlyMap<string, readonly string[]>): string[] => {
  const wrong: string[] = [];
  for (const [from, imports] of graph) {
    for (const to of imports) if (layerOf(to) > layerOf(from)) wrong.push(`${from} → ${to}`);
  }
  return wrong;
};

const graph = importGraph(SRC);

test('every src file is in a layer, and the graph has every kind of import', (t) => {
  for (const file of graph.keys()) t.notThrows(() => layerOf(file), file);
  // The reader sees type-only, re-export and dynamic imports: a graph without them would pass vacuously.
  const kinds = specifiersOf(
    'probe.ts',
    "import type { A } from './a.js'; export { b } from './b.js'; export * from './c.js'; const d = () => import('./d.js'); type E = import('./e.js').E;",
  );
  t.deepEqual(kinds, ['./a.js', './b.js', './c.js', './d.js', './e.js']);
});

test('src has no import cycles', (t) => {
  t.deepEqual(cyclesOf(graph).map((cycle) => cycle.join(' → ')), []);
});

test('imports point down the layers: the kernel never reaches net, web, repl or cli; only cli imports cli', (t) => {
  t.deepEqual(upwardImports(graph), []);
});

test('the checks catch a cycle and an upward import', (t) => {
  // The real graph with two bad edges added: kernel.ts importing net/node.ts, and web/page.ts importing cli/main.ts.
  const bad = new Map([...graph].map(([file, imports]) => [file, [...imports]]));
  bad.get('kernel/kernel.ts')!.push('net/node.ts');
  bad.get('web/page.ts')!.push('cli/main.ts');
  t.true(cyclesOf(bad).some((cycle) => cycle.includes('kernel/kernel.ts') && cycle.includes('net/node.ts')));
  const known = new Set(upwardImports(graph));
  t.deepEqual(upwardImports(bad).filter((edge) => !known.has(edge)), ['kernel/kernel.ts → net/node.ts', 'web/page.ts → cli/main.ts']);
});
