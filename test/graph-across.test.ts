/**
 * The promise graph across machines, the way a person audits it: Carol's
 * call went through Bob's node to Alice's; `grid graph TOKEN --from …` on
 * Carol's home merges both nodes' records, each checked against its node's
 * signature and hash links. A node that serves a tampered record has it
 * flagged, never merged.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { tempDir } from './_helpers.js';
import { gridProcesses } from './_processes.js';
import { openKernel, type Principal } from '../src/index.js';
import { generateIdentity } from '../src/identity/index.js';
import { acceptSession } from '../src/net/session.js';

const { grid, ok, startNode } = gridProcesses();
const random = (n: number) => new Uint8Array(randomBytes(n));

test('records from two nodes merge into one verified view of a forwarded call', async (t) => {
  t.timeout(120_000);
  const [alice, bob, carol, modules] = await Promise.all([tempDir(t), tempDir(t), tempDir(t), tempDir(t)]);
  await Promise.all([ok(alice, ['init']), ok(bob, ['init']), ok(carol, ['init'])]);
  const file = join(modules, 'square.js');
  await writeFile(file, 'export const square = (ctx, x) => x * x;\n');
  const square = await ok(alice, ['issue', file, '--export', 'square']);
  const a = await startNode(t, alice);
  const b = await startNode(t, bob, ['--peer', a.url]);
  t.is(await ok(carol, ['call', `grid://${square}?via=${encodeURIComponent(b.url)}`, '7']), '49');

  const text = await ok(carol, ['graph', square, '--from', a.url, '--from', b.url]);
  t.log(text);
  t.regex(text, /across 3 nodes/);
  t.regex(text, new RegExp(`on ${a.principal.slice(0, 10)}\\S* \\(${a.url.replace(/[/.]/g, '\\$&')}\\): \\d+ records verified\\n`));
  t.regex(text, new RegExp(`on ${b.principal.slice(0, 10)}\\S* \\(${b.url.replace(/[/.]/g, '\\$&')}\\): \\d+ records verified\\n`));
  t.regex(text, /issued by/);
  t.regex(text, new RegExp(`→ fulfilled \\(answered by ${a.principal.slice(0, 10)}`), "Bob's node forwarded the call to Alice's");
  t.notRegex(text, /✗/);

  const json = JSON.parse(await ok(carol, ['graph', square, '--from', a.url, '--from', b.url, '--json']));
  const byNode = new Map<string, { entries: Array<{ kind: string; caller?: string; to?: string }>; flagged: unknown[] }>(
    json.nodes.map((n: { verified: { node: string } }) => [n.verified.node, n.verified]),
  );
  const onA = byNode.get(a.principal)!;
  const onB = byNode.get(b.principal)!;
  t.deepEqual([onA.flagged, onB.flagged], [[], []]);
  t.true(onA.entries.some((e) => e.kind === 'issue'));
  t.true(onA.entries.some((e) => e.kind === 'call' && e.caller === b.principal), "Alice's node saw Bob's node call");
  t.true(onB.entries.some((e) => e.kind === 'forwarded' && e.to === a.principal));

  // Without a TOKEN there is nothing a node would show.
  const bare = await grid(carol, ['graph', '--from', a.url]);
  t.is(bare.code, 1);
  t.regex(bare.stderr, /need a TOKEN/);
  const gone = await grid(carol, ['graph', square, '--from', 'ws://127.0.0.1:9']);
  t.is(gone.code, 4, 'a node that cannot be reached');
  t.regex(gone.stdout, /✗ ws:\/\/127\.0\.0\.1:9: cannot reach/);
  await Promise.all([a.stop(), b.stop()]);
});

test('a tampered record from a peer is flagged, not merged', async (t) => {
  t.timeout(60_000);
  const carol = await tempDir(t);
  const carolPrincipal = (await ok(carol, ['init'])) as Principal;

  // A node that answers records requests with one record changed after it signed them.
  const identity = generateIdentity(random);
  const kernel = await openKernel({ memory: true, identity, limits: { vats: 1 } });
  t.teardown(() => kernel.close());
  const add = await kernel.issue({ code: await kernel.publish('export const add = (ctx, a, b) => a + b;'), export: 'add' });
  await kernel.call(add, [2, 3], { caller: carolPrincipal });
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => server.once('listening', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  server.on('connection', (socket) => {
    void acceptSession(socket, {
      identity,
      random,
      offer: (peer) => ({
        handlers: {
          records: async (token) => {
            const honest = await kernel.disclose(token, peer);
            const records = honest.records.map((bytes) => bytes.slice());
            records[1]![records[1]!.length - 1]! ^= 0x01;
            return { ...honest, records };
          },
        },
      }),
    }).catch(() => {});
  });
  const url = `ws://127.0.0.1:${(server.address() as { port: number }).port}`;

  const result = await grid(carol, ['graph', add, '--from', url]);
  t.log(result.stdout);
  t.is(result.code, 3, 'a failed verification is not a clean answer');
  t.regex(result.stdout, /\d+ records? verified, \d+ failed/);
  t.regex(result.stdout, /✗ record at position 1 fails verification, not merged: its bytes do not hash to the CID the node signed/);
  t.regex(result.stdout, /issued by/, 'the records that verify are still shown');
});
