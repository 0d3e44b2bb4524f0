/**
 * `grid gc` on real homes: a home that published, issued, called, cached,
 * delegated, revoked and kept a document is collected, and afterwards —
 * and after a restart that rebuilds everything from the journal — every
 * call, document read and cached answer still works, while the garbage
 * (blocks nothing names, a revoked closure and what only it named, a
 * revoked delegation) is gone. A dry run deletes nothing; a running node
 * is refused; a write during the collection is kept; damaged blocks are
 * reported and left alone.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CID } from 'multiformats/cid';
import { homePaths } from '../src/home/home.js';
import { collectGarbage, type GcReport } from '../src/home/gc.js';
import { openKernel } from '../src/home/open.js';
import { namedIn } from '../src/store/links.js';
import { blockPath, openFsBlockStore } from '../src/store/index.js';
import { encode } from '../src/wire/index.js';
import { makeClosure } from '../src/closures/closure.js';
import { generateIdentity } from '../src/identity/index.js';
import { DAG_CBOR_CODEC, RAW_CODEC } from '../src/interface/ids.js';
import { gridProcesses } from './_processes.js';
import { tempDir } from './_helpers.js';

const { grid, ok, startNode } = gridProcesses({ GRID_LOCK_WAIT_MS: '30000' });

/** The names of the block files in a home's store. */
const blockFiles = async (home: string): Promise<Set<string>> => {
  const dir = homePaths(home).blocks;
  const names = new Set<string>();
  for (const shard of await readdir(dir, { withFileTypes: true })) {
    if (shard.isDirectory()) for (const name of await readdir(join(dir, shard.name))) names.add(name);
  }
  return names;
};

/** Make every block file look `days` old, as a home's blocks are after a while (and a module past the grace period). */
const ageBlocks = async (home: string, days = 40) => {
  const then = new Date(Date.now() - days * 86_400_000);
  const dir = homePaths(home).blocks;
  for (const shard of await readdir(dir, { withFileTypes: true })) {
    if (shard.isDirectory()) for (const name of await readdir(join(dir, shard.name))) await utimes(join(dir, shard.name, name), then, then);
  }
};

const ECHO = `export const echo = (ctx, x) => ({ got: x });\nexport const blob = (ctx) => ctx.env.blob;\n`;
const link = (cid: string) => JSON.stringify({ '/': cid });
const putData = async (home: string, value: unknown) => (await openFsBlockStore(homePaths(home).blocks).put(encode(value), { codec: DAG_CBOR_CODEC })).toString();
const hitsOn = async (home: string, token: string) => (await ok(home, ['graph', token])).split('\n').filter((line) => /^#\d+ \S+ hit /.test(line)).length;

test('grid gc keeps what the home uses and collects the rest; everything works after, and after a full replay', async (t) => {
  t.timeout(300_000);
  const dir = await tempDir(t);
  const home = join(dir, 'home');
  const me = await ok(home, ['init']);
  const echoFile = join(dir, 'echo.js');
  await writeFile(echoFile, ECHO);

  const greet = await ok(home, ['issue', 'examples/hello.js', '--export', 'greet', '--env', '{"greeting":"hi"}']);
  const echo = await ok(home, ['issue', echoFile, '--export', 'echo']);
  // A block that only a cached answer names (the call's argument and its value).
  const cachedBlob = await putData(home, { only: 'a cached answer names me' });
  const echoed = JSON.stringify({ got: { '/': cachedBlob } });
  t.is(await ok(home, ['call', echo, link(cachedBlob)]), echoed);
  t.is(await ok(home, ['call', echo, link(cachedBlob)]), echoed);
  t.is(await hitsOn(home, echo), 1);
  // A block a live closure's env names as text, not as a link.
  const textBlob = await putData(home, { only: 'a live env names me as text' });
  const asText = await ok(home, ['issue', 'examples/hello.js', '--export', 'greet', '--env', JSON.stringify({ greeting: textBlob })]);
  // A revoked closure, and a block only its env named.
  const envBlob = await putData(home, { only: 'a revoked closure names me' });
  const revokedClosure = await ok(home, ['issue', echoFile, '--export', 'blob', '--env', JSON.stringify({ blob: { '/': envBlob } })]);
  await ok(home, ['revoke', revokedClosure]);
  // A document with two changes.
  await ok(home, ['doc', 'create', 'examples/todo.js', '--reducer', 'update', '--merge', 'json', '--name', 'todos']);
  await ok(home, ['doc', 'apply', 'todos', '{"add":"buy milk"}']);
  const value = await ok(home, ['doc', 'apply', 'todos', '{"add":"eggs"}']);
  const log = await ok(home, ['doc', 'log', 'todos']);
  // A delegation in force, and one revoked.
  const delegated = JSON.parse(await ok(home, ['delegate', greet, '--to', me, '--json'])).token as string;
  t.is(await ok(home, ['call', delegated, '"z"']), '"hi, z"');
  const revokedDelegation = JSON.parse(await ok(home, ['delegate', greet, '--to', me, '--json'])).token as string;
  await ok(home, ['revoke', revokedDelegation]);

  // Garbage: data nothing names, modules nothing uses (old enough to go), a closure record never journaled (a crash between storing and journaling it).
  const store = openFsBlockStore(homePaths(home).blocks);
  const garbage = new Set<string>([revokedClosure, envBlob, revokedDelegation]);
  for (let i = 0; i < 5; i++) garbage.add(await putData(home, { junk: i, bytes: new Uint8Array(randomBytes(100 * (i + 1))) }));
  for (let i = 0; i < 2; i++) garbage.add((await store.put(new TextEncoder().encode(`export const unused${i} = () => ${i};\n`), { codec: RAW_CODEC })).toString());
  const orphan = await makeClosure({ code: (await store.put(new TextEncoder().encode('export const f = () => 1;\n'), { codec: RAW_CODEC })).toString() as never, export: 'f', env: {} }, generateIdentity((n) => new Uint8Array(randomBytes(n))), new Uint8Array(randomBytes(16)));
  garbage.add((await store.put(orphan.bytes, { codec: DAG_CBOR_CODEC })).toString());
  garbage.add(orphan.closure.code);
  await ageBlocks(home);
  const before = await blockFiles(home);
  for (const cid of garbage) t.true(before.has(cid), `${cid} is in the store before`);

  const dry = JSON.parse(await ok(home, ['gc', '--dry-run', '--json'])) as GcReport;
  t.deepEqual(dry.blocks!.map((block) => block.cid).sort(), [...garbage].sort(), 'the dry run lists exactly the garbage');
  t.is(dry.collected.blocks, garbage.size);
  t.is(dry.collected.bytes, dry.blocks!.reduce((sum, block) => sum + block.bytes, 0));
  t.deepEqual([...(await blockFiles(home))].sort(), [...before].sort(), 'a dry run deletes nothing');
  const text = await ok(home, ['gc', '--dry-run']);
  t.regex(text, new RegExp(`would collect ${garbage.size} blocks .*nothing deleted \\(dry run\\)$`));

  const report = JSON.parse(await ok(home, ['gc', '--json'])) as GcReport;
  t.is(report.collected.blocks, garbage.size);
  t.deepEqual(report.damaged, []);
  t.is(report.kept.blocks, before.size - garbage.size);
  t.deepEqual(report.collected.byKind.closure?.blocks, 2);
  t.deepEqual(report.collected.byKind.delegation?.blocks, 1);
  t.deepEqual(report.collected.byKind.module?.blocks, 3);
  const after = await blockFiles(home);
  t.deepEqual([...after].sort(), [...before].filter((cid) => !garbage.has(cid)).sort(), 'the garbage is gone, nothing else');

  const works = async (hitsBefore: number) => {
    t.is(await ok(home, ['call', greet, '"x"']), '"hi, x"');
    t.is(await ok(home, ['call', asText, '"y"']), JSON.stringify(`${textBlob}, y`));
    t.is(await ok(home, ['call', delegated, '"z"']), '"hi, z"');
    t.is(await ok(home, ['call', echo, link(cachedBlob)]), echoed);
    t.is(await hitsOn(home, echo), hitsBefore + 1, 'the cached answer answered');
    t.is(await ok(home, ['doc', 'show', 'todos']), value);
    t.is(await ok(home, ['doc', 'log', 'todos']), log);
    t.true((await ok(home, ['inspect', cachedBlob])).includes('a cached answer names me'));
    const revoked = await grid(home, ['call', revokedClosure, '"w"']);
    t.is(revoked.code, 3);
    t.regex(revoked.stderr, /revoked by issuer/);
  };
  await works(1);
  // A restart that rebuilds the kernel from the whole journal (no database, no snapshot) needs no block that went.
  await rm(homePaths(home).db, { recursive: true, force: true });
  await works(2);
  // Nothing more to collect: what the calls since wrote is referenced, or young.
  await ageBlocks(home);
  const again = JSON.parse(await ok(home, ['gc', '--json'])) as GcReport;
  t.is(again.collected.blocks, 0);
});

test('modules: young ones and named ones stay, as do modules a kept module imports by CID; old unused ones go', async (t) => {
  t.timeout(120_000);
  const dir = await tempDir(t);
  const home = join(dir, 'home');
  await ok(home, ['init']);
  const lib = await ok(home, ['publish', 'examples/hello.js']);
  const main = join(dir, 'main.js');
  await writeFile(main, `import { greet } from '${lib}';\nexport const run = (ctx, name) => greet(ctx, name);\n`);
  const token = await ok(home, ['issue', main, '--export', 'run', '--env', '{"greeting":"yo"}']);
  const named = await ok(home, ['publish', 'examples/later.js', '--name', 'keepme']);
  const old = await ok(home, ['publish', 'examples/relay.js']);
  await ageBlocks(home);
  const young = await ok(home, ['publish', 'examples/guard.js']);
  const analyses = join(homePaths(home).root, 'analyses');
  const analyzed = async () => new Set((await readdir(analyses)).length ? (await readdir(join(analyses, (await readdir(analyses))[0]!))) : []);
  t.true((await analyzed()).has(old));

  const report = JSON.parse(await ok(home, ['gc', '--json'])) as GcReport;
  t.is(report.collected.blocks, 1);
  const left = await blockFiles(home);
  t.false(left.has(old));
  for (const kept of [lib, named, young]) t.true(left.has(kept), kept);
  t.false((await analyzed()).has(old), "the collected module's analysis goes with it");
  t.is(await ok(home, ['call', token, '"a"']), '"yo, a"');
  // --keep-modules 0: a module nothing uses goes however young; one a closure or a name uses stays.
  const zero = JSON.parse(await ok(home, ['gc', '--keep-modules', '0', '--json'])) as GcReport;
  t.is(zero.collected.blocks, 1);
  t.false((await blockFiles(home)).has(young));
  t.true((await blockFiles(home)).has(named));
  const bad = await grid(home, ['gc', '--keep-modules', 'soon']);
  t.is(bad.code, 1);
  t.is(bad.stderr, `grid: --keep-modules takes a duration such as 30s, 10m, 2h or 7d (got "soon")`);
});

test('a running node is refused in one line, and nothing is deleted', async (t) => {
  t.timeout(120_000);
  const home = join(await tempDir(t), 'home');
  await ok(home, ['init']);
  await putData(home, { junk: true });
  await ageBlocks(home);
  const before = await blockFiles(home);
  const node = await startNode(t, home);
  const refused = await grid(home, ['gc']);
  t.is(refused.code, 1);
  t.is(refused.stderr.split('\n').length, 1);
  t.regex(refused.stderr, /^grid: a node is running on this home \(ws:\/\/127\.0\.0\.1:\d+, pid \d+\); stop it, then collect/);
  const json = await grid(home, ['gc', '--json']);
  t.is(JSON.parse(json.stdout).code, 'ERR_NODE_RUNNING');
  t.deepEqual([...(await blockFiles(home))].sort(), [...before].sort());
  await node.stop();
  t.is(JSON.parse(await ok(home, ['gc', '--json'])).collected.blocks, 1);
});

test('the home is held while collecting: another process waits; a block written or put again meanwhile stays', async (t) => {
  t.timeout(120_000);
  const home = join(await tempDir(t), 'home');
  await ok(home, ['init']);
  const doomed = await putData(home, { junk: 'doomed' });
  const rewritten = await putData(home, { junk: 'put again while collecting' });
  await ageBlocks(home);
  let written = '';
  let other: Awaited<ReturnType<typeof grid>> | undefined;
  const report = await collectGarbage({
    home,
    afterMark: async () => {
      // Another command on the home cannot get in while the collector holds it.
      other = await gridProcesses({ GRID_LOCK_WAIT_MS: '300' }).grid(home, ['publish', 'examples/hello.js']);
      // A writer that ignored the lock: a new block, and a garbage block put again (about to be named).
      written = await putData(home, { junk: 'new while collecting' });
      await putData(home, { junk: 'put again while collecting' });
    },
  });
  t.is(other?.code, 1);
  t.regex(other!.stderr, /is in use by process \d+/);
  const left = await blockFiles(home);
  t.false(left.has(doomed));
  t.true(left.has(written));
  t.true(left.has(rewritten));
  t.is(report.fresh, 1);
  t.is(report.collected.blocks, 1);
});

test('damaged blocks and foreign files are reported and left in place; a damaged block in use stops the collection', async (t) => {
  t.timeout(120_000);
  const home = join(await tempDir(t), 'home');
  await ok(home, ['init']);
  const token = await ok(home, ['issue', 'examples/hello.js', '--export', 'greet', '--env', '{"greeting":"hi"}']);
  const junk = await putData(home, { junk: 1 });
  const rotten = await putData(home, { junk: 2 });
  const dir = homePaths(home).blocks;
  await writeFile(blockPath(dir, CID.parse(rotten)), 'not what it hashed to');
  await writeFile(join(dir, 'README'), 'not a block');
  await writeFile(join(dir, junk.slice(-3, -1), 'stray-file'), 'not a block');
  await ageBlocks(home);
  const result = await grid(home, ['gc']);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stderr, /^grid gc: block \S+ left in place: block \S+ on disk does not match its hash \(tampered or truncated\)$/);
  t.true(result.stderr.includes(rotten));
  t.regex(result.stdout, /^collected 1 block /);
  let left = await blockFiles(home);
  t.false(left.has(junk));
  t.true(left.has(rotten));
  t.true(left.has('stray-file'));

  // The closure rots: what it names (its module) cannot be known, so nothing goes, and the command says why.
  const junk2 = await putData(home, { junk: 3 });
  await writeFile(blockPath(dir, CID.parse(token)), 'rotten closure');
  await ageBlocks(home);
  const stopped = await grid(home, ['gc']);
  t.is(stopped.code, 1);
  const lines = stopped.stderr.split('\n');
  t.is(lines.length, 3, stopped.stderr);
  t.true(lines.some((line) => line.startsWith(`grid gc: block ${token}, in use, left in place: `)));
  t.regex(lines[2]!, /^grid gc: collected nothing: 1 block in use is damaged, and what it names is unknown; put it back/);
  left = await blockFiles(home);
  t.true(left.has(junk2));
  t.true(left.has(token));
  const report = await collectGarbage({ home });
  t.is(report.foreign, 2);
  t.deepEqual(report.damaged.map((block) => [block.cid, block.inUse]).sort(), [[rotten, false], [token, true]].sort());
  t.is(report.collected.blocks, 0);
});

test('a delegation in force keeps the closure it wraps, even revoked (a call through it still says why); revoked, both go', async (t) => {
  t.timeout(120_000);
  const home = join(await tempDir(t), 'home');
  let kernel = await openKernel({ home });
  const code = await kernel.publish(ECHO);
  const inner = await kernel.issue({ code, export: 'echo', env: { note: 'inner' } });
  const outer = await kernel.delegate({ token: inner, to: [kernel.principal] });
  await kernel.revoke(inner);
  await kernel.close();
  await ageBlocks(home);
  t.is((await collectGarbage({ home })).collected.blocks, 0);
  kernel = await openKernel({ home });
  const through = await kernel.call(outer, [1]);
  t.like(through, { status: 'revoked', code: 'token-revoked' });
  await kernel.revoke(outer);
  await kernel.close();
  const report = await collectGarbage({ home });
  t.deepEqual(Object.fromEntries(Object.entries(report.collected.byKind).map(([kind, tally]) => [kind, tally.blocks])), { closure: 1, delegation: 1, module: 1 });
  // Revoking again what is revoked and collected is the no-op it was before.
  kernel = await openKernel({ home });
  t.teardown(() => kernel.close());
  await t.notThrowsAsync(kernel.revoke(outer));
  await t.notThrowsAsync(kernel.revoke(inner));
  t.like(await kernel.call(inner, [1]), { status: 'revoked', code: 'token-revoked' });
});

test('a replica adopted from a peer is kept until its revocation is heard; a block only extraRoots names is kept', async (t) => {
  t.timeout(120_000);
  const home = join(await tempDir(t), 'home');
  const peer = await openKernel({ memory: true });
  t.teardown(() => peer.close());
  const code = await peer.publish(ECHO);
  const token = await peer.issue({ code, export: 'echo', env: {}, replicable: true });
  let kernel = await openKernel({ home });
  const replica = await peer.replica(token, kernel.principal);
  await kernel.adopt(token as never, replica);
  const pinned = (await openFsBlockStore(homePaths(home).blocks).put(encode({ pinned: 'by a checkpoint' }), { codec: DAG_CBOR_CODEC })).toString();
  await kernel.close();
  await ageBlocks(home);
  const first = await collectGarbage({ home, extraRoots: async () => [pinned] });
  t.is(first.collected.blocks, 0, JSON.stringify(first));
  kernel = await openKernel({ home });
  t.deepEqual(await kernel.call(token, [5]), { status: 'fulfilled', value: { got: 5 } });
  await peer.revoke(token);
  t.true(await kernel.hearRevocation((await peer.revocationNotice(token))!, peer.principal));
  await kernel.close();
  await ageBlocks(home);
  const second = await collectGarbage({ home });
  t.deepEqual(second.collected.byKind, { closure: { blocks: 1, bytes: replica.closure.length }, data: { blocks: 1, bytes: second.collected.byKind.data!.bytes }, module: { blocks: 1, bytes: replica.modules[0]!.length } });
  t.false((await blockFiles(home)).has(token));
});

test('namedIn finds links and CID text anywhere, and nothing in bytes that hold none', (t) => {
  const a = CID.parse('bafyreie3dmg4fbpbmubjoejjblb3khqk56sw7t2vaywbrjrpnwjzrg7taq');
  const b = CID.parse('bafkreidcv5wd2v5hfxrlwqiur3wilazyo3nmr3aptdbpkhmzirzqnhhqmy');
  const c = CID.parse('bafyreifq4x7ylidr3ni35wywmy4qltfuoqscvwauv6ukgzvjgqtvioubtq');
  const sorted = (names: Set<string>) => [...names].sort();
  t.deepEqual(sorted(namedIn(encode({ x: [1, { y: a }], z: new Uint8Array(3), s: `see ${b}`, k: c.toString() }))), [a, b, c].map(String).sort());
  // A CID string run into by a letter (a CBOR head that reads as one) is still found.
  t.deepEqual(sorted(namedIn(new TextEncoder().encode(`xx${a}abc import '${b}'`))), [a, b].map(String).sort());
  t.deepEqual(sorted(namedIn(encode({ nothing: 'here', baf: 'bafy is not a cid', n: [1, 2, 3] }))), []);
  for (let i = 0; i < 2000; i++) namedIn(new Uint8Array(randomBytes(1 + (i % 300))));
  t.pass();
});

test('a block larger than the store serves (a checkpoint snapshot) is kept while named, not read, and collected when not', async (t) => {
  t.timeout(120_000);
  const home = join(await tempDir(t), 'home');
  await (await openKernel({ home })).close();
  const big = openFsBlockStore(homePaths(home).blocks, { maxBlockBytes: 2 ** 31 - 1 });
  const size = 64 * 1024 * 1024 + 1;
  const named = (await big.put(new Uint8Array(size).fill(1), { codec: DAG_CBOR_CODEC })).toString();
  const unnamed = (await big.put(new Uint8Array(size).fill(2), { codec: DAG_CBOR_CODEC })).toString();
  await ageBlocks(home);
  const report = await collectGarbage({ home, extraRoots: async () => [CID.parse(named)] });
  t.deepEqual(report.damaged, []);
  t.deepEqual(report.collected, { blocks: 1, bytes: size, byKind: { other: { blocks: 1, bytes: size } } });
  t.is(report.kept.bytes, size);
  const left = await blockFiles(home);
  t.true(left.has(named));
  t.false(left.has(unnamed));
});
