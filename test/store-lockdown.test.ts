/**
 * The block stores under real SES lockdown (frozen intrinsics), as the
 * kernel runs them: nothing in them may need a mutable global.
 */
import '../src/perimeter/lockdown.js';
import test from 'ava';
import { blockCid, openFsBlockStore, openMemoryBlockStore, StoreError, type HashName } from '../src/store/index.js';
import { tempDir } from './_helpers.js';

test('the realm is locked down', (t) => {
  t.true(Object.isFrozen(Object.prototype));
  t.true(Object.isFrozen(Uint8Array.prototype));
});

test('both block stores work under lockdown, and refuse with StoreError', async (t) => {
  for (const store of [openMemoryBlockStore(), openFsBlockStore(await tempDir(t))]) {
    for (const hash of ['sha2-256', 'sha2-512', 'blake3'] as HashName[]) {
      const bytes = new TextEncoder().encode(`block for ${hash}`);
      const cid = await store.put(bytes, { hash });
      t.deepEqual(await store.get(cid), bytes);
    }
    const missing = blockCid(new Uint8Array([1]), 0x55);
    const error = await t.throwsAsync(store.get(missing), { instanceOf: StoreError });
    t.is(error?.code, 'ERR_NOT_FOUND');
    t.is(error?.name, 'StoreError');
    t.true(Object.isFrozen(store));
  }
});
