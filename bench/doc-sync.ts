/**
 * Sync of a document between two nodes over loopback WebSockets (issue:
 * ≥ 5,000 versions/s): Alice's node holds 10,000 versions; Bob's node, its
 * peer, follows a read token delegated to it and pulls them all (bundles of
 * at most 2,000 versions, each version checked: signature, authority,
 * replay through the reducer). Timed from `follow` until Bob's heads are
 * Alice's; a fresh Bob each run, the median of RUNS. Baseline: the same
 * versions taken in by an in-process kernel from Alice's bundles directly
 * (no sockets, no sessions).
 */
import { randomBytes } from 'node:crypto';
import { openKernel, type Kernel } from '../dist/index.js';
import { startNode } from '../dist/net/node.js';
import { generateIdentity } from '../dist/identity/index.js';
import { row, type Row } from './measure.js';

const VERSIONS = 10_000;
const RUNS = 3;
const COUNTER = `
export const update = (ctx, state, change) => {
  if (!Number.isSafeInteger(change?.add)) ctx.revoke('a change is { add: n }');
  return { n: state.n + change.add, last: change.add };
};`;

const random = (n: number) => new Uint8Array(randomBytes(n));
const ok = (outcome: { status: string }) => {
  if (outcome.status !== 'fulfilled') throw new Error(`expected a value: ${JSON.stringify(outcome)}`);
  return outcome;
};
const headsOf = (kernel: Kernel, doc: string) => JSON.stringify(kernel.docs.held().find((held) => held.doc === doc)?.heads ?? []);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

export const benchDocSync = async (): Promise<Row[]> => {
  const aliceId = generateIdentity(random);
  const alice = await startNode((forward) => openKernel({ memory: true, identity: aliceId, forward, limits: { vats: 1 } }), { identity: aliceId, random });
  try {
    const code = await alice.kernel.publish(COUNTER);
    const reducer = await alice.kernel.issue({ code, export: 'update', replicable: true });
    const doc = await alice.kernel.docs.create({ reducer, init: { n: 0, last: 0 } });
    for (let i = 0; i < VERSIONS; i++) ok(await alice.kernel.docs.apply(doc.write, { add: 1 }));
    const target = headsOf(alice.kernel, doc.doc);

    const overNetwork: number[] = [];
    const inProcess: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      // Over the network: a fresh Bob's node dials Alice's and follows.
      const bobId = generateIdentity(random);
      const bob = await startNode((forward) => openKernel({ memory: true, identity: bobId, forward, limits: { vats: 1 } }), { identity: bobId, random, peers: [alice.server.url] });
      try {
        const token = await alice.kernel.delegate({ token: doc.read, to: [bobId.principal] });
        await bob.kernel.importChain(token, (await alice.kernel.chainBlocks(token))!);
        while (!bob.peers.state().every((peer) => peer.connected)) await new Promise((resolve) => setTimeout(resolve, 5));
        const start = process.hrtime.bigint();
        await bob.kernel.docs.follow(token);
        while (headsOf(bob.kernel, doc.doc) !== target) await new Promise((resolve) => setTimeout(resolve, 2));
        overNetwork.push(Number(process.hrtime.bigint() - start));
      } finally {
        await bob.close();
      }
      // In process: the same bundles handed over directly.
      const carol = await openKernel({ memory: true, limits: { vats: 1 } });
      try {
        await carol.adopt(reducer, await alice.kernel.replica(reducer, carol.principal));
        const start = process.hrtime.bigint();
        for (;;) {
          const have = carol.docs.held().find((held) => held.doc === doc.doc)?.heads ?? [];
          const bundle = await alice.kernel.docs.bundle(doc.doc, have);
          await carol.docs.ingest(bundle, alice.kernel.principal);
          if (!bundle.more) break;
        }
        inProcess.push(Number(process.hrtime.bigint() - start));
        if (headsOf(carol, doc.doc) !== target) throw new Error('the in-process copy did not reach the heads');
      } finally {
        await carol.close();
      }
    }
    const baseline = { name: 'in-process bundle + ingest (per version)', median_ns: median(inProcess) / VERSIONS };
    return [row(baseline.name, baseline.median_ns), row(`sync ${VERSIONS} versions, 2 nodes, loopback (per version)`, median(overNetwork) / VERSIONS, baseline)];
  } finally {
    await alice.close();
  }
};
