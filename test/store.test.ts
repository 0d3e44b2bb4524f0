import test from 'ava';
import { readdir, readFile, writeFile, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { CID } from 'multiformats/cid';
import { sha256, sha512 } from 'multiformats/hashes/sha2';
import * as Digest from 'multiformats/hashes/digest';
import { blake3 } from '@noble/hashes/blake3.js';
import { blockCid, blockCidBytes, blockPath, openFsBlockStore, openMemoryBlockStore, StoreError, type BlockStore, type HashName } from '../src/store/index.js';
import { tempDir } from './_helpers.js';

const hello = new TextEncoder().encode('hello');

test('CIDs match ones computed independently with multiformats', async (t) => {
  t.true(blockCid(hello, 0x55).equals(CID.createV1(0x55, await sha256.digest(hello))));
  t.is(blockCid(hello, 0x55).toString(), 'bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq');
  t.true(blockCid(hello, 0x71, 'sha2-512').equals(CID.createV1(0x71, await sha512.digest(hello))));
  t.true(blockCid(hello, 0x55, 'blake3').equals(CID.createV1(0x55, Digest.create(0x1e, blake3(hello)))));
  t.deepEqual(blockCidBytes(hello, 0x71), blockCid(hello, 0x71).bytes);
});

const stores: Array<[string, (t: import('ava').ExecutionContext) => Promise<{ store: BlockStore; dir?: string }>]> = [
  ['memory', async () => ({ store: openMemoryBlockStore() })],
  ['fs', async (t) => {
    const dir = await tempDir(t);
    return { store: openFsBlockStore(dir), dir };
  }],
];

for (const [kind, open] of stores) {
  test(`${kind}: put and verified get for every hash`, async (t) => {
    const { store } = await open(t);
    for (const hash of ['sha2-256', 'sha2-512', 'blake3'] as HashName[]) {
      const cid = await store.put(hello, { hash });
      t.deepEqual(await store.get(cid), hello);
      t.true(await store.has(cid));
    }
  });

  test(`${kind}: missing, mismatched and unsupported blocks are refused`, async (t) => {
    const { store } = await open(t);
    const missing = blockCid(new TextEncoder().encode('never stored'), 0x55);
    t.is((await t.throwsAsync(store.get(missing), { instanceOf: StoreError }))?.code, 'ERR_NOT_FOUND');
    t.false(await store.has(missing));
    t.is((await t.throwsAsync(store.putVerified(missing, hello), { instanceOf: StoreError }))?.code, 'ERR_MISMATCH');
    const identityHash = CID.createV1(0x55, Digest.create(0x00, hello));
    const error = await t.throwsAsync(store.putVerified(identityHash, hello), { instanceOf: StoreError });
    t.is(error?.code, 'ERR_UNSUPPORTED_HASH');
    t.regex(error!.message, /multihash 0x0/);
  });

  test(`${kind}: stored bytes are copies`, async (t) => {
    const { store } = await open(t);
    const bytes = new Uint8Array([1, 2, 3]);
    const cid = await store.put(bytes);
    bytes[0] = 9;
    const got = await store.get(cid);
    got[1] = 9;
    t.deepEqual(await store.get(cid), new Uint8Array([1, 2, 3]));
  });
}

test('fs: sharded layout, no temp files left, concurrent writers of one block', async (t) => {
  const dir = await tempDir(t);
  const store = openFsBlockStore(dir);
  const cids = await Promise.all(Array.from({ length: 20 }, () => store.put(hello)));
  t.true(cids.every((cid) => cid.equals(cids[0]!)));
  const name = cids[0]!.toString();
  t.is(blockPath(dir, cids[0]!), join(dir, name.slice(-3, -1), name));
  t.deepEqual(await readdir(join(dir, name.slice(-3, -1))), [name]);
});

test('fs: a tampered or truncated block is reported corrupt, never served', async (t) => {
  const dir = await tempDir(t);
  const store = openFsBlockStore(dir);
  const cid = await store.put(new TextEncoder().encode('the original bytes'));
  const path = blockPath(dir, cid);
  await writeFile(path, 'the originaL bytes');
  const tampered = await t.throwsAsync(store.get(cid), { instanceOf: StoreError });
  t.is(tampered?.code, 'ERR_CORRUPT');
  t.regex(tampered!.message, new RegExp(`^store: block ${cid} on disk does not match its hash`));
  await store.put(new TextEncoder().encode('the original bytes'));
  t.deepEqual(await readFile(path, 'utf8'), 'the original bytes', 'a put repairs it');
  await truncate(path, 5);
  t.is((await t.throwsAsync(store.get(cid), { instanceOf: StoreError }))?.code, 'ERR_CORRUPT');
});

test('fs: oversized blocks are refused before reading or writing', async (t) => {
  const dir = await tempDir(t);
  const small = openFsBlockStore(dir, { maxBlockBytes: 10 });
  t.is((await t.throwsAsync(small.put(new Uint8Array(11)), { instanceOf: StoreError }))?.code, 'ERR_TOO_LARGE');
  const big = await openFsBlockStore(dir).put(new Uint8Array(11));
  t.is((await t.throwsAsync(small.get(big), { instanceOf: StoreError }))?.code, 'ERR_TOO_LARGE');
});
