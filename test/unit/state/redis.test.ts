/** @module The store contract against a real redis-server started on its own port, plus Redis-only cases. */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { Redis } from 'ioredis';
import { createRedisStore } from '../../../src/state/redis.ts';
import type { RateLimitSpec, Store } from '../../../src/state/types.ts';
import { createRedisServer, type RedisServer } from '../../helpers/redis-server.ts';
import { runStoreContract } from './store-contract.ts';

let server: RedisServer;
before(async () => {
  server = await createRedisServer();
  await server.start();
});
after(() => server.stop());

/** A store whose connection is ready (bounded wait). */
async function readyStore(opts: Parameters<typeof createRedisStore>[0]): Promise<Store> {
  const store = createRedisStore(opts);
  for (let i = 0; i < 200 && !store.ready(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(store.ready(), true);
  return store;
}

runStoreContract('redis', () => readyStore({ url: server.url }));

const spec: RateLimitSpec = { algorithm: 'sliding-window', limit: 3, windowMs: 60_000 };

it('redis store re-sends a script the server forgot (NOSCRIPT → EVAL)', async (t) => {
  const store = await readyStore({ url: server.url, keyPrefix: 'ns:' });
  const admin = new Redis(server.url);
  t.after(async () => {
    await store.close();
    admin.disconnect();
  });
  const now = Date.UTC(2030, 0, 1);
  assert.equal((await store.take('flush', 1, spec, now)).remaining, 2);
  await admin.script('FLUSH');
  assert.equal((await store.take('flush', 1, spec, now)).remaining, 1);
  // keyPrefix is applied to script keys too.
  assert.equal(await admin.exists('ns:flush'), 1);
});

it('redis store rejects quickly while Redis is down and works again after a restart', async (t) => {
  const store = await readyStore({ url: server.url });
  t.after(() => store.close());
  const now = Date.UTC(2030, 0, 1);
  await server.stop();
  await assert.rejects(store.take('down', 1, spec, now));
  // The client notices the closed socket on its own; then calls reject without touching the network.
  for (let i = 0; i < 400 && store.ready(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(store.ready(), false);
  await assert.rejects(store.take('down', 1, spec, now), /enableOfflineQueue|Connection is closed|writeable/);
  await server.start();
  for (let i = 0; i < 400 && !store.ready(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(store.ready(), true);
  assert.equal((await store.take('down', 1, spec, now)).allowed, true);
});
