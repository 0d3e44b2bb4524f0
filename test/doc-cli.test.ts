/**
 * `grid doc` through the real CLI, one process per command, for the
 * examples that run on one node: a shared todo list, a chat room (on a
 * running node), a shared text and a team budget. A conflict needs two
 * replicas: two kernels on two homes, in this process, make one; then they
 * close and the CLI lists and settles it on a home that has it.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openKernel, type Kernel } from '../src/index.js';
import { tempDir } from './_helpers.js';
import { gridProcesses } from './_processes.js';

const { grid, ok, startNode } = gridProcesses();

/** A refused command: its exit code, and the one line it printed. */
const refused = async (home: string, args: string[]) => {
  const result = await grid(home, args);
  return { code: result.code, line: result.stderr, lines: result.stderr.split('\n').length, stdout: result.stdout };
};

test('a shared todo list: create (init from the module), apply, show, show --at, log as text, json, dot and mermaid; refusals', async (t) => {
  t.timeout(180_000);
  const home = await tempDir(t);
  const me = await ok(home, ['init']);
  const created = await ok(home, ['doc', 'create', 'examples/todo.js', '--reducer', 'update', '--merge', 'json', '--name', 'todos']);
  const lines = created.split('\n');
  t.deepEqual(lines.map((line) => line.split(/\s+/)[0]), ['doc', 'read', 'write', 'settle', 'admin']);
  t.regex(lines[1]!, /^read {4}bafyrei\w+ {2}todos\.read$/);
  t.regex(lines[4]!, /^admin {3}bafyrei\w+ {2}todos$/);
  const names = JSON.parse(await ok(home, ['names', '--json'])).names;
  t.deepEqual(Object.keys(names).sort(), ['todos', 'todos.read', 'todos.settle', 'todos.write']);
  t.is(names['todos.write'].id, lines[2]!.split(/\s+/)[1]);
  // Without --init the module's `init` export gave the value.
  t.is(await ok(home, ['doc', 'show', 'todos.read']), '{"items":[]}');

  t.is(await ok(home, ['doc', 'apply', 'todos.write', '{"add":"buy milk"}']), '{"items":[{"done":false,"text":"buy milk"}]}');
  const second = JSON.parse(await ok(home, ['doc', 'apply', 'todos', '{"add":"eggs"}', '--json']));
  t.regex(second.version, /^bafyrei/);
  t.deepEqual(second.value, { items: [{ text: 'buy milk', done: false }, { text: 'eggs', done: false }] });
  // A delegated write token, as a grid URL with its chain.
  const url = await ok(home, ['delegate', 'todos.write', '--to', me]);
  t.regex(url, /^grid:\/\/bafyrei\w+\?chain=/);
  t.is(await ok(home, ['doc', 'apply', url, '{"done":"eggs"}']), '{"items":[{"done":false,"text":"buy milk"},{"done":true,"text":"eggs"}]}');
  t.deepEqual(JSON.parse(await ok(home, ['doc', 'show', 'todos.read', '--json'])).value.items[1], { text: 'eggs', done: true });

  // The log: newest first, one line per version.
  const log = (await ok(home, ['doc', 'log', 'todos'])).split('\n');
  t.is(log.length, 3);
  t.regex(log[0]!, /^bafyrei\w{5}…\w{6} {2}change by did:key:z6Mk…\w{6} via bafyrei\w{5}…\w{6} {2}\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ {2}\{"done":"eggs"\}$/);
  t.regex(log[2]!, /^bafyrei\w{5}…\w{6} {2}change by did:key:z6Mk…\w{6} {2}\S+ {2}\{"add":"buy milk"\}$/);
  const versions = JSON.parse(await ok(home, ['doc', 'log', 'todos.read', '--format', 'json'])).versions;
  t.deepEqual(versions.map((v: { change: unknown }) => v.change), [{ done: 'eggs' }, { add: 'eggs' }, { add: 'buy milk' }]);
  t.is(versions[0].parents[0], versions[1].version);
  t.deepEqual(JSON.parse(await ok(home, ['doc', 'log', 'todos.read', '--json', '--limit', '1'])).versions.length, 1);
  const dot = await ok(home, ['doc', 'log', 'todos', '--format', 'dot']);
  t.regex(dot, /^digraph document \{/);
  t.regex(dot, /\[label="genesis bafyrei\w{5}…\w{6}", shape=ellipse\]/);
  t.is(dot.match(/ -> /g)?.length, 3, 'an edge from each parent');
  t.true(dot.includes(`"${versions[1].version}" -> "${versions[0].version}";`));
  const mermaid = await ok(home, ['doc', 'log', 'todos', '--format', 'mermaid']);
  t.regex(mermaid, /^flowchart TD\n {2}v0\(\["genesis bafyrei\w{5}…\w{6}"\]\)/);
  t.regex(mermaid, /v\d\["bafyrei\w{5}…\w{6}<br\/>change by did:key:z6Mk…\w{6}<br\/>\{#quot;add#quot;:#quot;buy milk#quot;\}"\]/);
  t.is(mermaid.match(/ --> /g)?.length, 3);
  // A log cut short says so where it stops, instead of naming the genesis.
  t.regex(await ok(home, ['doc', 'log', 'todos', '--format', 'dot', '--limit', '1']), /shape=ellipse, style=dashed/);

  // An old version, named as the log shows it, by its tail, or in full.
  const first = versions[2].version as string;
  const short = log[2]!.split(' ')[0]!;
  t.is(await ok(home, ['doc', 'show', 'todos', '--at', short]), '{"items":[{"done":false,"text":"buy milk"}]}');
  t.is(await ok(home, ['doc', 'show', 'todos', '--at', first.slice(-8)]), '{"items":[{"done":false,"text":"buy milk"}]}');
  t.deepEqual(JSON.parse(await ok(home, ['doc', 'show', 'todos', '--at', first, '--json'])), { version: first, value: { items: [{ text: 'buy milk', done: false }] } });

  // Refusals: one line with the code, exit 3; the document is untouched.
  t.like(await refused(home, ['doc', 'apply', 'todos.read', '{"add":"x"}']), { code: 3, lines: 1 });
  t.regex((await refused(home, ['doc', 'apply', 'todos.read', '{"add":"x"}'])).line, /^revoked \(denied\): a read token does value, at, log, heads, conflicts, info, replica \(got "apply"\)$/);
  const deniedJson = await grid(home, ['doc', 'apply', 'todos.read', '{"add":"x"}', '--json']);
  t.is(deniedJson.code, 3);
  t.like(JSON.parse(deniedJson.stdout), { status: 'revoked', code: 'denied' });
  t.regex((await refused(home, ['doc', 'apply', 'todos', '{"frobnicate":1}'])).line, /^revoked \(refused\): the reducer refused the change: todo: a change is/);
  const doc = lines[0]!.split(/\s+/)[1]!;
  t.regex((await refused(home, ['doc', 'resolve', 'todos.write', doc, '--value', '1'])).line, /^revoked \(denied\): a write token does/);
  t.like(await refused(home, ['doc', 'apply', 'todos', '{bad json']), { code: 1, line: 'grid: CHANGE is not valid JSON: "{bad json" (Quoted object key expected but got \'b\' at position 1); strings need quotes, e.g. \'"Ada"\'' });
  t.like(await refused(home, ['doc', 'show', 'todos', '--at', 'zzzzzzzz']), { code: 1, lines: 1 });
  t.regex((await refused(home, ['doc', 'show', 'todos', '--at', 'zzzzzzzz'])).line, /^grid: "zzzzzzzz" is no version of this document/);
  t.is(await ok(home, ['doc', 'show', 'todos.read']), '{"items":[{"done":false,"text":"buy milk"},{"done":true,"text":"eggs"}]}');
});

test('doc create refuses bad input in one line, before making anything', async (t) => {
  t.timeout(120_000);
  const home = await tempDir(t);
  await ok(home, ['init']);
  const noInit = join(home, 'counter.js');
  await writeFile(noInit, 'export const update = (ctx, state, change) => state + change;\nexport const merge = (ctx, base, ours, theirs) => ours + theirs - base;\n');
  const cases: Array<[string[], RegExp]> = [
    [['doc', 'create', 'no-such.js', '--reducer', 'update'], /^grid: no such file: no-such\.js$/],
    [['doc', 'create', 'examples/todo.js', '--reducer', 'nope'], /^grid: module bafkrei\w+ has no export "nope" \(it exports: init, update, view\)$/],
    [['doc', 'create', 'examples/todo.js', '--reducer', 'update', '--init', '{"items":'], /^grid: --init is not valid JSON/],
    [['doc', 'create', noInit, '--reducer', 'update'], /^grid: module bafkrei\w+ has no export "init": give the initial value with --init JSON$/],
    [['doc', 'create', 'examples/todo.js', '--reducer', 'update', '--merge', 'jsno'], /^grid: --merge "jsno" is no merge step: .* \(did you mean "json"\?\)$/],
    [['doc', 'create', 'examples/todo.js', '--reducer', 'update', '--merge', 'examples/todo.js'], /^grid: --merge "examples\/todo\.js": name the export that merges, as examples\/todo\.js#merge$/],
    [['doc', 'create', 'examples/todo.js', '--reducer', 'update', '--merge', 'examples/todo.js#nope'], /has no export "nope"/],
    [['doc', 'create', 'examples/todo.js', '--reducer', 'update', '--name', '9lives'], /^grid: a pet name starts with a letter/],
    [['doc', 'create', 'examples/todo.js'], /^grid: doc create needs --reducer EXPORT$/],
    [['doc', 'resolve', 'x', 'y'], /^grid: doc resolve takes one of --pick HEAD or --value JSON$/],
  ];
  for (const [args, expected] of cases) {
    const result = await refused(home, args);
    t.is(result.code, 1, args.join(' '));
    t.is(result.lines, 1, result.line);
    t.regex(result.line, expected);
  }
  t.deepEqual(JSON.parse(await ok(home, ['names', '--json'])).names, {}, 'nothing was named');
  // The module's own merge, as FILE#export; the initial value given.
  const counter = JSON.parse(await ok(home, ['doc', 'create', noInit, '--reducer', 'update', '--merge', `${noInit}#merge`, '--init', '0', '--json']));
  t.deepEqual(Object.keys(counter).sort(), ['admin', 'doc', 'read', 'settle', 'write']);
  t.is(await ok(home, ['doc', 'apply', counter.write, '5']), '5');
  // Names already taken are kept unless --force.
  await ok(home, ['name', 'c.write', counter.write]);
  t.regex((await refused(home, ['doc', 'create', noInit, '--reducer', 'update', '--init', '0', '--name', 'c'])).line, /^grid: "c\.write" already names token/);
  t.is(JSON.parse(await ok(home, ['names', '--json'])).names.c, undefined);
  await ok(home, ['doc', 'create', noInit, '--reducer', 'update', '--init', '0', '--name', 'c', '--force']);
  t.is(await ok(home, ['doc', 'show', 'c']), '0');
});

test('a chat room on a running node: create with --merge union, apply, show, log, conflicts', async (t) => {
  t.timeout(180_000);
  const home = await tempDir(t);
  await ok(home, ['init']);
  const node = await startNode(t, home);
  const room = JSON.parse(await ok(home, ['doc', 'create', 'examples/chat.js', '--reducer', 'update', '--merge', 'union', '--name', 'room', '--json']));
  t.deepEqual(Object.keys(room).sort(), ['admin', 'doc', 'read', 'settle', 'write']);
  t.is(await ok(home, ['doc', 'apply', 'room.write', '{"say":"hello","from":"ann"}']), '{"messages":[{"from":"ann","text":"hello"}]}');
  t.is(await ok(home, ['doc', 'apply', 'room', '{"say":"hi ann","from":"bob"}']), '{"messages":[{"from":"ann","text":"hello"},{"from":"bob","text":"hi ann"}]}');
  t.is(JSON.parse(await ok(home, ['doc', 'show', 'room.read'])).messages.length, 2);
  t.is((await ok(home, ['doc', 'log', 'room.read'])).split('\n').length, 2);
  t.is(await ok(home, ['doc', 'conflicts']), '(no open conflicts)');
  t.deepEqual(JSON.parse(await ok(home, ['doc', 'conflicts', 'room', '--json'])), { conflicts: [] });
  t.like(await refused(home, ['doc', 'apply', 'room.read', '{"say":"x","from":"eve"}']), { code: 3, line: 'revoked (denied): a read token does value, at, log, heads, conflicts, info, replica (got "apply")' });
  t.regex((await refused(home, ['doc', 'create', 'examples/hello.js', '--reducer', 'hello'])).line, /has no export "init"/);
  // Another home reaches the room through grid URLs that name the node: a read token, and a write token delegated to it.
  const other = await tempDir(t);
  const otherPrincipal = await ok(other, ['init']);
  t.is(JSON.parse(await ok(other, ['doc', 'show', `grid://${room.read}?via=${encodeURIComponent(node.url)}`])).messages.length, 2);
  const forOther = await ok(home, ['delegate', 'room.write', '--to', otherPrincipal]);
  t.regex(forOther, /[?&]via=/);
  t.is(JSON.parse(await ok(other, ['doc', 'apply', forOther, '{"say":"from afar","from":"cy"}'])).messages.length, 3);
  t.regex((await ok(home, ['doc', 'log', 'room'])).split('\n')[0]!, /\{"say":"from afar","from":"cy"\}$/);
  t.like(await refused(other, ['doc', 'apply', `grid://${room.read}?via=${encodeURIComponent(node.url)}`, '{"say":"x","from":"cy"}']), { code: 3, line: 'revoked (denied): a read token does value, at, log, heads, conflicts, info, replica (got "apply")' });
  // Everything went through the node: the journal it wrote has the document's versions.
  t.regex(await ok(home, ['graph', '--format', 'json']), /"kind":"doc-head"/);
  t.is(await node.stop(), 0);
  // And the home, with no node, holds the same.
  t.is(JSON.parse(await ok(home, ['doc', 'show', 'room'])).messages.length, 3);
});

test('a shared text: --merge text, apply set and splice, log', async (t) => {
  t.timeout(120_000);
  const home = await tempDir(t);
  await ok(home, ['init']);
  await ok(home, ['doc', 'create', 'examples/text.js', '--reducer', 'update', '--merge', 'text', '--name', 'notes']);
  t.is(await ok(home, ['doc', 'show', 'notes']), '""');
  t.is(await ok(home, ['doc', 'apply', 'notes.write', '{"set":"Hello world"}']), '"Hello world"');
  t.is(await ok(home, ['doc', 'apply', 'notes.write', '{"splice":[5,0,","]}']), '"Hello, world"');
  t.regex((await refused(home, ['doc', 'apply', 'notes', '{"splice":[99,0,"x"]}'])).line, /^revoked \(refused\): .*splice index 99 is past the end of the text \(length 12\)$/);
  t.is(await ok(home, ['doc', 'show', 'notes.read']), '"Hello, world"');
  t.regex(await ok(home, ['doc', 'log', 'notes']), /\{"splice":\[5,0,","\]\}\n.*\{"set":"Hello world"\}$/);
});

/** Give `to` what `from` holds of a document. */
const sync = async (from: Kernel, to: Kernel, doc: string) => to.docs.ingest(await from.docs.bundle(doc, to.docs.held().find((held) => held.doc === doc)?.heads ?? []), from.principal);

test('a team budget: create and apply from the CLI; a conflict made by two replicas is listed and settled from the CLI', async (t) => {
  t.timeout(180_000);
  const [aliceHome, bobHome] = await Promise.all([tempDir(t), tempDir(t)]);
  await ok(aliceHome, ['init']);
  const budget = JSON.parse(await ok(aliceHome, ['doc', 'create', 'examples/budget.js', '--reducer', 'update', '--merge', 'json', '--init', '{"total":100,"lines":{}}', '--name', 'budget', '--json']));
  t.is(await ok(aliceHome, ['doc', 'apply', 'budget.write', '{"line":"travel","amount":30}']), '{"lines":{"travel":30},"total":100}');

  // Alice's and Bob's kernels, in this process: Bob holds a replica and a write delegation; both set the total while apart.
  const alice = await openKernel({ home: aliceHome });
  const bob = await openKernel({ home: bobHome, create: true });
  let open = true;
  t.teardown(async () => {
    if (open) await Promise.all([alice.close(), bob.close()]);
  });
  for (const token of await alice.docs.closuresOf(budget.doc)) await bob.adopt(token as never, await alice.replica(token, bob.principal));
  await bob.docs.ingest(await alice.docs.bundle(budget.doc, []), alice.principal);
  const bobWrite = await alice.delegate({ token: budget.write, to: [bob.principal] });
  await bob.importChain(bobWrite, (await alice.chainBlocks(bobWrite))!);
  const bobSettle = await alice.delegate({ token: budget.settle, to: [bob.principal] });
  await bob.importChain(bobSettle, (await alice.chainBlocks(bobSettle))!);
  t.like(await alice.docs.apply(budget.write, { set: 120 }), { status: 'fulfilled' });
  t.like(await bob.docs.apply(bobWrite, { set: 90 }), { status: 'fulfilled' });
  await sync(bob, alice, budget.doc);
  await sync(alice, bob, budget.doc);
  const [made] = alice.docs.allConflicts();
  t.truthy(made);
  await Promise.all([alice.close(), bob.close()]);
  open = false;

  // The CLI on Alice's home: the conflict, its heads and each step's reason.
  const listed = await ok(aliceHome, ['doc', 'conflicts']);
  const [heading, docLine, ...rest] = listed.split('\n');
  t.is(heading, `conflict ${made!.conflict}`);
  t.regex(docLine!, new RegExp(`^ {2}document ${budget.doc}, since \\d{4}-`));
  t.deepEqual(rest.slice(0, 2), made!.heads.map((head) => `  head ${head}`));
  t.regex(rest[2]!, /^ {2}step bafyrei\w{5}…\w{6}: refused: json merge: conflicting changes at \/total$/);
  const json = JSON.parse(await ok(aliceHome, ['doc', 'conflicts', 'budget.read', '--json']));
  t.deepEqual(json.conflicts.map((c: { conflict: string }) => c.conflict), [made!.conflict]);
  t.like(json.conflicts[0].attempts[0], { code: 'refused' });
  // Writes wait for the conflict; a read token cannot settle it.
  t.like(await refused(aliceHome, ['doc', 'apply', 'budget', '{"set":1}']), { code: 3 });
  t.regex((await refused(aliceHome, ['doc', 'apply', 'budget', '{"set":1}'])).line, /^revoked \(conflict\): document bafyrei\w+ has an open conflict/);
  t.regex((await refused(aliceHome, ['doc', 'resolve', 'budget.read', made!.conflict, '--pick', made!.heads[0]!])).line, /^revoked \(denied\)/);
  t.regex((await refused(aliceHome, ['doc', 'resolve', 'budget.settle', made!.conflict, '--pick', 'bafyreinotahead00'])).line, /^grid: "bafyreinotahead00" is no head of this document/);
  // A person picks a head, named by the tail of its CID; the conflict is named as `doc conflicts` shortens it.
  const bobs = await openKernel({ home: bobHome });
  const bobHead = bobs.docs.held()[0]!.current;
  await bobs.close();
  t.true(made!.heads.includes(bobHead));
  const conflictShort = `${made!.conflict.slice(0, 12)}…${made!.conflict.slice(-6)}`;
  const settled = JSON.parse(await ok(aliceHome, ['doc', 'resolve', 'budget.settle', conflictShort, '--pick', bobHead.slice(-10), '--json']));
  t.deepEqual(settled.value, { total: 90, lines: { travel: 30 } });
  t.is(await ok(aliceHome, ['doc', 'conflicts']), '(no open conflicts)');
  t.is(await ok(aliceHome, ['doc', 'show', 'budget.read']), '{"lines":{"travel":30},"total":90}');
  t.regex((await ok(aliceHome, ['doc', 'log', 'budget'])).split('\n')[0]!, new RegExp(`^bafyrei\\w{5}…\\w{6} {2}settle by did:key:z6Mk…\\w{6} \\(conflict ${conflictShort}\\) {2}\\S+ {2}of bafyrei\\w{5}…\\w{6} \\+ bafyrei\\w{5}…\\w{6}$`));
  t.regex(await ok(aliceHome, ['doc', 'log', 'budget', '--format', 'mermaid']), /\[\["bafyrei\w{5}…\w{6}<br\/>settle by/);
  t.like(await refused(aliceHome, ['doc', 'resolve', 'budget', made!.conflict, '--value', '{"total":1,"lines":{}}']), { code: 3 });

  // On Bob's home the same conflict is open; Bob settles it by writing the value, through his delegated settle token.
  t.is(JSON.parse(await ok(bobHome, ['doc', 'conflicts', '--json'])).conflicts[0].conflict, made!.conflict);
  await ok(bobHome, ['name', 'mine', bobSettle]);
  t.is(await ok(bobHome, ['doc', 'resolve', 'mine', made!.conflict, '--value', '{"total":100,"lines":{"travel":30}}']), '{"lines":{"travel":30},"total":100}');
  t.is(await ok(bobHome, ['doc', 'conflicts', 'mine']), '(no open conflicts)');
  t.regex(await ok(bobHome, ['doc', 'log', 'mine']), /settle by did:key:z6Mk…\w{6} via mine/);
});

test('the README shows the doc verbs', async (t) => {
  const readme = await readFile(join(process.cwd(), 'README.md'), 'utf8');
  for (const verb of ['create', 'apply', 'show', 'log', 'conflicts', 'resolve']) t.regex(readme, new RegExp(`grid doc ${verb} `));
});

test('a community whose membership changes by majority vote: propose, vote from two homes, a stranger refused, the story in grid graph', async (t) => {
  t.timeout(240_000);
  const [aliceHome, bobHome, carolHome] = await Promise.all([tempDir(t), tempDir(t), tempDir(t)]);
  const [alice, bob, carol] = await Promise.all([ok(aliceHome, ['init']), ok(bobHome, ['init']), ok(carolHome, ['init'])]);
  const init = JSON.stringify({ members: [alice, bob], rules: {} });
  const created = JSON.parse(await ok(aliceHome, ['doc', 'create', 'examples/community.js', '--reducer', 'update', '--init', init, '--members', 'self', '--quorum', 'majority', '--deadline', '1h', '--name', 'club', '--json']));
  t.like(await refused(aliceHome, ['doc', 'apply', 'club.write', JSON.stringify({ add: carol })]), { code: 3, line: `revoked (denied): document ${created.doc} changes only by proposal (grid propose)` });
  t.like(await refused(aliceHome, ['doc', 'create', 'examples/community.js', '--reducer', 'update', '--quorum', '2']), { code: 1, line: 'grid: --quorum, --weighted and --deadline govern a document: give its members with --members DOC|self' });
  const node = await startNode(t, aliceHome);
  const proposal = (await ok(aliceHome, ['propose', 'club.write', JSON.stringify({ add: carol })])).replace(/^promised: /, '');
  t.regex(proposal, /^bafyrei\w+$/);
  // Alice's yes is one of two members: not yet a majority.
  t.is(await ok(aliceHome, ['vote', proposal, 'yes']), `promised: ${proposal}`);
  t.like(await refused(aliceHome, ['vote', proposal, 'no']), { code: 3, line: `revoked: ${alice} has voted on this proposal already` });
  const there = `grid://${proposal}?via=${encodeURIComponent(node.url)}`;
  t.like(await refused(carolHome, ['vote', there, 'yes']), { code: 3, line: `revoked: ${carol} is not a member of the document this proposal was put to` });
  // Bob's vote, signed by his home and cast at Alice's node, carries it: the change is applied.
  t.like(JSON.parse(await ok(bobHome, ['vote', there, 'yes'])), { status: 'passed' });
  t.deepEqual(JSON.parse(await ok(aliceHome, ['doc', 'show', 'club.read'])).members, [alice, bob, carol].sort());
  const story = await ok(aliceHome, ['graph', created.doc]);
  t.regex(story, /proposes \{"add":"did:key:.* to .* by did:key/);
  t.regex(story, /votes yes on .* \(signed\)/);
  t.regex(story, /passed: carried \(version/);
});

test('grid doc follow: a delegated write token replicates the document to another home, whose node syncs it and writes offline', async (t) => {
  t.timeout(240_000);
  const [aliceHome, bobHome] = await Promise.all([tempDir(t), tempDir(t)]);
  const [, bob] = await Promise.all([ok(aliceHome, ['init']), ok(bobHome, ['init'])]);
  await ok(aliceHome, ['doc', 'create', 'examples/todo.js', '--reducer', 'update', '--merge', 'json', '--name', 'todos']);
  await ok(aliceHome, ['doc', 'apply', 'todos.write', '{"add":"milk"}']);
  const alice = await startNode(t, aliceHome);
  const url = await ok(aliceHome, ['delegate', 'todos.write', '--to', bob]);
  t.regex(await ok(bobHome, ['doc', 'follow', url]), /^following bafyrei\w+$/);
  const bobNode = await startNode(t, bobHome, ['--peer', alice.url]);
  const token = url.replace(/^grid:\/\//, '').replace(/\?.*$/, '');
  const seen = async () => (await grid(bobHome, ['doc', 'show', token])).stdout;
  for (let tries = 0; tries < 100 && (await seen()) !== '{"items":[{"done":false,"text":"milk"}]}'; tries++) await new Promise((resolve) => setTimeout(resolve, 300));
  t.is(await seen(), '{"items":[{"done":false,"text":"milk"}]}');
  // Alice's node stops; Bob writes on his own replica, offline; when she is back, his change reaches her.
  t.is(await alice.stop(), 0);
  t.is(await ok(bobHome, ['doc', 'apply', token, '{"add":"eggs"}']), '{"items":[{"done":false,"text":"milk"},{"done":false,"text":"eggs"}]}');
  t.is(await bobNode.stop(), 0);
  const back = await startNode(t, aliceHome);
  await startNode(t, bobHome, ['--peer', back.url]);
  const hers = async () => (await grid(aliceHome, ['doc', 'show', 'todos.read'])).stdout;
  for (let tries = 0; tries < 100 && !(await hers()).includes('eggs'); tries++) await new Promise((resolve) => setTimeout(resolve, 300));
  t.is(await hers(), '{"items":[{"done":false,"text":"milk"},{"done":false,"text":"eggs"}]}');
});

test('grid doc admin: the admin token proposes a new reducer, the issuer votes it in, the next change runs it; other tokens refused', async (t) => {
  t.timeout(180_000);
  const home = await tempDir(t);
  await ok(home, ['init']);
  await ok(home, ['doc', 'create', 'examples/todo.js', '--reducer', 'update', '--merge', 'json', '--name', 'todos']);
  await ok(home, ['doc', 'apply', 'todos.write', '{"add":"milk"}']);
  const shout = join(home, 'shout.js');
  await writeFile(shout, `export const update = (ctx, state, change) => ({ items: [...state.items, { text: String(change.add).toUpperCase(), done: false }] });\n`);
  t.like(await refused(home, ['doc', 'admin', 'todos.write', '--reducer', `${shout}#update`]), { code: 3, lines: 1, line: "revoked (denied): only a document's admin token changes its reducer or merge cascade (this is a write token)" });
  t.like(await refused(home, ['doc', 'admin', 'todos']), { code: 1, line: 'grid: doc admin takes a new --reducer, a new cascade (--merge STEP…, or --no-merges), or both' });
  const proposed = await ok(home, ['doc', 'admin', 'todos', '--reducer', `${shout}#update`, '--merge', 'json']);
  t.regex(proposed, /^promised: bafyrei\w+$/);
  // Until its issuer consents, the document runs the old reducer.
  t.is(await ok(home, ['doc', 'apply', 'todos.write', '{"add":"tea"}']), '{"items":[{"done":false,"text":"milk"},{"done":false,"text":"tea"}]}');
  t.like(JSON.parse(await ok(home, ['vote', proposed.replace(/^promised: /, ''), 'yes'])), { status: 'passed' });
  t.regex((await ok(home, ['doc', 'log', 'todos'])).split('\n')[0]!, /^bafyrei\S+ {2}rules by did:key:z6Mk…\w{6} {2}\S+ {2}\{"reducer":"bafyrei\w+","merges":\["bafyrei\w+…/);
  t.is(await ok(home, ['doc', 'apply', 'todos.write', '{"add":"jam"}']), '{"items":[{"done":false,"text":"milk"},{"done":false,"text":"tea"},{"done":false,"text":"JAM"}]}');
});
