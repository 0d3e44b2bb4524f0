/**
 * Makes a home (argv[2], created) holding a budget document with a conflict
 * no merge settles: its issuer and a writer it delegated to set the total
 * apart, and the writer's version came back. The issuer also named a line
 * argv[3] (a test passes markup, which a page must show as text). Prints
 * `{ doc }` as JSON.
 * Run as a child process (the web tests drive a browser, which does not
 * belong under lockdown).
 */
import '../src/perimeter/lockdown.js';
import { randomBytes } from 'node:crypto';
import { openKernel } from '../src/index.js';
import { generateIdentity } from '../src/identity/identity.js';
import { source, valueOf } from './_helpers.js';

const [home, line] = process.argv.slice(2) as [string, string];
const alice = await openKernel({ home, create: true });
const bob = await openKernel({ memory: true, identity: generateIdentity((n) => new Uint8Array(randomBytes(n))) });
const reducer = await alice.issue({ code: await alice.publish(await source('examples/budget.js')), export: 'update', replicable: true });
const doc = await alice.docs.create({ reducer, merges: ['json'], init: { total: 100, lines: {} } });
for (const token of await alice.docs.closuresOf(doc.doc)) await bob.adopt(token as never, await alice.replica(token, bob.principal));
await bob.docs.ingest(await alice.docs.bundle(doc.doc, []), alice.principal);
const bobWrite = await alice.delegate({ token: doc.write, to: [bob.principal] });
await bob.importChain(bobWrite, (await alice.chainBlocks(bobWrite))!);
valueOf(await alice.docs.apply(doc.write, { line, amount: 5 }));
valueOf(await alice.docs.apply(doc.write, { set: 120 }));
valueOf(await bob.docs.apply(bobWrite, { set: 90 }));
await alice.docs.ingest(await bob.docs.bundle(doc.doc, alice.docs.held()[0]!.heads), bob.principal);
if (alice.docs.allConflicts().length !== 1) throw new Error('expected one conflict');
await bob.close();
await alice.close();
process.stdout.write(`${JSON.stringify({ doc: doc.doc })}\n`);
