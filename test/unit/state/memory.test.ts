/** @module The store contract against the in-memory store, plus its memory bound. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createMemoryStore } from '../../../src/state/memory.ts';
import { runStoreContract } from './store-contract.ts';

runStoreContract('memory', async () => createMemoryStore());

it('memory store stays under maxKeys', async (t) => {
  const store = createMemoryStore({ maxKeys: 100, sweepEveryMs: 0 });
  t.after(() => store.close());
  for (let i = 0; i < 1000; i++) await store.increment(`k${i}`, 1, 60_000);
  assert.ok(store.sizeForTest() <= 100);
  assert.deepEqual(await store.get('k999'), Buffer.from('1'));
});
