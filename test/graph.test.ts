import '../src/perimeter/lockdown.js';
import test from 'ava';
import { openKernel, type Kernel } from '../src/index.js';
import { entriesAround, renderDot, renderText, reputation } from '../src/journal/graph.js';

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

const kindsOf = (kernel: Kernel, token: string) => entriesAround(kernel.journal.entries(), token as never).map((e) => e.kind);

test('entriesAround follows nested calls and further promises', async (t) => {
  const { kernel, greet, relay, order } = await setup();
  t.teardown(() => kernel.close());
  await kernel.call(relay, ['a']);
  await kernel.call(greet, ['b']);
  const promisedOutcome = await kernel.call(order, []);
  t.is(promisedOutcome.status, 'promised');
  await kernel.call((promisedOutcome as { token: string }).token, ['c']);
  // relay: its issue, its call, the nested call on greet and both outcomes — not the direct call on greet.
  t.deepEqual(kindsOf(kernel, relay), ['issue', 'call', 'call', 'fulfilled', 'fulfilled']);
  // order: its issue, its call, its further promise, and the call on the promised token.
  t.deepEqual(kindsOf(kernel, order), ['issue', 'call', 'promised', 'call', 'fulfilled']);
});

test('reputation counts kept, broken and pending promises per issuer', async (t) => {
  const { kernel, greet, fail, order } = await setup();
  t.teardown(() => kernel.close());
  await kernel.call(greet, ['a']);
  await kernel.call(greet, ['a']); // a cache hit is a kept promise too
  await kernel.call(fail, []);
  await kernel.call(order, []); // a further promise nobody has called yet: pending
  await kernel.revoke(greet);
  t.deepEqual(reputation(kernel.journal.entries()), [
    { issuer: kernel.principal, issued: 5, fulfilled: 2, broken: 2, pending: 1 },
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
  const text = renderText(kernel.journal.entries());
  for (const pattern of [/ issue +bafy/, /answered from cache/, /-> revoked: no/, /-> further promise/, / revoke +bafy.*: done/, /\(journal of \d+ records, signed through #\d+ by did:key/]) {
    t.regex(text, pattern);
  }
  const dot = renderDot(kernel.journal.entries(), (id) => id);
  t.regex(dot, new RegExp(`"${kernel.principal}" -> "${greet}" \\[label="issued"`));
  t.regex(dot, /label="cache hit"/);
  t.regex(dot, /label="further promise"/);
  t.regex(dot, /label="revoked", style=bold, color=red/);
});
