/**
 * A grid node in a browser tab (src/tab/), in a real headless Chromium, on
 * the bundle a real `grid start` node serves at /tab/ (npm run build makes
 * it): the same kernel core with IndexedDB, a WebCrypto key and Web Worker
 * vats. Each test has its own browser context, so its own IndexedDB.
 * Screenshots land in test/output/.
 *
 * Code runs in the tab through the DevTools protocol's Runtime.evaluate, not
 * `page.evaluate`: the page is locked down (SES), whose tamed `eval` — which
 * page.evaluate goes through — refuses any source that mentions `import(`.
 */
import test, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { identityFromSecret, verify } from '../src/identity/index.js';
import { checkSignature, signerFromSecret } from '../src/tab/ed25519.js';
import { tempDir } from './_helpers.js';
import { gridProcesses } from './_processes.js';
import { inTab } from './_in-tab.js';

const { ok, startNode } = gridProcesses();
const CHROMIUM = process.env.GRID_CHROMIUM ?? '/usr/bin/chromium';
const OUTPUT = join(process.cwd(), 'test', 'output');
const inBrowser = `in headless Chromium${existsSync(CHROMIUM) ? '' : ` (skipped: no ${CHROMIUM})`}`;
// Without Chromium these skip, except under CI, where a missing Chromium is a failure (as in test/web.test.ts).
const maybe = existsSync(CHROMIUM) || process.env.CI ? test : test.skip;

const ADD = 'export const add = (ctx, a, b) => a + b;';
const SPIN = 'export const spin = (ctx) => { for (;;) {} };';
/** What a closure in a tab's vat can reach of the browser (nothing), and whether it can change a shared intrinsic (no: lockdown). */
const PROBE = `export const probe = () => {
  let intrinsics = 'mutable';
  try { Array.prototype.polluted = 1; } catch { intrinsics = 'frozen'; }
  let clock;
  try { clock = String(Date.now()); } catch { clock = 'throws'; }
  return [typeof fetch, typeof document, typeof indexedDB, typeof postMessage, typeof self, clock, intrinsics];
};`;

const shared: Array<() => unknown> = [];
test.after.always(async () => {
  for (const fn of shared.splice(0).reverse()) await fn();
});
const fileScope = { teardown: (fn: () => unknown) => void shared.push(fn) } as unknown as ExecutionContext;

/** One `grid start` node and one Chromium for the file. */
let started: Promise<{ origin: string; browser: Browser }> | undefined;
const setUp = () =>
  (started ??= (async () => {
    const home = await tempDir(fileScope);
    await ok(home, ['init']);
    const node = await startNode(fileScope, home);
    const { web } = node as unknown as { web: string };
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    shared.push(() => browser.close());
    return { origin: new URL(web).origin, browser };
  })());

/** A fresh browser context (its own IndexedDB) on the node's /tab/ page, its problems logged to the test. */
const openTab = async (t: ExecutionContext): Promise<{ context: BrowserContext; page: Page; origin: string }> => {
  const { origin, browser } = await setUp();
  const context = await browser.newContext({ viewport: { width: 1000, height: 500 } });
  t.teardown(() => context.close());
  const page = await context.newPage();
  page.on('pageerror', (error) => t.log(`page error: ${error.message}`));
  page.on('console', (message) => message.type() === 'error' && t.log(`console error: ${message.text()}`));
  await page.goto(`${origin}/tab/`);
  return { context, page, origin };
};


/** The page's status line once the node has started or failed. */
const statusOf = async (page: Page) => {
  await page.waitForFunction(() => (document.getElementById('status')?.textContent ?? '') !== '', null, { timeout: 30_000 });
  return page.textContent('#status');
};

maybe(`a tab node publishes, issues and calls in its own vat; a pure call's second answer is the cache's; a reload keeps its key and journal ${inBrowser}`, async (t) => {
  t.timeout(180_000); // a Chromium, a node and a few vats, on a machine the rest of the suite shares
  const { context, page } = await openTab(t);
  t.is(await statusOf(page), 'running');
  const first = await inTab<{ principal: string; kind: string; token: string; outcome: unknown; again: unknown; hits: number; extractable: boolean; exported: string; signature: number[] }>(
    page,
    `const code = await node.kernel.publish(${JSON.stringify(ADD)});
     const token = await node.kernel.issue({ code, export: 'add', env: {} });
     const outcome = await node.kernel.call(token, [2, 3]);
     const again = await node.kernel.call(token, [2, 3]);
     let hits = 0;
     for await (const entry of node.kernel.journal.read(0)) if (entry.kind === 'hit' && entry.token === token) hits += 1;
     // The key as kept: a CryptoKey the page cannot read out.
     const db = await new Promise((resolve, reject) => { const open = indexedDB.open(node.database); open.onsuccess = () => resolve(open.result); open.onerror = () => reject(open.error); });
     const kept = await new Promise((resolve) => { const get = db.transaction('keys').objectStore('keys').get('identity'); get.onsuccess = () => resolve(get.result); });
     db.close();
     const exported = await crypto.subtle.exportKey('pkcs8', kept.privateKey).then(() => 'exported', (error) => error.name);
     const signature = [...await node.identity.sign(new TextEncoder().encode('signed in a tab'))];
     return { principal: node.identity.principal, kind: node.identity.kind, token, outcome, again, hits, extractable: kept.privateKey.extractable, exported, signature };`,
  );
  t.regex(first.principal, /^did:key:z6Mk/);
  t.is(first.kind, 'webcrypto');
  t.false(first.extractable);
  t.is(first.exported, 'InvalidAccessError');
  t.deepEqual(first.outcome, { status: 'fulfilled', value: 5 });
  t.deepEqual(first.again, { status: 'fulfilled', value: 5 });
  t.is(first.hits, 1, 'the second call is a cache hit, journaled');
  t.is(await page.textContent('#principal'), first.principal);
  t.true(verify(first.principal, new TextEncoder().encode('signed in a tab'), Uint8Array.from(first.signature)), "WebCrypto's signature verifies with node:crypto");

  // A second tab of the same browser cannot open the same node: one writer per database.
  const second = await context.newPage();
  await second.goto(page.url());
  t.regex((await statusOf(second)) ?? '', /^cannot start: tab: promisegrid-node is open in another tab/);
  await second.close();

  await page.reload();
  t.is(await statusOf(page), 'running');
  const after = await inTab<{ principal: string; records: number; cached: unknown; fresh: unknown }>(
    page,
    `return { principal: node.identity.principal, records: node.kernel.journal.length,
       cached: await node.kernel.call(${JSON.stringify(first.token)}, [2, 3]),
       fresh: await node.kernel.call(${JSON.stringify(first.token)}, [10, 20]) };`,
  );
  t.is(after.principal, first.principal, 'the same key after a reload');
  t.true(after.records > 0, 'the journal was replayed from IndexedDB');
  t.deepEqual(after.cached, { status: 'fulfilled', value: 5 });
  t.deepEqual(after.fresh, { status: 'fulfilled', value: 30 }, 'the closure itself still runs (its record and module from IndexedDB)');

  await mkdir(OUTPUT, { recursive: true });
  const shot = join(OUTPUT, 'tab-node.png');
  await page.screenshot({ path: shot });
  t.log(`screenshot: ${shot}`);
});

maybe(`a reload starts from the snapshot the tab kept, in the state a replay of the whole journal gives; a snapshot that cannot be read is ignored ${inBrowser}`, async (t) => {
  t.timeout(180_000);
  const { page } = await openTab(t);
  t.is(await statusOf(page), 'running');
  const written = await inTab<number>(
    page,
    `const code = await node.kernel.publish(${JSON.stringify(ADD)});
     const token = await node.kernel.issue({ code, export: 'add', env: {} });
     for (let i = 0; i < 12; i++) await node.kernel.call(token, [i, 1]);
     await node.kernel.flush();
     return node.kernel.journal.length;`,
  );
  t.true(written > 16, `enough records for a snapshot (${written})`);
  /** The node's state as the kernel derives it (hashed), how many records it replayed at open, and how many it holds. */
  const stateOf = () =>
    inTab<{ replayed: number; length: number; state: string }>(
      page,
      `const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', node.kernel.stateSnapshot()));
       return { replayed: node.replayed, length: node.kernel.journal.length, state: [...digest].map((byte) => byte.toString(16).padStart(2, '0')).join('') };`,
    );

  // A snapshot is kept (while the calls ran, or at the next open, which replays them all).
  await page.reload();
  t.is(await statusOf(page), 'running');
  await page.waitForFunction(
    `(async () => { const db = await new Promise((resolve) => { const open = indexedDB.open('promisegrid-node'); open.onsuccess = () => resolve(open.result); });
       const kept = await new Promise((resolve) => { const get = db.transaction('snapshots').objectStore('snapshots').get('kernel'); get.onsuccess = () => resolve(get.result); });
       db.close(); return kept instanceof Uint8Array; })()`,
    null,
    { timeout: 30_000 },
  );

  await page.reload();
  t.is(await statusOf(page), 'running');
  const restored = await stateOf();
  t.true(restored.replayed < 16, `only what came after the snapshot is replayed (${restored.replayed} of ${restored.length})`);

  // A snapshot that does not decode: the next open replays everything, and comes to the same state.
  await inTab(page, `const db = await new Promise((resolve, reject) => { const open = indexedDB.open(node.database); open.onsuccess = () => resolve(open.result); open.onerror = () => reject(open.error); });
     await new Promise((resolve) => { const put = db.transaction('snapshots', 'readwrite').objectStore('snapshots').put(new Uint8Array([1, 2, 3]), 'kernel'); put.onsuccess = resolve; }); db.close();`);
  await page.reload();
  t.is(await statusOf(page), 'running');
  const replayed = await stateOf();
  t.is(replayed.length, restored.length, 'no record was added between the two opens');
  t.is(replayed.replayed, replayed.length, 'the unreadable snapshot was not used');
  t.is(replayed.state, restored.state, 'restored from the snapshot or replayed whole: the same state');
});

maybe(`a block changed in IndexedDB is refused as corrupt, and a call that needs it ends revoked ${inBrowser}`, async (t) => {
  t.timeout(180_000);
  const { page } = await openTab(t);
  t.is(await statusOf(page), 'running');
  const token = await inTab<string>(
    page,
    `const code = await node.kernel.publish(${JSON.stringify(ADD)});
     const token = await node.kernel.issue({ code, export: 'add', env: {} });
     // Flip one byte of the closure's record, filed under its token.
     const db = await new Promise((resolve, reject) => { const open = indexedDB.open(node.database); open.onsuccess = () => resolve(open.result); open.onerror = () => reject(open.error); });
     await new Promise((resolve, reject) => {
       const store = db.transaction('blocks', 'readwrite').objectStore('blocks');
       const get = store.get(token);
       get.onsuccess = () => { const bytes = get.result; bytes[bytes.length - 1] ^= 1; const put = store.put(bytes, token); put.onsuccess = resolve; put.onerror = () => reject(put.error); };
     });
     db.close();
     return token;`,
  );
  // A reload forgets what the kernel held in memory: the record is read again, from IndexedDB.
  await page.reload();
  t.is(await statusOf(page), 'running');
  const after = await inTab<{ read: string; call: { status: string; reason?: string } }>(
    page,
    `const read = await node.kernel.closure(${JSON.stringify(token)}).then(() => 'read', (error) => error.code + ': ' + error.message);
     return { read, call: await node.kernel.call(${JSON.stringify(token)}, [7, 8]) };`,
  );
  // The kernel passes on the store's refusal (ERR_CORRUPT there) under its own code.
  t.regex(after.read, /^ERR_STORE: store: block \S+ does not match its hash$/);
  t.is(after.call.status, 'revoked');
  t.regex(after.call.reason ?? '', /does not match its hash/);
});

maybe(`a closure in a tab's vat reaches nothing of the browser; one that loops ends revoked at the time limit while the page stays responsive ${inBrowser}`, async (t) => {
  t.timeout(180_000);
  const { page } = await openTab(t);
  t.is(await statusOf(page), 'running');
  await inTab(
    page,
    `const loop = await (await import('/tab/node.js')).startTabNode({ name: 'loop', limits: { callTimeoutMs: 6000 } });
     const code = await loop.kernel.publish(${JSON.stringify(`${SPIN}\n${ADD}\n${PROBE}`)});
     const spin = await loop.kernel.issue({ code, export: 'spin', env: {} });
     const add = await loop.kernel.issue({ code, export: 'add', env: {} });
     globalThis.probed = await loop.kernel.call(await loop.kernel.issue({ code, export: 'probe', env: {} }), []);
     globalThis.loopCall = { settled: false };
     loop.kernel.call(spin, []).then((outcome) => Object.assign(globalThis.loopCall, { settled: true, outcome, after: loop.kernel.call(add, [1, 1]) }));`,
  );
  t.deepEqual(await page.evaluate(() => (globalThis as unknown as { probed: unknown }).probed), {
    status: 'fulfilled',
    value: ['undefined', 'undefined', 'undefined', 'undefined', 'undefined', 'throws', 'frozen'],
  });
  // The closure spins in its worker (for up to its 6 s limit: room for a loaded machine's round trips); the page's own thread answers meanwhile.
  t.is(await page.evaluate(() => 1 + 1), 2);
  t.false(await page.evaluate(() => (globalThis as unknown as { loopCall: { settled: boolean } }).loopCall.settled), 'asked while the closure still spins');
  await page.waitForFunction(() => (globalThis as unknown as { loopCall: { settled: boolean } }).loopCall.settled, null, { timeout: 60_000 });
  const ended = await inTab<{ outcome: { status: string; code: string; reason: string }; after: unknown }>(page, `return { outcome: globalThis.loopCall.outcome, after: await globalThis.loopCall.after };`);
  t.like(ended.outcome, { status: 'revoked', code: 'time-limit', reason: 'time limit' });
  t.deepEqual(ended.after, { status: 'fulfilled', value: 2 }, 'a fresh vat answers the next call');
});

test("the tab's Ed25519 (a seed's key where WebCrypto has none, and every check) agrees with node:crypto", async (t) => {
  const message = new TextEncoder().encode('the same bytes');
  for (const fill of [0, 1, 0x7f, 0xff]) {
    const seed = new Uint8Array(32).fill(fill).map((byte, i) => byte ^ i);
    const node = identityFromSecret(seed);
    const tab = signerFromSecret(seed);
    t.deepEqual(tab.publicKey, node.publicKey);
    const signature = await tab.sign(message);
    t.deepEqual(signature, await node.sign(message), 'Ed25519 signatures are deterministic: the same bytes');
    t.true(checkSignature(node.publicKey, message, signature));
    const altered = signature.slice();
    altered[5]! ^= 4;
    t.is(checkSignature(node.publicKey, message, altered), verify(node.principal, message, altered));
    t.false(checkSignature(node.publicKey, new TextEncoder().encode('other bytes'), signature));
  }
});

maybe(`the node serves the bundle at /tab/ by exact name, with a policy of its own origin only`, async (t) => {
  const { origin } = await setUp();
  const page = await fetch(`${origin}/tab/`);
  t.is(page.status, 200);
  t.regex(page.headers.get('content-type') ?? '', /^text\/html/);
  const csp = page.headers.get('content-security-policy') ?? '';
  t.regex(csp, /(^|; )default-src 'none'/);
  t.regex(csp, /(^|; )script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval'(;|$)/);
  t.notRegex(csp, /https?:|\*/, 'no other origin');
  const vat = await fetch(`${origin}/tab/vat.js`);
  t.is(vat.status, 200);
  t.is(vat.headers.get('content-security-policy'), csp, "a worker's policy is its own script's: the same");
  for (const path of ['/tab/nothing.js', '/tab/%2e%2e/package.json', '/tab/chunks/vat.js', '/tab/index.html.map']) {
    t.is((await fetch(`${origin}${path}`)).status, 404, path);
  }
  t.notRegex(await vat.text(), /sourceMappingURL/, 'no source map');
});

maybe(`a journal with a chunk missing in IndexedDB is refused at open and left as it is ${inBrowser}`, async (t) => {
  t.timeout(180_000);
  const { page } = await openTab(t);
  t.is(await statusOf(page), 'running');
  const rawJournal = `const db = await new Promise((resolve, reject) => { const open = indexedDB.open('promisegrid-node'); open.onsuccess = () => resolve(open.result); open.onerror = () => reject(open.error); });
     const keys = await new Promise((resolve) => { const get = db.transaction('journal').objectStore('journal').getAllKeys(); get.onsuccess = () => resolve(get.result); });`;
  const before = await inTab<number[]>(
    page,
    `const code = await node.kernel.publish(${JSON.stringify(ADD)});
     for (let i = 0; i < 3; i++) await node.kernel.call(await node.kernel.issue({ code, export: 'add', env: {} }), [i, i]);
     await node.kernel.flush();
     ${rawJournal}
     // Take out a chunk in the middle, as only a hand in the database could.
     await new Promise((resolve) => { const del = db.transaction('journal', 'readwrite').objectStore('journal').delete(keys[1]); del.onsuccess = resolve; });
     db.close();
     return keys;`,
  );
  t.true(before.length >= 3, `the journal was written in several chunks (${before.length})`);
  await page.reload();
  t.regex((await statusOf(page)) ?? '', /^cannot start: journal: the journal kept in IndexedDB has a gap at byte \d+; it is left as it is$/);
  // Read the database without the page's module (it did not start): every other chunk is still there.
  const cdp = await page.context().newCDPSession(page);
  const { result } = await cdp.send('Runtime.evaluate', { expression: `(async () => { ${rawJournal} db.close(); return keys; })()`, awaitPromise: true, returnByValue: true });
  await cdp.detach();
  t.deepEqual(result.value, before.filter((_, i) => i !== 1));
});
