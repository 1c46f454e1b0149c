/** @module quota policy: per consumer per day / month in a time zone, with an injected clock. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { factory } from '../../../../src/gateway/quota/index.ts';
import { createMemoryStore } from '../../../../src/state/memory.ts';
import { createRedisStore } from '../../../../src/state/redis.ts';
import type { Store } from '../../../../src/state/types.ts';
import { createRedisServer, type RedisServer } from '../../../helpers/redis-server.ts';
import { build, consumer, exchange, run, statusOf, testDeps } from '../rate-limit/fixtures.ts';

const acme = consumer('acme', ['gold']);
const bob = consumer('bob');

/** Deps whose memory store expires counters on the same injected clock. */
function memory(now: number) {
  const clock = { now };
  const deps = testDeps(createMemoryStore({ sweepEveryMs: 0, now: () => clock.now }), now, clock);
  return { ...deps, deps };
}

describe('quota', () => {
  it('counts per consumer per day in the configured zone and resets at local midnight', async () => {
    // 2030-01-15 23:00 in Paris (UTC+1) = 22:00Z.
    const m = memory(Date.parse('2030-01-15T22:00:00Z'));
    const q = build(factory, { limit: 2, period: 'day', timeZone: 'Europe/Paris' }, m.deps, 'daily');
    const ex = exchange({ consumer: bob });
    assert.equal(await statusOf(q, ex), 200);
    assert.equal(ex.replyHeaders['x-quota-remaining'], '1');
    assert.equal(await statusOf(q, exchange({ consumer: bob })), 200);
    const denied = await run(q, exchange({ consumer: bob }));
    assert.equal(denied.kind, 'reply');
    if (denied.kind === 'reply') {
      assert.equal(denied.reply.status, 429);
      assert.equal(denied.reply.code, 'GW_QUOTA_EXCEEDED');
      // One hour to Paris midnight.
      assert.equal(denied.reply.headers?.['retry-after'], '3600');
    }
    // Another consumer has its own quota.
    assert.equal(await statusOf(q, exchange({ consumer: consumer('carol') })), 200);
    // 23:59:59 Paris: still the same day.
    m.clock.now = Date.parse('2030-01-15T22:59:59Z');
    assert.equal(await statusOf(q, exchange({ consumer: bob })), 429);
    // Midnight in Paris (23:00Z): a new day, although it is still the 15th in UTC.
    m.clock.now = Date.parse('2030-01-15T23:00:00Z');
    const ex2 = exchange({ consumer: bob });
    assert.equal(await statusOf(q, ex2), 200);
    assert.equal(ex2.replyHeaders['x-quota-remaining'], '1');
  });

  it('months, plans and a custom header', async () => {
    const m = memory(Date.parse('2030-01-31T12:00:00Z'));
    const q = build(
      factory,
      { limit: 1, period: 'month', timeZone: 'America/New_York', plans: { gold: { limit: 3 } }, header: 'X-Left' },
      m.deps,
      'monthly',
    );
    for (let i = 0; i < 3; i++) assert.equal(await statusOf(q, exchange({ consumer: acme })), 200);
    const ex = exchange({ consumer: acme });
    assert.equal(await statusOf(q, ex), 429);
    assert.equal(ex.replyHeaders['x-left'], '0');
    assert.equal(await statusOf(q, exchange({ consumer: bob })), 200);
    assert.equal(await statusOf(q, exchange({ consumer: bob })), 429);
    // 2030-02-01 03:00Z is still January 31 in New York (UTC-5).
    m.clock.now = Date.parse('2030-02-01T03:00:00Z');
    assert.equal(await statusOf(q, exchange({ consumer: bob })), 429);
    m.clock.now = Date.parse('2030-02-01T05:00:00Z');
    assert.equal(await statusOf(q, exchange({ consumer: bob })), 200);
    assert.equal(await statusOf(q, exchange({ consumer: acme })), 200);
  });

  it('shadow mode never blocks', async () => {
    const m = memory(Date.parse('2030-01-31T12:00:00Z'));
    const q = build(factory, { limit: 1, period: 'day', enforce: false }, m.deps, 'shadow');
    for (let i = 0; i < 3; i++) assert.equal(await statusOf(q, exchange({ consumer: bob })), 200);
    assert.equal(m.logs.filter((l) => l.level === 'info').length, 2);
  });

  it('rejects bad config', () => {
    const r = factory.parse({ limit: 1, period: 'week', timeZone: 'Nowhere/City' });
    assert.equal(r.ok, false);
    if (!r.ok) assert.deepEqual(r.issues.map((i) => i.path).sort(), ['period', 'timeZone']);
  });
});

describe('quota with redis', () => {
  let server: RedisServer;
  let store: Store;
  before(async () => {
    server = await createRedisServer();
    await server.start();
    store = createRedisStore({ url: server.url });
    for (let i = 0; i < 200 && !store.ready(); i++) await sleep(10);
  });
  after(async () => {
    await store.close();
    await server.stop();
  });

  it('crosses a day boundary with an injected clock; the count is shared by instances', async () => {
    const a = testDeps(store, Date.parse('2030-06-30T23:59:00Z'));
    const b = testDeps(store, Date.parse('2030-06-30T23:59:00Z'));
    const qa = build(factory, { limit: 2, period: 'day' }, a, 'shared');
    const qb = build(factory, { limit: 2, period: 'day' }, b, 'shared');
    assert.equal(await statusOf(qa, exchange({ consumer: bob })), 200);
    assert.equal(await statusOf(qb, exchange({ consumer: bob })), 200);
    assert.equal(await statusOf(qa, exchange({ consumer: bob })), 429);
    a.clock.now = Date.parse('2030-07-01T00:00:01Z');
    assert.equal(await statusOf(qa, exchange({ consumer: bob })), 200);
    await qa.close?.();
    await qb.close?.();
  });
});
