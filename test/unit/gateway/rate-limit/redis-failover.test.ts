/**
 * @module rate-limit against a real redis-server: a global limit shared by three store clients (three Portico
 * instances) admits exactly the limit; killing Redis follows onStoreFailure (open: local counting, closed:
 * 503), and everything recovers when Redis restarts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { StoreGuard } from '../../../../src/gateway/rate-limit/guard.ts';
import { factory } from '../../../../src/gateway/rate-limit/index.ts';
import { createRedisStore } from '../../../../src/state/redis.ts';
import type { Store } from '../../../../src/state/types.ts';
import { createRedisServer, type RedisServer } from '../../../helpers/redis-server.ts';
import { build, exchange, run, statusOf, testDeps } from './fixtures.ts';

let server: RedisServer;
const stores: Store[] = [];
before(async () => {
  server = await createRedisServer();
  await server.start();
});
after(async () => {
  await Promise.all(stores.map((s) => s.close()));
  await server.stop();
});

async function waitFor(cond: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await cond()) return;
    await sleep(20);
  }
  assert.fail('condition not reached');
}

async function redisStore(prefix: string): Promise<Store> {
  const store = createRedisStore({ url: server.url, keyPrefix: prefix, timeouts: { command: 200, connect: 200 } });
  stores.push(store);
  await waitFor(() => store.ready());
  return store;
}

describe('rate-limit with redis', () => {
  it('three instances sharing one Redis admit exactly the limit under concurrent requests', async () => {
    for (const algo of [
      { limit: 10, per: '1m' },
      { limit: 10, per: '1m', burst: 7 },
    ]) {
      const prefix = `global-${algo.burst ?? 0}:`;
      const instances = await Promise.all(
        [0, 1, 2].map(async () =>
          build(factory, { ...algo, key: 'route' }, testDeps(await redisStore(prefix)), 'global'),
        ),
      );
      const verdicts = await Promise.all(
        Array.from({ length: 60 }, (_, i) => run(instances[i % 3]!, exchange({ ip: `10.0.0.${i}` }))),
      );
      const admitted = verdicts.filter((v) => v.kind === 'continue').length;
      assert.equal(admitted, algo.burst ?? algo.limit);
      for (const p of instances) await p.close?.();
    }
  });

  it('Redis killed: open counts locally (limit divided), closed replies 503; both recover after restart', async () => {
    const store = await redisStore('failover:');
    const openDeps = testDeps(store);
    const closedDeps = testDeps(store);
    const open = build(factory, { limit: 6, per: '1m', key: 'client-ip', fallbackDivideBy: 3 }, openDeps, 'open');
    const closed = build(
      factory,
      { limit: 6, per: '1m', key: 'client-ip', onStoreFailure: 'closed' },
      closedDeps,
      'closed',
    );
    const openGuard = (open as unknown as { guard: StoreGuard }).guard;
    const admin = new Redis(server.url);
    after(() => admin.disconnect());

    assert.equal(await statusOf(open), 200);
    assert.equal(await statusOf(closed), 200);
    assert.equal((await admin.keys('failover:*')).length, 2);

    await server.stop();
    // Local counting: 6 / 3 = 2 per instance while Redis is away.
    assert.equal(await statusOf(open), 200);
    assert.equal(await statusOf(open), 200);
    assert.equal(await statusOf(open), 429);
    assert.ok(openGuard.stats.localDecisions >= 3);
    assert.equal(openGuard.degraded(), true);
    assert.equal(openDeps.logs.filter((l) => l.level === 'warn').length, 1);

    const v = await run(closed, exchange());
    assert.equal(v.kind, 'reply');
    if (v.kind === 'reply') {
      assert.equal(v.reply.status, 503);
      assert.equal(v.reply.code, 'GW_STATE_UNAVAILABLE');
    }

    await server.start();
    admin.disconnect();
    // Back on Redis (empty after the restart): the shared count starts over and the guard leaves degraded mode.
    await waitFor(async () => (await statusOf(open)) === 200 && !openGuard.degraded());
    await waitFor(async () => (await statusOf(closed)) === 200);
    const admin2 = new Redis(server.url);
    after(() => admin2.disconnect());
    assert.equal((await admin2.keys('failover:*')).length, 2);
    assert.ok(openDeps.logs.some((l) => l.level === 'info' && l.msg === 'shared store available again'));
    await open.close?.();
    await closed.close?.();
  });
});
