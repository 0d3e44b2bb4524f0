import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CID } from 'multiformats/cid';
import { sha256, sha512 } from 'multiformats/hashes/sha2';
import * as Digest from 'multiformats/hashes/digest';
import { blake3 } from '@noble/hashes/blake3.js';
import {
  blockCid,
  blockCidBytes,
  blockPath,
  hashers,
  openFsBlockStore,
  openMemoryBlockStore,
  StoreError,
  verifyBlock,
  type BlockStore,
  type HashName,
} from '../src/store/index.js';
import { tempDir } from './_helpers.js';

const utf8 = (text: string) => new TextEncoder().encode(text);
const hello = utf8('hello');
const HASHES: HashName[] = ['sha2-256', 'sha2-512', 'blake3'];

/** The StoreError code a promise rejects with (failing the test if it resolves or throws something else). */
const codeOf = async (t: ExecutionContext, promise: Promise<unknown>) => (await t.throwsAsync(promise, { instanceOf: StoreError }))?.code;

/** Every file under `dir`, relative. */
const walk = async (dir: string, prefix = ''): Promise<string[]> => {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) out.push(...(await walk(join(dir, entry.name), `${prefix}${entry.name}/`)));
    else out.push(`${prefix}${entry.name}`);
  }
  return out;
};

test('CIDs match ones computed independently with multiformats and known digests', async (t) => {
  const expected256 = CID.create(1, 0x55, await sha256.digest(hello));
  t.true(blockCid(hello, 0x55).equals(expected256));
  t.is(blockCid(hello, 0x55).toString(), 'bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq');
  t.is(Buffer.from(blockCid(hello, 0x55).multihash.digest).toString('hex'), '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824');
  t.true(blockCid(hello, 0x71, 'sha2-512').equals(CID.create(1, 0x71, await sha512.digest(hello))));
  const b3 = blockCid(hello, 0x55, 'blake3');
  t.true(b3.equals(CID.create(1, 0x55, Digest.create(0x1e, blake3(hello)))));
  // BLAKE3("hello") from the reference implementation (b3sum).
  t.is(Buffer.from(b3.multihash.digest).toString('hex'), 'ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f');
  t.is(b3.multihash.code, 0x1e);
  t.is(b3.version, 1);
  t.true(CID.asCID(b3) === b3, 'a genuine multiformats CID');
  for (const hash of HASHES) {
    t.deepEqual(blockCidBytes(hello, 0x71, hash), blockCid(hello, 0x71, hash).bytes, hash);
    t.true(CID.create(1, 0x55, await hashers[hash].digest(hello)).equals(blockCid(hello, 0x55, hash)), `${hash} multiformats hasher`);
  }
});

test('hashing: property — any bytes, any hash, any codec: the CID verifies its bytes and no others', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(...HASHES), fc.constantFrom(0x55, 0x71), (bytes, hash, codec) => {
      const cid = CID.decode(blockCid(bytes, codec, hash).bytes);
      const flipped = bytes.length > 0 ? Uint8Array.from(bytes, (b, i) => (i === 0 ? b ^ 1 : b)) : new Uint8Array([0]);
      return verifyBlock(cid, bytes) && !verifyBlock(cid, flipped) && cid.code === codec;
    }),
    { numRuns: 300 },
  );
  t.pass();
});

test('hashing: unknown hash names and multihash codes are refused, naming the code', (t) => {
  const sha3 = CID.create(1, 0x55, Digest.create(0x16, new Uint8Array(32)));
  const error = t.throws(() => verifyBlock(sha3, hello), { instanceOf: StoreError });
  t.is(error?.code, 'ERR_UNSUPPORTED_HASH');
  t.regex(error!.message, new RegExp(`^store: ${sha3} uses multihash 0x16, which this node cannot verify$`));
  const identity = CID.create(1, 0x55, Digest.create(0x00, hello));
  t.regex(t.throws(() => verifyBlock(identity, hello), { instanceOf: StoreError })!.message, /multihash 0x0\b/);
  // A truncated sha2-256 digest is a valid multihash, but not one this node can check.
  const truncated = CID.create(1, 0x55, Digest.create(0x12, blockCid(hello, 0x55).multihash.digest.subarray(0, 20)));
  const short = t.throws(() => verifyBlock(truncated, hello), { instanceOf: StoreError });
  t.is(short?.code, 'ERR_UNSUPPORTED_HASH');
  t.regex(short!.message, /20-byte digest/);
  t.is(t.throws(() => blockCid(hello, 0x55, 'md5' as HashName), { instanceOf: StoreError })?.code, 'ERR_UNSUPPORTED_HASH');
  t.is(t.throws(() => blockCid(hello, 0x55, 'toString' as HashName), { instanceOf: StoreError })?.code, 'ERR_UNSUPPORTED_HASH');
  t.throws(() => blockCid('hello' as never, 0x55), { instanceOf: TypeError });
  t.throws(() => blockCid(hello, -1), { instanceOf: TypeError });
  t.throws(() => verifyBlock('bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq' as never, hello), { instanceOf: TypeError });
});

const stores: Array<[string, (t: ExecutionContext) => Promise<BlockStore>]> = [
  ['memory', async () => openMemoryBlockStore()],
  ['fs', async (t) => openFsBlockStore(await tempDir(t))],
];

for (const [kind, open] of stores) {
  test(`${kind}: put and verified get round-trip for every hash and codec`, async (t) => {
    const store = await open(t);
    const big = new Uint8Array(300_000).map((_, i) => (i * 7) & 0xff);
    for (const hash of HASHES) {
      for (const [codec, bytes] of [[0x55, hello], [0x71, utf8('{"a":1}')], [0x55, new Uint8Array(0)], [0x55, big]] as const) {
        const cid = await store.put(bytes, { hash, codec });
        t.true(cid.equals(blockCid(bytes, codec, hash)), `${hash} ${codec}`);
        t.deepEqual(await store.get(cid), bytes);
        t.true(await store.has(cid));
        t.true(await store.has(CID.parse(cid.toString())), 'found by an equal CID parsed from its string');
      }
    }
    t.true((await store.put(hello)).equals(blockCid(hello, 0x55, 'sha2-256')), 'raw and sha2-256 by default');
  });

  test(`${kind}: missing, mismatched and unsupported blocks are refused`, async (t) => {
    const store = await open(t);
    const missing = blockCid(utf8('never stored'), 0x55);
    t.is(await codeOf(t, store.get(missing)), 'ERR_NOT_FOUND');
    t.regex((await t.throwsAsync(store.get(missing)))!.message, new RegExp(`^store: no block ${missing}$`));
    t.false(await store.has(missing));
    for (const hash of HASHES) {
      const other = blockCid(utf8('other bytes'), 0x55, hash);
      t.is(await codeOf(t, store.putVerified(other, hello)), 'ERR_MISMATCH', hash);
      t.false(await store.has(other), 'nothing stored on a mismatch');
    }
    const sha3 = CID.create(1, 0x55, Digest.create(0x16, new Uint8Array(32)));
    t.is(await codeOf(t, store.putVerified(sha3, hello)), 'ERR_UNSUPPORTED_HASH');
    t.is(await codeOf(t, store.put(hello, { hash: 'sha1' as HashName })), 'ERR_UNSUPPORTED_HASH');
    await store.putVerified(blockCid(hello, 0x71, 'blake3'), hello);
    t.deepEqual(await store.get(blockCid(hello, 0x71, 'blake3')), hello, 'putVerified stores bytes that match');
    await t.throwsAsync(store.get('bafk...' as never), { instanceOf: TypeError });
    await t.throwsAsync(store.put('hello' as never), { instanceOf: TypeError });
  });

  test(`${kind}: putHashed stores bytes the caller hashed without hashing them again, as a copy; get still re-hashes them`, async (t) => {
    const store = await open(t);
    const bytes = utf8('hashed by the caller');
    const cid = blockCid(bytes, 0x71);
    await store.putHashed(cid, bytes);
    bytes[0] = 0;
    t.deepEqual(await store.get(cid), utf8('hashed by the caller'), 'a copy was stored');
    // A caller that broke its word (bytes that are not the CID's) stores nothing that a read hands out.
    const lie = blockCid(utf8('something else'), 0x71);
    await store.putHashed(lie, utf8('not those bytes'));
    t.is(await codeOf(t, store.get(lie)), 'ERR_CORRUPT');
    await t.throwsAsync(store.putHashed(cid, 'bytes' as never), { instanceOf: TypeError });
  });

  test(`${kind}: stored bytes are copies, in and out (Buffers included)`, async (t) => {
    const store = await open(t);
    const bytes = new Uint8Array([1, 2, 3]);
    const cid = await store.put(bytes);
    bytes[0] = 9;
    const got = await store.get(cid);
    got[1] = 9;
    t.deepEqual(await store.get(cid), new Uint8Array([1, 2, 3]));
    // Buffer#slice shares memory: a store that "copied" with it would be changed through the caller's Buffer.
    const buffer = Buffer.from([4, 5, 6]);
    const pending = store.put(buffer);
    buffer[0] = 0; // while the write may still be in flight
    const bufferCid = await pending;
    t.true(bufferCid.equals(blockCid(new Uint8Array([4, 5, 6]), 0x55)));
    t.deepEqual(await store.get(bufferCid), new Uint8Array([4, 5, 6]));
  });

  test(`${kind}: blocks over maxBlockBytes are refused; unknown options are errors`, async (t) => {
    const store = kind === 'fs' ? openFsBlockStore(await tempDir(t), { maxBlockBytes: 10 }) : openMemoryBlockStore({ maxBlockBytes: 10 });
    t.is(await codeOf(t, store.put(new Uint8Array(11))), 'ERR_TOO_LARGE');
    t.is(await codeOf(t, store.putVerified(blockCid(new Uint8Array(11), 0x55), new Uint8Array(11))), 'ERR_TOO_LARGE');
    await store.put(new Uint8Array(10));
    t.throws(() => (kind === 'fs' ? openFsBlockStore('/tmp/x', { maxBlocks: 1 } as never) : openMemoryBlockStore({ maxBlocks: 1 } as never)), {
      instanceOf: TypeError,
      message: /unknown option "maxBlocks"/,
    });
    t.throws(() => openMemoryBlockStore({ maxBlockBytes: -1 }), { instanceOf: RangeError });
  });
}

test('fs: one file per block at <shard>/<base32 cid>, shard = the two characters before the last', async (t) => {
  const dir = await tempDir(t);
  const store = openFsBlockStore(join(dir, 'blocks'));
  const cids = [];
  for (let i = 0; i < 50; i++) cids.push(await store.put(utf8(`block ${i}`), { hash: HASHES[i % 3]!, codec: i % 2 ? 0x71 : 0x55 }));
  const files = (await walk(join(dir, 'blocks'))).sort();
  const expected = cids.map((cid) => {
    const name = cid.toString();
    t.regex(name, /^b[a-z2-7]+$/, 'base32 CIDv1');
    return `${name.slice(-3, -1)}/${name}`;
  });
  t.deepEqual(files, [...new Set(expected)].sort());
  t.is(blockPath(join(dir, 'blocks'), cids[0]!), join(dir, 'blocks', expected[0]!));
  t.deepEqual(new Uint8Array(await readFile(join(dir, 'blocks', expected[7]!))), utf8('block 7'));
  t.is((await stat(join(dir, 'blocks', expected[0]!))).mode & 0o777, 0o600);
  // A second store over the same folder (a restart) serves the same blocks.
  t.deepEqual(await openFsBlockStore(join(dir, 'blocks')).get(cids[3]!), utf8('block 3'));
});

test('fs: concurrent puts of one block all succeed and leave one file, no temp files', async (t) => {
  const dir = await tempDir(t);
  const store = openFsBlockStore(dir);
  const cids = await Promise.all(Array.from({ length: 20 }, () => store.put(hello)));
  t.true(cids.every((cid) => cid.equals(cids[0]!)));
  const name = cids[0]!.toString();
  t.deepEqual(await walk(dir), [`${name.slice(-3, -1)}/${name}`]);
  // And many different blocks at once, some twice, across every hash.
  const blocks = Array.from({ length: 200 }, (_, i) => utf8(`concurrent ${i % 150}`));
  const many = await Promise.all(blocks.map((bytes, i) => store.put(bytes, { hash: HASHES[i % 150 % 3]! })));
  t.is(new Set(many.map(String)).size, 150);
  const files = await walk(dir);
  t.is(files.length, 151);
  t.false(files.some((file) => file.includes('.tmp')), 'no temp files left');
  for (const [i, cid] of many.entries()) t.deepEqual(await store.get(cid), blocks[i]);
});

test('fs: a tampered, truncated, emptied or replaced block is reported corrupt, never served', async (t) => {
  const dir = await tempDir(t);
  const store = openFsBlockStore(dir);
  const original = utf8('the original bytes');
  const cid = await store.put(original);
  const path = blockPath(dir, cid);
  await writeFile(path, 'the originaL bytes');
  const tampered = await t.throwsAsync(store.get(cid), { instanceOf: StoreError });
  t.is(tampered?.code, 'ERR_CORRUPT');
  t.regex(tampered!.message, new RegExp(`^store: block ${cid} on disk does not match its hash \\(tampered or truncated\\)$`));
  t.true(await store.has(cid), 'has reports presence, not integrity');
  await store.put(original);
  t.deepEqual(await store.get(cid), original, 'putting the block again repairs it');
  await truncate(path, 5);
  t.is(await codeOf(t, store.get(cid)), 'ERR_CORRUPT');
  await truncate(path, 0);
  t.is(await codeOf(t, store.get(cid)), 'ERR_CORRUPT');
  await writeFile(path, Buffer.concat([Buffer.from(original), Buffer.from('!')]));
  t.is(await codeOf(t, store.get(cid)), 'ERR_CORRUPT', 'extra bytes');
  await rm(path);
  await mkdir(path);
  t.is(await codeOf(t, store.get(cid)), 'ERR_CORRUPT', 'a directory where the block should be');
  t.false(await store.has(cid));
  // Every hash is checked, not just the default.
  for (const hash of ['sha2-512', 'blake3'] as const) {
    const other = await store.put(original, { hash });
    await writeFile(blockPath(dir, other), 'x');
    t.is(await codeOf(t, store.get(other)), 'ERR_CORRUPT', hash);
  }
});

test('fs: a FIFO planted at a block path is refused, not waited on', async (t) => {
  const dir = await tempDir(t);
  const store = openFsBlockStore(dir);
  const cid = blockCid(hello, 0x55);
  const path = blockPath(dir, cid);
  await mkdir(join(path, '..'), { recursive: true });
  try {
    await promisify(execFile)('mkfifo', [path]);
  } catch {
    t.pass('mkfifo is not available here');
    return;
  }
  t.is(await codeOf(t, store.get(cid)), 'ERR_CORRUPT');
});

test('fs: an oversized file is refused from its size alone', async (t) => {
  const dir = await tempDir(t);
  const store = openFsBlockStore(dir);
  const cid = await store.put(hello);
  // A sparse 1 GiB file: reading it would take seconds and a gigabyte of memory.
  await truncate(blockPath(dir, cid), 1024 ** 3);
  const started = Date.now();
  const error = await t.throwsAsync(store.get(cid), { instanceOf: StoreError });
  t.is(error?.code, 'ERR_TOO_LARGE');
  t.regex(error!.message, new RegExp(`^store: block ${cid} is 1073741824 bytes \\(limit 67108864\\)$`));
  t.true(Date.now() - started < 1000);
  const small = openFsBlockStore(dir, { maxBlockBytes: 4 });
  await store.put(hello); // repaired
  t.is(await codeOf(t, small.get(cid)), 'ERR_TOO_LARGE');
});

test('fs: shard folders are recreated if removed, and fsync mode round-trips', async (t) => {
  const dir = await tempDir(t);
  const store = openFsBlockStore(dir, { fsync: true });
  const cid = await store.put(hello);
  await rm(join(blockPath(dir, cid), '..'), { recursive: true });
  t.false(await store.has(cid));
  t.true((await store.put(hello)).equals(cid));
  t.deepEqual(await store.get(cid), hello);
  t.throws(() => openFsBlockStore(dir, { fsync: 'yes' } as never), { instanceOf: TypeError });
  t.throws(() => openFsBlockStore(''), { instanceOf: TypeError });
});

test('fs and memory: a CIDv0 is filed under its CIDv1 form', async (t) => {
  const dir = await tempDir(t);
  for (const store of [openFsBlockStore(dir), openMemoryBlockStore()]) {
    const bytes = utf8('dag-pb bytes');
    const v0 = CID.createV0(Digest.create(0x12, blockCid(bytes, 0x70).multihash.digest));
    await store.putVerified(v0, bytes);
    t.deepEqual(await store.get(v0), bytes);
    t.true(await store.has(v0.toV1()));
  }
  t.true((await walk(dir))[0]!.endsWith(blockCid(utf8('dag-pb bytes'), 0x70).toString()));
});
