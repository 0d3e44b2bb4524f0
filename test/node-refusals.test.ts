/**
 * Refusals on the node's CapTP facet cross the wire as data (name, code,
 * message) and leave one line each in the node's log — for a stranger
 * asking for the owner's methods too.
 */
import '../src/perimeter/lockdown.js';
import { recordingLog } from './_helpers.js';
import test, { type ExecutionContext } from 'ava';
import { randomBytes } from 'node:crypto';
import { E } from '@endo/far';
import { openKernel } from '../src/index.js';
import { generateIdentity } from '../src/identity/index.js';
import { MAX_LOGGED_REFUSALS, serveNode } from '../src/net/node.js';
import { connectNode } from '../src/net/client.js';

const random = (n: number) => new Uint8Array(randomBytes(n));

/** A node logging into `lines`, and a stranger (a fresh key, no token) connected to it. */
const strangerAtNode = async (t: ExecutionContext) => {
  const identity = generateIdentity(random);
  const kernel = await openKernel({ memory: true, identity, limits: { vats: 1 } });
  const { log, lines } = recordingLog();
  const server = await serveNode(kernel, { identity, random, log });
  const stranger = await connectNode(server.url, { identity: generateIdentity(random), random });
  t.teardown(async () => {
    stranger.close();
    await server.close();
    await kernel.close();
  });
  return { stranger, lines };
};

test("a stranger asking for the owner's methods is refused by name, with a code, in one log line each", async (t) => {
  const { stranger, lines } = await strangerAtNode(t);
  const facet = E(stranger.session.bootstrap() as Promise<{ publish(text: string): Promise<unknown>; redeem(token: string): Promise<unknown> }>);
  const refusal = await facet.publish('AAAA').then(
    () => undefined,
    (reason: unknown) => reason,
  );
  t.like(refusal, { code: 'ERR_NOT_OWNER', message: "publish: only this node's own principal may publish through it" });
  t.false(refusal instanceof Error, 'a refusal is data, not an Error CapTP would log with its stack');
  const noInvitations = await facet.redeem('x').then(
    () => undefined,
    (reason: unknown) => reason,
  );
  t.like(noInvitations, { code: 'ERR_NO_INVITATIONS' });
  t.deepEqual(
    lines.map((line) => [line.level, line.fields.event, line.fields.method, line.message]),
    [
      ['info', 'refused', 'publish', "publish refused: publish: only this node's own principal may publish through it"],
      ['info', 'refused', 'redeem', 'redeem refused: this node takes no invitations'],
    ],
  );
});

test('a connection that keeps being refused fills the log with at most MAX_LOGGED_REFUSALS lines a minute; the rest go to debug', async (t) => {
  const { stranger, lines } = await strangerAtNode(t);
  const facet = E(stranger.session.bootstrap() as Promise<{ redeem(token: string): Promise<unknown> }>);
  const tries = MAX_LOGGED_REFUSALS + 15;
  for (let i = 0; i < tries; i += 1) await facet.redeem(`x${i}`).catch(() => {});
  const loud = lines.filter((line) => line.level !== 'debug');
  t.is(loud.filter((line) => line.fields.event === 'refused').length, MAX_LOGGED_REFUSALS);
  t.deepEqual(loud.filter((line) => line.fields.event === 'refusals-quieted').length, 1, 'one line says the rest are quieted');
  t.is(lines.filter((line) => line.level === 'debug' && line.fields.event === 'refused').length, tries - MAX_LOGGED_REFUSALS);
});
