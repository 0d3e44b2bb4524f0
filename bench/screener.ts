/**
 * Delegation against the calls it wraps, in the same process: a call through
 * 1, 3 and 10 screener layers against a direct call of the same token (both
 * answered from the original closure's cache, so what differs is the
 * screening), the first verification of a 10-link chain against a cached
 * one, and signature checks through the library against bare node:crypto.
 * The issue's target: each layer adds at most 10 µs on a warm path.
 */
import { createPublicKey, randomBytes, verify as cryptoVerify } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openKernel, type Kernel, type Token } from '../dist/index.js';
import { generateIdentity, verify, verifyPortable } from '../dist/identity/index.js';
import { readDelegation, verifyChain, type Delegation } from '../dist/delegation/delegation.js';
import { blockCid } from '../dist/store/hashing.js';
import { medianBatched, medianOf, row, type Row } from './measure.js';

const SOURCE = 'export const add = (ctx, a, b) => a + b;';
const DAG_CBOR = 0x71;
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const TARGET = { name: 'target 10 µs/layer', median_ns: 10_000 };
const LAYERS = [1, 3, 10] as const;

type Layer = { module: string; settings?: unknown } | undefined;

/** `layers` delegations of `token`, each by `kernel` to itself (a valid chain: every delegator is in the audience below). */
const chainOf = async (kernel: Kernel, token: Token, layers: number, policy: Layer): Promise<Token> => {
  let outer = token;
  for (let i = 0; i < layers; i++) {
    outer = await kernel.delegate({ token: outer, to: [kernel.principal], policies: policy ? [policy] : [] });
  }
  return outer;
};

const expectThree = async (kernel: Kernel, token: Token) => {
  const outcome = await kernel.call(token, [1, 2]);
  if (outcome.status !== 'fulfilled' || outcome.value !== 3) throw new Error(`bench/screener: call through ${token} answered ${JSON.stringify(outcome)}`);
};

/** The per-layer rows for one kind of layer: total through N layers against direct, then (N layers − direct) / N. */
const layerRows = async (kernel: Kernel, add: Token, direct: { name: string; median_ns: number }, label: string, policy: Layer): Promise<Row[]> => {
  const through: Row[] = [];
  const derived: Row[] = [];
  const medians = new Map<number, number>();
  for (const n of LAYERS) {
    const outer = await chainOf(kernel, add, n, policy);
    await expectThree(kernel, outer);
    const median = await medianOf(() => kernel.call(outer, [1, 2]), 10_000, 1_000);
    medians.set(n, median);
    through.push(row(`call via ${n} layer${n > 1 ? 's' : ''} (${label})`, median, direct));
    derived.push({ ...row(`  added per layer, ${n} deep (${label})`, (median - direct.median_ns) / n, TARGET), ops_per_s: 0 });
  }
  // The slope leaves out what a delegated call costs once whatever its depth (journal entries, the outer #invoke).
  const slope = (medians.get(10)! - medians.get(1)!) / 9;
  derived.push({ ...row(`  each layer past the first (${label})`, slope, TARGET), ops_per_s: 0 });
  return [...through, ...derived];
};

export const benchScreener = async (): Promise<Row[]> => {
  const rows: Row[] = [];
  const identity = generateIdentity((n) => new Uint8Array(randomBytes(n)));
  const kernel = await openKernel({ memory: true, identity });
  try {
    const add = await kernel.issue({ code: await kernel.publish(SOURCE), export: 'add' });
    await expectThree(kernel, add);

    // 1. Layers on a warm path: every call below answers from `add`'s cache.
    const direct = { name: 'direct call (cache hit)', median_ns: await medianOf(() => kernel.call(add, [1, 2]), 10_000, 1_000) };
    rows.push(row(direct.name, direct.median_ns));
    rows.push(...(await layerRows(kernel, add, direct, 'no policy', undefined)));
    rows.push(...(await layerRows(kernel, add, direct, 'expiry', { module: 'expiry', settings: { until: Date.now() + 3_600_000 } })));
    // A policy that carries state from call to call, and one that writes to the journal.
    for (const [label, policy] of [
      ['quota', { module: 'rate', settings: { uses: 1e12 } }],
      ['audit', { module: 'audit' }],
    ] as const) {
      const outer = await chainOf(kernel, add, 10, policy);
      await expectThree(kernel, outer);
      const median = await medianOf(() => kernel.call(outer, [1, 2]), 10_000, 1_000);
      rows.push(row(`call via 10 layers (${label})`, median, direct));
      rows.push({ ...row(`  added per layer, 10 deep (${label})`, (median - direct.median_ns) / 10, TARGET), ops_per_s: 0 });
    }

    // 2. A 10-link chain: reading and checking its records for the first time (hash, decode, shape checks, signature),
    // against records already held (what the kernel keeps per outer token). node:crypto's key cache is warm on both
    // sides: one delegator signed every link.
    const outer = await chainOf(kernel, add, 10, undefined);
    const blocks = (await kernel.chainBlocks(outer))!;
    const root = { token: add, issuer: kernel.principal };
    const notRevoked = () => undefined;
    const firstVerify = (): Delegation[] => {
      const chain = blocks.links.map((bytes) => readDelegation(blockCid(bytes, DAG_CBOR).toString() as Token, bytes));
      verifyChain(chain, root, notRevoked);
      return chain;
    };
    const held = new Map(firstVerify().map((link) => [link.token, link]));
    const tokens = [...held.keys()];
    const cached = {
      name: '10-link chain, held (lookups + verifyChain)',
      median_ns: medianBatched(() => verifyChain(tokens.map((token) => held.get(token)!), root, notRevoked), 1_000, 200),
    };
    rows.push(row(cached.name, cached.median_ns));
    rows.push(row('10-link chain, first seen (readDelegation ×10)', await medianOf(firstVerify, 300, 30), cached));

    // 3. One signature, delegation-record sized, by the same key throughout (the key cache is warm, as in a chain).
    // Each op is timed on its own (medianOf): on a busy machine that keeps other processes out of the median.
    const message = blocks.links[0]!;
    const signature = await identity.sign(message);
    const keyObject = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, identity.publicKey]), format: 'der', type: 'spki' });
    if (!verify(identity.principal, message, signature) || !verifyPortable(identity.principal, message, signature)) {
      throw new Error('bench/screener: the signature under test does not verify');
    }
    const bare = {
      name: `crypto.verify, bare node:crypto (${message.length} B)`,
      median_ns: await medianOf(() => cryptoVerify(null, message, keyObject, signature), 3_000, 300),
    };
    rows.push(row(bare.name, bare.median_ns));
    rows.push(row('verify, library in use (node:crypto)', await medianOf(() => verify(identity.principal, message, signature), 3_000, 300), bare));
    rows.push(row('verifyPortable (@noble/ed25519)', await medianOf(() => verifyPortable(identity.principal, message, signature), 200, 20), bare));
    const token = blockCid(message, DAG_CBOR).toString() as Token;
    rows.push(row('readDelegation, one record', await medianOf(() => readDelegation(token, message), 3_000, 300), bare));
  } finally {
    await kernel.close();
  }

  // 4. End to end: the first call through a 10-link chain on a node that has never read it (opened afresh on its
  // home: records come from disk), against the next call. The closure itself is loaded before the timed call.
  const home = await mkdtemp(join(tmpdir(), 'grid-bench-screener-'));
  try {
    let outer: Token;
    let add: Token;
    {
      const kernel = await openKernel({ home });
      add = await kernel.issue({ code: await kernel.publish(SOURCE), export: 'add' });
      outer = await chainOf(kernel, add, 10, undefined);
      await expectThree(kernel, outer);
      await kernel.close();
    }
    const firsts: number[] = [];
    const seconds: number[] = [];
    for (let i = 0; i < 41; i++) {
      const kernel = await openKernel({ home });
      await kernel.call(add, [i, 0.5]); // loads closure and module (not a cache hit: fresh arguments)
      let start = process.hrtime.bigint();
      await expectThree(kernel, outer);
      firsts.push(Number(process.hrtime.bigint() - start));
      start = process.hrtime.bigint();
      await expectThree(kernel, outer);
      seconds.push(Number(process.hrtime.bigint() - start));
      await kernel.close();
    }
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1]!;
    const second = { name: 'call via 10 layers, chain known (home)', median_ns: median(seconds) };
    rows.push(row(second.name, second.median_ns));
    rows.push(row('call via 10 layers, fresh node (home)', median(firsts), second));
  } finally {
    await rm(home, { recursive: true, force: true });
  }
  return rows;
};
