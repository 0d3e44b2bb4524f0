/**
 * A tab checks a batch of signatures with WebCrypto (src/tab/ed25519.ts):
 * in Chromium that is BoringSSL's Ed25519, a different implementation from
 * the OpenSSL a Node node uses. Behind the one byte policy (src/identity/
 * strict.ts) both must give the same verdict on every input, or a version
 * one replica takes another refuses. Held here in a real headless Chromium
 * on the C2SP/CCTV edge cases and on signatures of real keys mutated at
 * random, against node:crypto's verdicts.
 */
import test from 'ava';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { generateIdentity, verify } from '../src/identity/index.js';
import { isAcceptableKey, isAcceptableSignature } from '../src/identity/strict.js';
import { CCTV, unhex } from './_ed25519-vectors.js';

const CHROMIUM = process.env.GRID_CHROMIUM ?? '/usr/bin/chromium';
// Without Chromium this skips, except under CI, where a missing Chromium is a failure (as in test/web.test.ts).
const maybe = existsSync(CHROMIUM) || process.env.CI ? test : test.skip;
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const random = (n: number) => new Uint8Array(randomBytes(n));

/** In the page: WebCrypto's verdict on each [key, message, signature] (hex). */
const subtleVerdicts = `async (cases) => {
  const bytes = (h) => new Uint8Array(h.match(/../g)?.map((b) => parseInt(b, 16)) ?? []);
  return Promise.all(cases.map(async ([key, message, signature]) => {
    try {
      const handle = await crypto.subtle.importKey('raw', bytes(key), { name: 'Ed25519' }, false, ['verify']);
      return await crypto.subtle.verify('Ed25519', handle, bytes(signature), bytes(message));
    } catch (error) {
      return 'threw: ' + error.name;
    }
  }));
}`;

maybe(`WebCrypto (BoringSSL) gives node:crypto's (OpenSSL) verdict on every input the byte policy lets through, in headless Chromium${existsSync(CHROMIUM) ? '' : ` (skipped: no ${CHROMIUM})`}`, async (t) => {
  t.timeout(120_000);
  const cases: Array<[string, Uint8Array, Uint8Array, Uint8Array]> = CCTV.map(([number, key, signature, message, flags]) => [`CCTV ${number} [${flags}]`, unhex(key), new TextEncoder().encode(message), unhex(signature)]);
  for (const [who, signer] of [generateIdentity(random), generateIdentity(random), generateIdentity(random)].entries()) {
    for (let i = 0; i < 100; i++) {
      const message = random(i % 70);
      const signature = await signer.sign(message);
      // A third stay as signed; the rest have one bit of the signature or the message flipped.
      const bit = i % 3 === 0 ? undefined : randomBytes(2).readUInt16LE() % (8 * (i % 3 === 1 ? 64 : Math.max(message.length, 1)));
      const flip = (bytes: Uint8Array) => (bit === undefined || bit >= 8 * bytes.length ? bytes : Object.assign(bytes.slice(), { [bit >> 3]: bytes[bit >> 3]! ^ (1 << (bit & 7)) }));
      cases.push([`key ${who} #${i}`, signer.publicKey, i % 3 === 2 ? flip(message) : message, i % 3 === 1 ? flip(signature) : signature]);
    }
  }
  const policed = cases.filter(([, key, , signature]) => isAcceptableKey(key) && isAcceptableSignature(signature));
  const expected = policed.map(([, key, message, signature]) => verify(key, message, signature));
  // Both verdicts occur: a comparison that cannot tell them apart would prove nothing.
  t.true(expected.filter(Boolean).length >= 100);
  t.true(expected.filter((verdict) => !verdict).length >= 100);

  const server = createServer((_request, response) => response.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>verify</title>'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  // A page of its own on loopback: a secure context, where WebCrypto is.
  await page.goto(`http://127.0.0.1:${(server.address() as { port: number }).port}/`);
  const verdicts = (await page.evaluate(`(${subtleVerdicts})(${JSON.stringify(policed.map(([, key, message, signature]) => [hex(key), hex(message), hex(signature)]))})`)) as Array<boolean | string>;
  const differing = policed.flatMap(([name], i) => (verdicts[i] === expected[i] ? [] : [`${name}: WebCrypto ${verdicts[i]}, OpenSSL ${expected[i]}`]));
  t.deepEqual(differing, []);
});
