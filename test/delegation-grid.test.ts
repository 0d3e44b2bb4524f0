/**
 * Delegation across real `grid` processes, driven through the CLI the way
 * people would: only Alice runs a node (she holds the closure); Bob, Carol,
 * Mallory have homes and no node. Alice delegates to Bob, Bob delegates the
 * grid URL further to Carol while his own node is not running at all, and
 * Carol's calls reach Alice carrying the chain. Policies hold across layers
 * (Carol cannot exceed Bob's limits), refusals name the layer, a forged or
 * corrupted chain is refused in one line while the node keeps serving,
 * revocations by each delegator hold — also after Alice's node crashes and is
 * started again on the same URL.
 */
import test, { type ExecutionContext } from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decode, encode } from '../src/wire/index.js';
import { blockCid } from '../src/store/hashing.js';
import { tempDir } from './_helpers.js';
import { eventually, freePort, gridProcesses, type Result } from './_processes.js';

// Bob's home is opened by concurrent commands: each waits its turn for the lock.
const { grid, ok, startNode } = gridProcesses({ GRID_LOCK_WAIT_MS: '30000' });
const DAG_CBOR = 0x71;

/** How `grid graph` prints a token or principal that has no pet name. */
const short = (id: string) => (id.length > 24 ? `${id.slice(0, 10)}…${id.slice(-6)}` : id);
/** How a layer names itself in a refusal. */
const layer = (token: string) => `delegation ${token.slice(0, 12)}…`;
/** How chain checks name a link. */
const link = (token: string) => `${token.slice(0, 12)}…${token.slice(-6)}`;
const tokenOf = (url: string) => new URL(url).hostname;
const chainOf = (url: string) => new URL(url).searchParams.get('chain')!;

/** A refusal: exit 3 and one line `revoked: …` on stderr. */
const refused = (t: ExecutionContext, result: Result, reason: RegExp, what: string) => {
  t.is(result.code, 3, `${what}: exit ${result.code}, stdout ${result.stdout}, stderr ${result.stderr}`);
  t.regex(result.stderr, /^revoked: [^\n]+$/, `${what}: one line`);
  t.regex(result.stderr, reason, what);
};

const fulfilled = (t: ExecutionContext, result: Result, value: string, what: string) => {
  t.is(result.code, 0, `${what}: ${result.stderr}`);
  t.is(result.stdout, value, what);
};

/** The same URL with one character in the middle of its `chain` parameter changed. */
const corrupted = (url: string) => {
  const chain = chainOf(url);
  const middle = Math.floor(chain.length / 2);
  const changed = chain.slice(0, middle) + (chain[middle] === 'A' ? 'B' : 'A') + chain.slice(middle + 1);
  return url.replace(chain, changed);
};

/**
 * A forgery: the outermost record of `url`'s chain with `audience` put in it,
 * its signature kept. The result is a well-formed chain for a new token (the
 * record's hash); only the delegator's signature gives it away.
 */
const forged = (url: string, audience: string[]) => {
  const [links, modules] = decode(Buffer.from(chainOf(url), 'base64url')) as [Uint8Array[], Uint8Array[]];
  const record = { ...(decode(links[0]!) as Record<string, unknown>), audience };
  const bytes = encode(record);
  const token = blockCid(bytes, DAG_CBOR).toString();
  const chain = Buffer.from(encode([[bytes, ...links.slice(1)], modules])).toString('base64url');
  const via = new URL(url).searchParams.get('via')!;
  return { token, url: `grid://${token}?${new URLSearchParams({ via, chain })}` };
};

test.serial('Alice, Bob and Carol: delegation through grid URLs while only Alice runs a node', async (t) => {
  t.timeout(120_000);
  const [alice, bob, carol, mallory, modules] = await Promise.all([tempDir(t), tempDir(t), tempDir(t), tempDir(t), tempDir(t)]);
  const [pa, pb, pc, pm] = await Promise.all([ok(alice, ['init']), ok(bob, ['init']), ok(carol, ['init']), ok(mallory, ['init'])]);
  const addFile = join(modules, 'add.js');
  await writeFile(addFile, 'export const add = (ctx, a, b) => a + b;\n');
  const add = await ok(alice, ['issue', addFile, '--export', 'add', '--name', 'add']);

  const port = await freePort();
  const listen = ['--listen', `127.0.0.1:${port}`];
  let nodeA = await startNode(t, alice, listen);
  const via = nodeA.url;
  t.is(via, `ws://127.0.0.1:${port}`);

  // Alice, through her running node: to Bob with a rate limit (twice: one layer to exhaust, one to keep using), to Carol behind 2-of-3 approval.
  const [ab, abTight, approval] = await Promise.all([
    ok(alice, ['delegate', 'add', '--to', pb, '--rate', '20/min', '--expires', '2h']),
    ok(alice, ['delegate', add, '--to', pb, '--rate', '2/min']),
    ok(alice, ['delegate', 'add', '--to', pc, '--approvals', '2', '--approver', pa, '--approver', pb, '--approver', pm]),
  ]);
  for (const url of [ab, abTight, approval]) {
    t.regex(url, /^grid:\/\/bafy[a-z2-7]+\?via=[^&]+&chain=[A-Za-z0-9_-]+$/);
    t.is(new URL(url).searchParams.get('via'), via, 'calls go to the node that holds the closure');
  }

  // Bob has no node running: he delegates the URLs he was given, narrower, to Carol.
  const [bc, bcLater, bcTight] = await Promise.all([
    ok(bob, ['delegate', ab, '--to', pc, '--uses', '2', '--audit']),
    ok(bob, ['delegate', ab, '--to', pc, '--expires', '1h']),
    ok(bob, ['delegate', abTight, '--to', pc, '--uses', '10']),
  ]);
  for (const url of [bc, bcLater, bcTight]) {
    t.is(new URL(url).searchParams.get('via'), via, "a delegation of a URL goes where the URL's calls went");
    t.true(chainOf(url).length > chainOf(ab).length, 'the chain grew by Bob\'s link');
  }
  const bcToken = tokenOf(bc);

  const flipped = corrupted(bc);
  const forgery = forged(bc, [pm]);
  // Carol's call behind the approval layer waits; approvals go on while the other calls are made.
  const approvals = grid(carol, ['call', approval, '20', '22', '--no-follow']).then(async (promised) => {
    // The further promise lives on Alice's node: it is printed as a grid URL that leads there.
    t.regex(promised.stdout, /^promised: grid:\/\/bafy[a-z2-7]+\?via=\S+$/, `the approval layer makes the call wait: ${promised.stderr}`);
    const pending = new URL(promised.stdout.replace('promised: ', '')).hostname;
    const approve = async (home: string) => {
      const result = await grid(home, ['call', pending, '"approve"', '--via', via]);
      t.is(result.code, 0, `approve: ${result.stderr}`);
      return JSON.parse(result.stdout || 'null') as { approvedBy: string[]; status: string };
    };
    t.deepEqual(await approve(bob), { approvedBy: [pb], status: 'waiting' }, 'one approval of two');
    t.deepEqual(await approve(bob), { approvedBy: [pb], status: 'waiting' }, 'the same approver twice is still one approval');
    const second = await approve(mallory);
    t.is(second.status, 'fulfilled', 'two distinct approvers: the call proceeds');
    t.deepEqual([...second.approvedBy].sort(), [pb, pm].sort());
    fulfilled(t, await grid(carol, ['call', pending, '--via', via]), '42', 'Carol collects the answer');
  });
  const [carol1, carol2, bobTight, carolTight, carolOnBobs, malloryOnCarols, corrupt, forgedCall] = await Promise.all([
    grid(carol, ['call', bc, '2', '3']),
    grid(carol, ['call', bc, '20', '22']),
    grid(bob, ['call', abTight, '1', '1']),
    grid(carol, ['call', bcTight, '1', '2']),
    grid(carol, ['call', ab, '2', '3']),
    grid(mallory, ['call', bc, '2', '3']),
    grid(carol, ['call', flipped, '2', '3']),
    grid(mallory, ['call', forgery.url, '2', '3']),
  ]);
  fulfilled(t, carol1, '5', "Carol's first call through Bob's layer, Bob offline");
  fulfilled(t, carol2, '42', "Carol's second call");
  fulfilled(t, bobTight, '2', 'Bob uses his tight layer');
  fulfilled(t, carolTight, '3', 'Carol through the tight layer: 2 calls through it in all');
  refused(t, carolOnBobs, new RegExp(`^revoked: ${layer(tokenOf(ab))} is not delegated to ${pc}$`), "Carol calling Bob's URL");
  refused(t, malloryOnCarols, new RegExp(`^revoked: ${layer(bcToken)} is not delegated to ${pm}$`), 'Mallory calling the URL copied from Carol');
  // A corrupted chain may already fail to parse in the CLI (exit 1) or be refused by Alice's node (exit 3); either way one line.
  t.true(corrupt.code === 1 || corrupt.code === 3, `corrupted chain: exit ${corrupt.code}: ${corrupt.stderr}`);
  t.regex(corrupt.stderr, /^(revoked: delegation [^\n]+ is not valid: [^\n]+|grid: the grid URL's chain is not a delegation chain)$/, 'corrupted chain');
  refused(t, forgedCall, new RegExp(`^revoked: delegation ${forgery.token} is not valid: signature does not verify for delegator ${pb}$`), 'a forged audience');
  t.true(nodeA.isRunning(), "Alice's node survived the bad chains");

  const [carol3, carolTight2] = await Promise.all([grid(carol, ['call', bc, '1', '1']), grid(carol, ['call', bcTight, '3', '3']), approvals]);
  refused(t, carol3, new RegExp(`^revoked: ${layer(bcToken)}: quota of 2 calls used up$`), "Carol's third call: her quota");
  refused(t, carolTight2, new RegExp(`^revoked: ${layer(tokenOf(abTight))}: rate limit: at most 2 calls per min$`), "Carol's call, the 3rd in all through Bob's tight layer: Bob's limit, though hers allows 10");

  // Bob, still without a node, revokes his layer to Carol; his home tells Alice's node at once.
  t.is(await ok(bob, ['revoke', bc, '--reason', 'Carol moved on']), `revoked ${bcToken}; told ${via}`);
  const [carolRevoked, bobOwn, aliceOwn] = await Promise.all([grid(carol, ['call', bc, '1', '1']), grid(bob, ['call', ab, '2', '5']), grid(alice, ['call', 'add', '3', '4'])]);
  refused(t, carolRevoked, /^revoked: Carol moved on$/, "Carol's revoked layer");
  fulfilled(t, bobOwn, '7', "Bob's own URL still works (and the node kept serving after the bad chains)");
  fulfilled(t, aliceOwn, '7', "Alice's direct call");

  // Alice revokes Bob's layer: Bob, and Carol through Bob, are refused; Alice is not.
  t.is(await ok(alice, ['revoke', ab, '--reason', 'Bob left']), `revoked ${tokenOf(ab)}`);
  const afterAlice = async (alsoBobs: boolean) => {
    const [bobGone, carolThroughBob, aliceStill, carolBobRevoked] = await Promise.all([
      grid(bob, ['call', ab, '1', '1']),
      grid(carol, ['call', bcLater, '1', '1']),
      grid(alice, ['call', 'add', '5', '6']),
      alsoBobs ? grid(carol, ['call', bc, '1', '1']) : undefined,
    ]);
    refused(t, bobGone, /^revoked: Bob left$/, "Bob's revoked layer");
    refused(t, carolThroughBob, new RegExp(`^revoked: delegation link 2 of 2 \\(${link(tokenOf(ab))}\\) is revoked: Bob left$`), 'Carol through Bob');
    fulfilled(t, aliceStill, '11', 'Alice still calls add');
    if (carolBobRevoked) refused(t, carolBobRevoked, /^revoked: Carol moved on$/, "Carol's layer Bob revoked");
  };
  await afterAlice(false);

  // The promise graph around `add` on Alice's home: every wrap, the audited calls, both revocations.
  const graph = await eventually(
    () => ok(alice, ['graph', 'add']),
    (text) => / revoke /.test(text) && / revocation /.test(text),
    5000,
  );
  const wraps = graph.split('\n').filter((line) => / wrap /.test(line));
  const wrapOf = (token: string) => wraps.find((line) => line.includes(` ${short(token)} = `));
  t.regex(wrapOf(tokenOf(ab)) ?? '', new RegExp(`= add delegated by ${short(pa)} to ${short(pb)} \\(policies [^,]+, [^,]+\\)$`), 'Alice to Bob: expiry, rate');
  t.regex(wrapOf(tokenOf(abTight)) ?? '', new RegExp(`= add delegated by ${short(pa)} to ${short(pb)} \\(policies [^,]+\\)$`));
  t.regex(wrapOf(tokenOf(approval)) ?? '', new RegExp(`= add delegated by ${short(pa)} to ${short(pc)} \\(policies [^,]+\\)$`));
  t.regex(wrapOf(bcToken) ?? '', new RegExp(`= ${short(tokenOf(ab))} delegated by ${short(pb)} to ${short(pc)} \\(policies [^,]+, [^,]+\\)$`), 'Bob to Carol: rate, audit');
  t.regex(wrapOf(tokenOf(bcLater)) ?? '', new RegExp(`= ${short(tokenOf(ab))} delegated by ${short(pb)} to ${short(pc)} `));
  t.regex(wrapOf(tokenOf(bcTight)) ?? '', new RegExp(`= ${short(tokenOf(abTight))} delegated by ${short(pb)} to ${short(pc)} `));
  t.false(graph.includes(short(forgery.token)), 'the forgery left no wrap');
  const screened = graph.split('\n').filter((line) => / screened /.test(line));
  t.is(screened.length, 2, `Carol's two calls through the audited layer:\n${graph}`);
  for (const line of screened) t.true(line.endsWith(`passed audited layer ${short(bcToken)}, called there by ${short(pc)}`), line);
  t.true(graph.split('\n').some((line) => / revoke /.test(line) && line.includes(`${short(tokenOf(ab))} by ${short(pa)}: Bob left`)), 'Alice revoked her layer');
  t.true(graph.split('\n').some((line) => / revocation /.test(line) && line.includes(`${short(bcToken)} by ${short(pb)}`) && line.endsWith('Carol moved on')), "Bob's revocation, heard by Alice's node");

  // Alice's node crashes and comes back on the same URL: the journal says what was revoked.
  t.is(await nodeA.crash(), 'SIGKILL');
  nodeA = await startNode(t, alice, listen);
  t.is(nodeA.url, via);
  await afterAlice(true);
  t.is(await nodeA.stop(), 0, 'SIGTERM stops the node cleanly');
});

// A policy's state (uses counted, recent calls) is journaled, so a restart hands no delegate a fresh quota.
test.serial('a used-up quota stays used up when the node that screens it restarts', async (t) => {
  t.timeout(60_000);
  const [alice, bob, modules] = await Promise.all([tempDir(t), tempDir(t), tempDir(t)]);
  const [, pb] = await Promise.all([ok(alice, ['init']), ok(bob, ['init'])]);
  const addFile = join(modules, 'add.js');
  await writeFile(addFile, 'export const add = (ctx, a, b) => a + b;\n');
  const add = await ok(alice, ['issue', addFile, '--export', 'add']);
  const listen = ['--listen', `127.0.0.1:${await freePort()}`];
  let node = await startNode(t, alice, listen);
  const once = await ok(alice, ['delegate', add, '--to', pb, '--uses', '1']);
  fulfilled(t, await grid(bob, ['call', once, '1', '2']), '3', 'the one use');
  refused(t, await grid(bob, ['call', once, '1', '2']), /quota of 1 calls used up$/, 'no second use');
  // SIGTERM: a clean stop, the journal flushed; the quota must hold all the same.
  t.is(await node.stop(), 0);
  node = await startNode(t, alice, listen);
  refused(t, await grid(bob, ['call', once, '1', '2']), /quota of 1 calls used up$/, 'no second use after the restart');
  t.is(await node.stop(), 0);
});
