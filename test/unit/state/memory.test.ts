/** @module The store contract against the in-memory store, plus its memory bound and synchronous take. */
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

it('memory store takeSync decides like take, without a promise', async (t) => {
  const store = createMemoryStore({ sweepEveryMs: 0 });
  t.after(() => store.close());
  const spec = { algorithm: 'sliding-window', limit: 2, windowMs: 60_000 } as const;
  const now = Date.UTC(2030, 0, 1);
  const first = store.takeSync('k', 1, spec, now);
  assert.ok(!((first as unknown) instanceof Promise));
  assert.deepEqual(first, { allowed: true, remaining: 1, retryAfterMs: 0, resetMs: first.resetMs });
  assert.equal((await store.take('k', 1, spec, now)).remaining, 0, 'take and takeSync share the count');
  assert.equal(store.takeSync('k', 1, spec, now).allowed, false);
});
