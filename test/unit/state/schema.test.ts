/** @module State config schema and createStore. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createStore } from '../../../src/state/create-store.ts';
import { stateConfig } from '../../../src/state/schema.ts';

it('accepts memory and the three redis shapes, with defaults', () => {
  assert.deepEqual(stateConfig.parse({ store: 'memory' }), { store: 'memory' });
  assert.deepEqual(stateConfig.parse({ store: 'redis', url: 'redis://127.0.0.1:6379' }), {
    store: 'redis',
    url: 'redis://127.0.0.1:6379',
    keyPrefix: 'portico:',
    timeouts: { command: 200, connect: 1000 },
  });
  const s = stateConfig.parse({
    store: 'redis',
    sentinels: ['10.0.0.1:26379', '[::1]:26379'],
    name: 'main',
    timeouts: { command: '150ms' },
  });
  assert.equal(s.store, 'redis');
  if (s.store === 'redis') {
    assert.deepEqual(s.sentinels, [
      { host: '10.0.0.1', port: 26379 },
      { host: '::1', port: 26379 },
    ]);
    assert.deepEqual(s.timeouts, { command: 150, connect: 1000 });
  }
  const c = stateConfig.parse({ store: 'redis', cluster: ['a:7000', 'b:7001'] });
  if (c.store === 'redis') assert.deepEqual(c.cluster?.[1], { host: 'b', port: 7001 });
});

it('is strict and wants exactly one of url, sentinels, cluster', () => {
  assert.equal(stateConfig.safeParse({ store: 'memory', url: 'redis://x:1' }).success, false);
  assert.equal(stateConfig.safeParse({ store: 'redis' }).success, false);
  assert.equal(stateConfig.safeParse({ store: 'redis', url: 'redis://x:1', cluster: ['x:1'] }).success, false);
  assert.equal(stateConfig.safeParse({ store: 'redis', sentinels: ['x:1'] }).success, false);
  assert.equal(stateConfig.safeParse({ store: 'redis', url: 'http://x:1' }).success, false);
  assert.equal(stateConfig.safeParse({ store: 'redis', url: 'redis://x:1', extra: 1 }).success, false);
});

it('createStore builds the configured kind', async () => {
  const mem = createStore({ store: 'memory' });
  assert.equal(mem.kind, 'memory');
  await mem.close();
  // Nothing listens on port 1: the store is created, not ready, and calls fail fast instead of hanging.
  const redis = createStore(stateConfig.parse({ store: 'redis', url: 'redis://127.0.0.1:1' }));
  assert.equal(redis.kind, 'redis');
  assert.equal(redis.ready(), false);
  await assert.rejects(redis.get('x'));
  await redis.close();
});
