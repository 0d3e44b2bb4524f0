import '../src/perimeter/lockdown.js';
import test from 'ava';
import { openKernel, type Kernel } from '../src/index.js';
import { entriesAround, renderDot, renderMermaid, renderText } from '../src/journal/graph.js';
import { reputation } from '../src/journal/reputation.js';
import { journalEntries } from './_helpers.js';

const setup = async () => {
  const kernel = await openKernel({ memory: true });
  const code = await kernel.publish(`
    export const greet = (ctx, name) => 'hi ' + name;
    export const relay = (ctx, x) => ctx.call(ctx.env.target, x);
    export const order = (ctx) => ctx.issue({ export: 'greet' });
    export const fail = (ctx) => ctx.revoke('no');`);
  const greet = await kernel.issue({ code, export: 'greet' });
  const relay = await kernel.issue({ code, export: 'relay', env: { target: { '/': greet } } });
  const order = await kernel.issue({ code, export: 'order' });
  const fail = await kernel.issue({ code, export: 'fail' });
  return { kernel, greet, relay, order, fail };
};

const kindsOf = async (kernel: Kernel, token: string) => entriesAround((await journalEntries(kernel.journal)), token as never).map((e) => e.kind);

test('entriesAround follows nested calls and further promises', async (t) => {
  const { kernel, greet, relay, order } = await setup();
  t.teardown(() => kernel.close());
  await kernel.call(relay, ['a']);
  await kernel.call(greet, ['b']);
  const promisedOutcome = await kernel.call(order, []);
  t.is(promisedOutcome.status, 'promised');
  await kernel.call((promisedOutcome as { token: string }).token, ['c']);
  // relay: its issue, its call, the nested call on greet and both outcomes — not the direct call on greet.
  t.deepEqual(await kindsOf(kernel, relay), ['issue', 'call', 'call', 'fulfilled', 'fulfilled']);
  // order: its issue, its call, its further promise, and the call on the promised token.
  t.deepEqual(await kindsOf(kernel, order), ['issue', 'call', 'promised', 'call', 'fulfilled']);
});

test('reputation counts kept, broken and pending promises per issuer', async (t) => {
  const { kernel, greet, fail, order } = await setup();
  t.teardown(() => kernel.close());
  // Calls by someone else: the issuer's own calls count for nothing (see reputation.test.ts).
  const other = { caller: (await openKernel({ memory: true }).then(async (k) => (await k.close(), k.principal))) };
  await kernel.call(greet, ['a'], other);
  await kernel.call(greet, ['a'], other); // a cache hit is a kept promise too
  await kernel.call(fail, [], other); // the closure's refusal: kept, weighed neither way
  await kernel.call(order, [], other); // a further promise nobody has called yet: pending
  await kernel.revoke(greet);
  t.deepEqual(reputation((await journalEntries(kernel.journal))), [
    { issuer: kernel.principal, issued: 5, fulfilled: 2, broken: 1, refused: 1, pending: 1 },
  ]);
});

test('renderings name every kind of record', async (t) => {
  const { kernel, greet, fail, order } = await setup();
  t.teardown(() => kernel.close());
  await kernel.call(greet, ['a']);
  await kernel.call(greet, ['a']);
  await kernel.call(fail, []);
  await kernel.call(order, [], { follow: true });
  await kernel.revoke(greet, 'done');
  await kernel.flush();
  const text = renderText((await journalEntries(kernel.journal)));
  for (const pattern of [/ issue +bafy/, /answered from cache/, /-> revoked: no \[refused\]/, /-> further promise/, / revoke +bafy.*: done/, /\(journal of \d+ records, signed through #\d+ by did:key/]) {
    t.regex(text, pattern);
  }
  const dot = renderDot((await journalEntries(kernel.journal)), (id) => id);
  t.regex(dot, new RegExp(`"${kernel.principal}" -> "${greet}" \\[label="issued"`));
  t.regex(dot, /label="cache hit"/);
  t.regex(dot, /label="further promise"/);
  t.regex(dot, /label="revoked", style=bold, color=red/);
  t.regex(dot, new RegExp(`"${greet}" \\[label="${greet}", shape=box, color=red\\]`), 'a revoked token is red, wherever it was first seen');
  const mermaid = renderMermaid((await journalEntries(kernel.journal)), (id) => (id === greet ? 'greet "hi"' : id));
  t.regex(mermaid, /^flowchart LR\n/);
  t.regex(mermaid, /\n {2}n\d+\(\["did:key:[^"]+"\]\)\n/, 'principals are stadium-shaped');
  t.regex(mermaid, /\n {2}(n\d+)\["greet #quot;hi#quot;"\]\n[\s\S]*\n {2}n\d+ -->\|"issued"\| \1\n/, 'labels are quoted, edges labelled');
  t.regex(mermaid, /-\.->\|"cache hit"\|/);
  t.regex(mermaid, /==>\|"revoked"\|/);
  t.regex(mermaid, /\n {2}style n\d+ stroke:#c00/);
});

test('delegations are in the graph: wraps, audited layers, the chain of a token and its reputation', async (t) => {
  const { kernel, greet } = await setup();
  const bob = await openKernel({ memory: true });
  t.teardown(async () => {
    await kernel.close();
    await bob.close();
  });
  const toBob = await kernel.delegate({ token: greet, to: [bob.principal], policies: [{ module: 'audit' }] });
  const toSelf = await kernel.delegate({ token: toBob, to: [kernel.principal] }).catch((error: Error) => error.message);
  t.regex(String(toSelf), /not to did:key/, 'only the audience of a delegation may delegate it further');
  t.is((await kernel.call(toBob, ['bob'], { caller: bob.principal })).status, 'fulfilled');
  await kernel.revoke(toBob, 'enough');
  const entries = (await journalEntries(kernel.journal));
  const text = renderText(entries);
  t.regex(text, new RegExp(`wrap +${toBob.slice(0, 10)}.* = ${greet.slice(0, 10)}.* delegated by did:key.* to did:key.*\\(policies bafk`));
  t.regex(text, /screened +#\d+ passed audited layer bafy.*, called there by did:key/);
  t.deepEqual(
    entriesAround(entries, greet).filter((e) => e.kind === 'wrap').map((e) => (e as { token: string }).token),
    [toBob],
    'the graph of a token shows who it was delegated to',
  );
  t.deepEqual(
    entriesAround(entries, toBob).map((e) => e.kind).filter((kind) => kind !== 'call' && kind !== 'fulfilled'),
    ['wrap', 'screened', 'revoke'],
    'and the graph of a delegation shows its chain, its audited calls and its revocation',
  );
  const dot = renderDot(entries, (id) => id);
  t.regex(dot, new RegExp(`"${toBob}" -> "${greet}" \\[label="screens"`));
  t.regex(dot, new RegExp(`"${toBob}" -> "${bob.principal}" \\[label="held by"`));
  // A delegation is its delegator's promise: issued, broken when revoked; the call through it counts for the closure.
  t.deepEqual(kernel.reputation(), [{ issuer: kernel.principal, issued: 5, fulfilled: 1, broken: 1, refused: 0, pending: 0 }]);
  t.deepEqual(kernel.reputation(), reputation(entries), 'the tally kept as records are written agrees with a pass over the journal');
});

test("a settled conflict's edge ends at a node: the settling version is drawn", async (t) => {
  const { pictureOf } = await import('../src/journal/graph.js');
  const [doc, conflict, version] = ['bafyreidoc', 'bafyreiconflict', 'bafyreiversion'];
  const picture = pictureOf([
    { kind: 'doc-conflict', doc, conflict, heads: ['bafyreia', 'bafyreib'], attempts: [] },
    { kind: 'doc-settled', conflict, version },
  ] as never);
  for (const edge of picture.edges) t.true(picture.nodes.has(edge.from) && picture.nodes.has(edge.to), `${edge.label}: ${edge.from} → ${edge.to}`);
  t.true(picture.edges.some((edge) => edge.label === 'settled by' && edge.to === version));
});
