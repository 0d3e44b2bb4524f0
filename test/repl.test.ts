/**
 * `grid repl` driven as a person would: through a pseudo-terminal (util-linux
 * `script`), typing a session that publishes, issues, delegates, calls,
 * revokes and then queries the graph, and reading what it prints.
 */
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { tempDir } from './_helpers.js';
import { gridProcesses } from './_processes.js';

const { ok, startNode } = gridProcesses();

const GRID = join(process.cwd(), 'bin', 'grid.js');
const hasScript = existsSync('/usr/bin/script');

/** Type `lines` into `grid repl` on a pseudo-terminal; what the terminal showed, escape sequences removed. */
const session = (home: string, lines: string[]): Promise<string> =>
  new Promise((resolve, reject) => {
    const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(GRID)} repl --home ${JSON.stringify(home)}`;
    const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('error', reject);
    child.on('close', () => resolve(out.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '')));
    child.stdin.end(`${lines.join('\n')}\n.exit\n`);
  });

(hasScript ? test : test.skip)('a REPL session delegates, calls, revokes and audits the graph', async (t) => {
  t.timeout(60_000);
  const home = await tempDir(t);
  const { stdout: me } = await promisify(execFile)(process.execPath, [GRID, 'init', '--home', home]);
  const out = await session(home, [
    'const code = await grid.publish("export const add = (ctx, a, b) => a + b;")',
    'const add = await grid.issue({ code, export: "add" })',
    'await grid.call(add, 2, 3)',
    `const forMe = await grid.delegate(add, { to: ["${me.trim()}"], policies: [{ module: "rate", settings: { uses: 1 } }] })`,
    'await grid.call(forMe, 1, 1)',
    'await grid.call(forMe, 1, 1)',
    'await graph.who(add)',
    'await graph.broken()',
    'await graph.show(add)',
    'await grid.revoke(forMe, "enough")',
    '(await graph.who(add)).length',
    '(await graph.export("mermaid")).split("\\n")[0]',
    '(await graph.pending()).length',
  ]);
  const after = (prompt: string) => out.split(`grid> ${prompt}\n`)[1]?.split('grid> ')[0]?.trim();
  t.is(after('await grid.call(add, 2, 3)'), "{ status: 'fulfilled', value: 5 }");
  t.regex(after('await grid.call(forMe, 1, 1)') ?? '', /value: 2/);
  t.regex(out, /reason: 'delegation bafyrei\w+…: quota of 1 calls used up'/);
  t.regex(after('await graph.who(add)') ?? '', /^did:key:z6Mk…\w+ \(directly\)\ndid:key:z6Mk…\w+ through bafyrei\w+…\w+$/);
  t.regex(after('await graph.broken()') ?? '', /^#\d+ bafyrei\w+…\w+ called by did:key:z6Mk…\w+: delegation bafyrei\w+…: quota of 1 calls used up$/);
  const tree = after('await graph.show(add)') ?? '';
  t.regex(tree, /^bafyrei\w+…\w+: issued by did:key:z6Mk…\w+ \(bafkrei\w+…\w+#add\)\n├─ call #\d+ by .* → fulfilled/);
  t.regex(tree, /└─ delegated as bafyrei\w+…\w+ by did:key:\S+ to did:key:\S+\n {3}├─ call #\d+ by \S+ → fulfilled\n {3}└─ call #\d+ by \S+ → revoked: delegation bafyrei\w+…: quota of 1 calls used up/);
  t.is(after('(await graph.who(add)).length'), '1', 'after the revocation only the issuer reaches it');
  t.is(after('(await graph.export("mermaid")).split("\\n")[0]'), "'flowchart LR'");
  t.is(after('(await graph.pending()).length'), '0');
  t.regex(await readFile(join(home, 'repl_history'), 'utf8'), /grid\.delegate\(add/, 'history is kept in the home');
});

(hasScript ? test : test.skip)('graph.show across nodes merges a peer\'s verified records', async (t) => {
  t.timeout(60_000);
  const [alice, carol] = await Promise.all([tempDir(t), tempDir(t)]);
  await Promise.all([ok(alice, ['init']), ok(carol, ['init'])]);
  const module = join(alice, 'square.js');
  await writeFile(module, 'export const square = (ctx, x) => x * x;\n');
  const square = await ok(alice, ['issue', module, '--export', 'square']);
  const node = await startNode(t, alice);
  t.is(await ok(carol, ['call', `grid://${square}?via=${encodeURIComponent(node.url)}`, '4']), '16');
  const out = await session(carol, [`await graph.show("${square}", { from: ["${node.url}"] })`]);
  t.regex(out, /across 2 nodes\n├─ here: bafyrei\w+…\w+: not issued here\n└─ on did:key:z6Mk…\w+ \(ws:\/\/127\.0\.0\.1:\d+\): \d+ records verified\n {3}├─ issued by/);
  t.regex(out, /call #\d+ by did:key:z6Mk…\w+ → fulfilled/);
  await node.stop();
});
