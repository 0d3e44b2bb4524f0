/**
 * `grid repl` driven as a person would: through a pseudo-terminal (util-linux
 * `script`), typing a session that publishes, issues, delegates, calls,
 * revokes and then queries the graph, and reading what it prints.
 */
import test, { type ExecutionContext } from 'ava';
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

/**
 * What a terminal shows after `raw`: its lines, for the cursor movements and
 * erasures readline uses (cursor to column, up, down, right, left, erase to
 * the end of the screen or line); colours and other sequences ignored.
 */
const screen = (raw: string): string[] => {
  const lines: string[][] = [[]];
  let row = 0;
  let col = 0;
  const line = () => (lines[row] ??= []);
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (c === '\x1b') {
      const m = /^\x1b\[([0-9;?]*)([A-Za-z])/.exec(raw.slice(i, i + 16));
      if (!m) continue;
      i += m[0].length - 1;
      const n = Number(m[1] || (m[2] === 'J' || m[2] === 'K' ? 0 : 1));
      if (m[2] === 'G') col = n - 1;
      else if (m[2] === 'A') row = Math.max(0, row - n);
      else if (m[2] === 'B') row += n;
      else if (m[2] === 'C') col += n;
      else if (m[2] === 'D') col = Math.max(0, col - n);
      else if (m[2] === 'J' && n === 0) {
        line().length = Math.min(line().length, col);
        lines.length = row + 1;
      } else if (m[2] === 'K') {
        if (n === 0) line().length = Math.min(line().length, col);
        else if (n === 2) lines[row] = [];
      }
    } else if (c === '\r') col = 0;
    else if (c === '\n') {
      row += 1;
      col = 0;
    } else {
      const cells = line();
      while (cells.length < col) cells.push(' ');
      cells[col++] = c;
    }
  }
  return Array.from(lines, (cells) => (cells ?? []).join('').trimEnd());
};

/** Escape sequences and carriage returns removed: roughly what the terminal shows, line by line. */
const plain = (raw: string) => raw.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');

/**
 * `grid repl` on a pseudo-terminal, typed into as a person does: a line at a
 * time, each once the REPL has answered the one before (its next prompt).
 */
const terminal = (t: ExecutionContext, home: string) => {
  const command = `${JSON.stringify(process.execPath)} ${JSON.stringify(GRID)} repl --home ${JSON.stringify(home)}`;
  const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, GRID_HOME: '', COLUMNS: '200' } });
  let raw = '';
  const waiting = new Set<() => void>();
  child.stdout.on('data', (chunk) => {
    raw += chunk;
    for (const check of [...waiting]) check();
  });
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  // A test that fails part way leaves no REPL behind.
  t.teardown(() => {
    if (child.exitCode === null) child.kill();
  });
  /** Resolves once `done(raw output)` holds; rejects with the output so far if it does not within `ms`. */
  const until = (done: (raw: string) => boolean, ms = 30_000) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!done(raw)) return;
        clearTimeout(timer);
        waiting.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        waiting.delete(check);
        reject(new Error(`the REPL did not get there; it showed:\n${plain(raw)}`));
      }, ms);
      waiting.add(check);
      check();
    });
  const prompts = () => plain(raw).split('\ngrid> ').length;
  // Typing before the REPL is listening would have the terminal echo it early.
  const ready = until((shown) => plain(shown).includes('grid> '));
  return {
    raw: () => raw,
    text: () => plain(raw),
    until,
    /** Type `text` without Enter. */
    type: async (text: string) => {
      await ready;
      child.stdin.write(text);
    },
    /** Type a line and wait for the REPL's answer and its next prompt; what it printed. */
    line: async (text: string) => {
      await ready;
      const before = plain(raw).length;
      const count = prompts();
      child.stdin.write(`${text}\n`);
      await until(() => prompts() > count);
      const shown = plain(raw).slice(before);
      return shown.slice(shown.indexOf('\n') + 1, shown.lastIndexOf('\ngrid> ')).trim();
    },
    exit: async () => {
      child.stdin.end('.exit\n');
      await closed;
    },
  };
};

(hasScript ? test : test.skip)('a REPL session delegates, calls, revokes and audits the graph', async (t) => {
  t.timeout(120_000);
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
  t.timeout(120_000);
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

(hasScript ? test : test.skip)("the README's REPL lines, typed in order on a home whose node has a peer, across nodes included", async (t) => {
  t.timeout(120_000);
  const [alice, bob] = await Promise.all([tempDir(t), tempDir(t)]);
  await Promise.all([ok(alice, ['init']), ok(bob, ['init'])]);
  const b = await startNode(t, bob);
  const a = await startNode(t, alice, ['--peer', b.url]);
  const readme = await readFile(join(process.cwd(), 'README.md'), 'utf8');
  // Each `grid>` line of the tour, its comment dropped and its placeholder principal made real.
  const lines = [...readme.matchAll(/^grid> (.*)$/gm)].map(([, line]) => line!.replace(/\s{2,}\/\/ .*$/, '').replaceAll('did:key:…', b.principal).trim());
  t.true(lines.length >= 8, 'the README has its REPL lines');
  t.true(lines.some((line) => line.includes('graph.follow()')) && lines.at(-1)!.includes('across: true'), 'following starts before the look across nodes');
  const repl = terminal(t, alice);
  const answers: string[] = [];
  for (const line of lines) answers.push(await repl.line(line));
  // An eventual send of one's own, then once more across nodes, and a call: the session still works.
  const sent = await repl.line('await E({ twice: (x) => 2 * x }).twice(21)');
  const again = await repl.line(lines.at(-1)!);
  const call = await repl.line('await grid.call(add, 20, 22)');
  await repl.line('stop()');
  await repl.exit();
  t.log(repl.text());
  t.is(answers[1], "{ status: 'fulfilled', value: 5 }");
  for (const shown of [answers.at(-1)!, again]) {
    t.regex(shown, /across 2 nodes/);
    t.regex(shown, new RegExp(`on ${b.principal.slice(0, 12)}\\S* \\(${b.url.replace(/[/.]/g, '\\$&')}\\): \\d+ records verified`));
    t.notRegex(shown, /✗/);
  }
  t.is(sent, '42');
  t.regex(call, /value: 42/);
  t.notRegex(repl.text(), /Uncaught|read only property|_events/);
  void a;
});

/** A home with `add` issued and named, and a node running on it. */
const homeWithAdd = async (t: ExecutionContext) => {
  const [home, files] = await Promise.all([tempDir(t), tempDir(t)]);
  const principal = await ok(home, ['init']);
  const file = join(files, 'add.js');
  await writeFile(file, 'export const add = (ctx, a, b) => a + b;\n');
  const add = await ok(home, ['issue', file, '--export', 'add', '--name', 'add']);
  return { home, principal, add };
};

(hasScript ? test : test.skip)('the REPL: a banner and .help name what is in scope; grid.call and grid.delegate take pet names and grid URLs, and delegate answers the grid URL', async (t) => {
  t.timeout(120_000);
  const alice = await homeWithAdd(t);
  const bob = await tempDir(t);
  const bobPrincipal = await ok(bob, ['init']);
  await ok(alice.home, ['name', 'bob', bobPrincipal]);
  const node = await startNode(t, alice.home);

  const repl = terminal(t, alice.home);
  await repl.until((raw) => plain(raw).includes('grid> '));
  const banner = repl.text().split('grid> ')[0]!;
  t.regex(banner, /^PromiseGrid REPL on this home \(served at ws:\/\/127\.0\.0\.1:\d+\)\. In scope:\n/);
  t.regex(banner, /\n {2}grid {3}publish, issue, call, delegate, revoke\b/);
  t.regex(banner, /\n {2}graph {2}show, who, pending, broken, calls, reputation, export, follow\n/);
  t.regex(banner, /pet names or grid:\/\/ URLs/);
  const help = await repl.line('.help');
  for (const method of ['publish', 'issue', 'call', 'delegate', 'revoke']) t.regex(help, new RegExp(`^ {2}grid\\.${method}\\(`, 'm'), `.help: grid.${method}`);
  for (const method of ['show', 'who', 'pending', 'broken', 'calls', 'reputation', 'export', 'follow']) t.regex(help, new RegExp(`^ {2}graph\\.${method}\\(`, 'm'), `.help: graph.${method}`);
  t.regex(help, /^\.exit +Exit the REPL$/m, "and Node's own commands");

  t.is(await repl.line("await grid.call('add', 2, 3)"), "{ status: 'fulfilled', value: 5 }", 'a pet name');
  t.regex(await repl.line("await grid.call('ad', 2, 3)"), /^Uncaught:?\s*UsageError: no such name "ad"; did you mean "add"\?/, 'a typo is named, in one line');
  t.regex(await repl.line("await grid.call('bob', 2, 3)"), /^Uncaught:?\s*UsageError: "bob" names a principal, not a token/);
  const url = await repl.line("const url = await grid.delegate('add', { to: ['bob'] }); url");
  t.regex(url, /^'grid:\/\/bafyrei\w+\?via=ws%3A%2F%2F127\.0\.0\.1%3A\d+&chain=[\w-]+'$/, 'the shareable URL, chain included');
  t.true(url.includes(encodeURIComponent(node.url)));
  t.regex(await repl.line("(await graph.who('add')).length"), /^2$/, 'graph queries take pet names too');
  await repl.exit();

  // Bob, on his own home (no node), calls the URL: it goes to Alice's node, chain and all.
  const bobs = terminal(t, bob);
  t.is(await bobs.line(`await grid.call(${url}, 20, 22)`), "{ status: 'fulfilled', value: 42 }");
  await bobs.exit();
});

(hasScript ? test : test.skip)("graph.follow() prints above the prompt and draws the prompt and what was typed again below", async (t) => {
  t.timeout(120_000);
  const { home } = await homeWithAdd(t);
  await startNode(t, home);
  const repl = terminal(t, home);
  t.is(await repl.line('const stop = await graph.follow()'), 'undefined');
  await repl.type('1 + ');
  await repl.until((raw) => plain(raw).endsWith('grid> 1 + '));
  t.is(await ok(home, ['call', 'add', '4', '5']), '9');
  // The record, then the prompt again with the half-typed line.
  await repl.until((raw) => screen(raw).some((line) => line.includes('add(4, 5)')));
  // And its outcome's record: a record landing later would print between what the test types and its answer.
  await repl.until((raw) => screen(raw).some((line) => /fulfilled +#\d+ -> 9\b/.test(line)));
  // Once the records are written and the prompt drawn again: what the terminal shows.
  await repl.until((raw) => /^grid> 1 \+$/.test(screen(raw).filter((line) => line !== '').at(-1) ?? ''), 5_000).catch(() => {});
  const lines = screen(repl.raw()).filter((line) => line !== '');
  t.log(lines.slice(-6).join('\n'));
  const record = lines.findIndex((line) => line.includes('add(4, 5)'));
  t.regex(lines[record]!, /^#\d+ \S+ call +add\(4, 5\) by /, 'the record has a line of its own');
  t.not(lines[record - 1], 'grid> 1 +', 'the prompt it interrupted is gone from above it');
  t.is(lines.at(-1), 'grid> 1 +', 'the prompt and what was typed are drawn again below the records');
  t.is(await repl.line('2'), '3', 'what was typed is still there');
  t.is(await repl.line('stop()'), 'undefined');
  await repl.exit();
});

/**
 * A REPL session on a fresh home that publishes examples/todo.js and makes a
 * document `todos` of it, then types `lines`: what each typed line printed.
 */
const todoSession = async (t: ExecutionContext, lines: string[]) => {
  t.timeout(120_000);
  const home = await tempDir(t);
  await promisify(execFile)(process.execPath, [GRID, 'init', '--home', home]);
  const out = await session(home, [
    'const code = await grid.publish(await require("node:fs/promises").readFile("examples/todo.js", "utf8"))',
    'const todos = await doc.create(code, { reducer: "update", merge: ["json"] })',
    ...lines,
  ]);
  return (prompt: string) => out.split(`grid> ${prompt}\n`)[1]?.split('grid> ')[0]?.trim();
};

(hasScript ? test : test.skip)('a REPL session makes a document, applies changes, reads its log and its conflicts', async (t) => {
  const after = await todoSession(t, [
    'Object.keys(todos).sort().join()',
    '(await doc.apply(todos.write, { add: "milk" })).value',
    '(await doc.show(todos.read)).value.items.length',
    'await doc.log(todos.read)',
    '(await doc.log(todos.read, { format: "mermaid" })).split("\\n")[0]',
    'await doc.apply(todos.read, { add: "x" })',
    'await doc.conflicts()',
  ]);
  t.is(after('Object.keys(todos).sort().join()'), "'admin,doc,read,settle,write'");
  t.is(after('(await doc.apply(todos.write, { add: "milk" })).value'), "{ items: [ { done: false, text: 'milk' } ] }");
  t.is(after('(await doc.show(todos.read)).value.items.length'), '1');
  t.regex(after('await doc.log(todos.read)') ?? '', /^bafyrei\w{5}…\w{6} {2}change by did:key:z6Mk…\w{6} {2}\S+ {2}\{"add":"milk"\}$/);
  t.is(after('(await doc.log(todos.read, { format: "mermaid" })).split("\\n")[0]'), "'flowchart TD'");
  t.regex(after('await doc.apply(todos.read, { add: "x" })') ?? '', /^Uncaught DocumentRefused: revoked: a read token does value, at, log, heads, conflicts, info, replica \(got "apply"\) \(denied\)$/);
  t.is(after('await doc.conflicts()'), '(no open conflicts)');
});

(hasScript ? test : test.skip)('a REPL session changes a document\'s reducer through its admin token, by a proposal its issuer votes in', async (t) => {
  const after = await todoSession(t, [
    'const shout = await grid.publish("export const update = (ctx, state, change) => ({ items: [...state.items, { text: change.add.toUpperCase(), done: false }] });")',
    'await doc.admin(todos.write, { reducer: shout + "#update" })',
    'const proposal = await doc.admin(todos.admin, { reducer: shout + "#update" })',
    '(await doc.vote(proposal, "yes")).status',
    '(await doc.apply(todos.write, { add: "milk" })).value.items[0].text',
  ]);
  t.regex(after('await doc.admin(todos.write, { reducer: shout + "#update" })') ?? '', /^Uncaught DocumentRefused: revoked: only a document's admin token changes its reducer or merge cascade \(this is a write token\) \(denied\)$/);
  t.is(after('(await doc.vote(proposal, "yes")).status'), "'passed'");
  t.is(after('(await doc.apply(todos.write, { add: "milk" })).value.items[0].text'), "'MILK'");
});
