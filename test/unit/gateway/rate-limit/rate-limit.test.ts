/** @module rate-limit policy with the memory store: accept/reject, headers, shadow mode, plans, keys, config. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { factory } from '../../../../src/gateway/rate-limit/index.ts';
import { createMemoryStore } from '../../../../src/state/memory.ts';
import { build, consumer, exchange, run, statusOf, testDeps } from './fixtures.ts';

function setup(raw: Record<string, unknown>) {
  const deps = testDeps(createMemoryStore({ sweepEveryMs: 0 }));
  const policy = build(factory, { type: 'rate-limit', ...raw }, deps);
  return { deps, policy };
}

describe('rate-limit', () => {
  it('admits the limit, then replies 429 GW_RATE_LIMITED with Retry-After', async () => {
    const { policy } = setup({ limit: 3, per: '1m', key: 'client-ip' });
    for (let i = 0; i < 3; i++) assert.equal(await statusOf(policy), 200);
    const v = await run(policy, exchange());
    assert.equal(v.kind, 'reply');
    if (v.kind !== 'reply') return;
    assert.equal(v.reply.status, 429);
    assert.equal(v.reply.code, 'GW_RATE_LIMITED');
    assert.equal(v.reply.details, 'rate_limited:rl');
    assert.ok(Number(v.reply.headers?.['retry-after']) >= 1);
  });

  it('sets RateLimit-Policy and RateLimit headers (draft-ietf-httpapi-ratelimit-headers)', async () => {
    const { policy, deps } = setup({ limit: 100, per: '1m', key: 'client-ip' });
    const ex = exchange();
    await run(policy, ex);
    assert.equal(ex.replyHeaders['ratelimit-policy'], '"rl";q=100;w=60');
    assert.match(ex.replyHeaders.ratelimit!, /^"rl";r=99;t=\d+$/);
    // Two policies on one route append list members.
    const other = build(factory, { limit: 5, per: '1s', key: 'route' }, deps, 'burst');
    await run(other, ex);
    assert.equal(ex.replyHeaders['ratelimit-policy'], '"rl";q=100;w=60, "burst";q=5;w=1');
    assert.match(ex.replyHeaders.ratelimit!, /^"rl";r=99;t=\d+, "burst";r=4;t=\d+$/);
  });

  it('token bucket: burst up front, then the refill rate on the injected clock', async () => {
    const { policy, deps } = setup({ limit: 10, per: '1s', burst: 3, key: 'client-ip' });
    for (let i = 0; i < 3; i++) assert.equal(await statusOf(policy), 200);
    assert.equal(await statusOf(policy), 429);
    deps.clock.now += 100;
    assert.equal(await statusOf(policy), 200);
    assert.equal(await statusOf(policy), 429);
  });

  it('sliding window forgets after the window passes', async () => {
    const { policy, deps } = setup({ limit: 2, per: '10s', key: 'client-ip' });
    assert.equal(await statusOf(policy), 200);
    assert.equal(await statusOf(policy), 200);
    assert.equal(await statusOf(policy), 429);
    deps.clock.now += 20_000;
    assert.equal(await statusOf(policy), 200);
  });

  it('shadow mode counts and logs but never blocks and sends no headers', async () => {
    const { policy, deps } = setup({ limit: 1, per: '1m', key: 'client-ip', enforce: false });
    const ex = exchange();
    for (let i = 0; i < 3; i++) assert.equal(await statusOf(policy, ex), 200);
    assert.deepEqual(ex.replyHeaders, {});
    const shadow = deps.logs.filter((l) => l.level === 'info');
    assert.equal(shadow.length, 2);
    assert.equal((shadow[0]!.obj as { policy: string }).policy, 'rl');
  });

  it('plans override the limit per consumer group (first matching plan wins)', async () => {
    const { policy } = setup({
      limit: 1,
      per: '1m',
      key: 'consumer',
      plans: { gold: { limit: 3 }, silver: { limit: 2 } },
    });
    const gold = consumer('acme', ['silver', 'gold']);
    const free = consumer('bob');
    for (let i = 0; i < 3; i++) assert.equal(await statusOf(policy, exchange({ consumer: gold })), 200);
    assert.equal(await statusOf(policy, exchange({ consumer: gold })), 429);
    assert.equal(await statusOf(policy, exchange({ consumer: free })), 200);
    assert.equal(await statusOf(policy, exchange({ consumer: free })), 429);
    const ex = exchange({ consumer: consumer('other', ['gold']) });
    await run(policy, ex);
    assert.equal(ex.replyHeaders['ratelimit-policy'], '"rl.gold";q=3;w=60');
  });

  it('keys: consumer, header, claim, route and combinations are separate buckets', async () => {
    const { policy } = setup({ limit: 1, per: '1m', key: ['header:x-tenant', 'claim:sub'] });
    const a = () => exchange({ headers: { 'x-tenant': 't1' }, claims: { sub: 'u1' } });
    const b = () => exchange({ headers: { 'x-tenant': 't1' }, claims: { sub: 'u2' } });
    assert.equal(await statusOf(policy, a()), 200);
    assert.equal(await statusOf(policy, a()), 429);
    assert.equal(await statusOf(policy, b()), 200);

    const byRoute = setup({ limit: 1, per: '1m', key: 'route' }).policy;
    assert.equal(await statusOf(byRoute, exchange({ route: 'x', ip: '10.0.0.1' })), 200);
    assert.equal(await statusOf(byRoute, exchange({ route: 'x', ip: '10.0.0.2' })), 429);
    assert.equal(await statusOf(byRoute, exchange({ route: 'y' })), 200);
  });

  it('a missing key part falls back to the client IP, not to one shared bucket', async () => {
    const { policy } = setup({ limit: 1, per: '1m', key: 'consumer' });
    assert.equal(await statusOf(policy, exchange({ ip: '10.0.0.1' })), 200);
    assert.equal(await statusOf(policy, exchange({ ip: '10.0.0.1' })), 429);
    assert.equal(await statusOf(policy, exchange({ ip: '10.0.0.2' })), 200);
    // A consumer named like an IP does not share the IP's bucket.
    assert.equal(await statusOf(policy, exchange({ ip: '10.0.0.1', consumer: consumer('10.0.0.1') })), 200);
  });

  it('with the memory store the hook answers synchronously (no promise per request)', () => {
    const { policy } = setup({ limit: 2, per: '1m', key: 'consumer', plans: { gold: { limit: 3 } } });
    const gold = consumer('acme', ['gold']);
    const statuses: string[] = [];
    for (let i = 0; i < 4; i++) {
      const ex = exchange({ consumer: gold });
      const v = policy.onRequest!(ex);
      assert.ok(!(v instanceof Promise));
      statuses.push(v.kind);
      if (i === 0) assert.match(ex.replyHeaders.ratelimit!, /^"rl\.gold";r=2;t=\d+$/);
    }
    assert.deepEqual(statuses, ['continue', 'continue', 'continue', 'reply']);
    // The per-consumer key cache keeps consumers apart, and anonymous callers still count by IP.
    assert.equal((policy.onRequest!(exchange({ consumer: consumer('bob') })) as { kind: string }).kind, 'continue');
    assert.equal((policy.onRequest!(exchange({ ip: '10.9.9.9' })) as { kind: string }).kind, 'continue');
  });

  it('rejects bad config with paths', () => {
    const bad = factory.parse({
      limit: 0,
      per: 'soon',
      key: 'cookie:x',
      burst: 5,
      algorithm: 'sliding-window',
      nope: 1,
    });
    assert.equal(bad.ok, false);
    if (bad.ok) return;
    const paths = bad.issues.map((i) => i.path).sort();
    assert.deepEqual(paths, ['', 'key', 'limit', 'per']);
    const burst = factory.parse({ limit: 1, per: '1s', burst: 5, algorithm: 'sliding-window' });
    assert.equal(burst.ok, false);
    if (!burst.ok) assert.equal(burst.issues[0]!.path, 'burst');
    const ok = factory.parse({ type: 'rate-limit', limit: 1, per: '1s' });
    assert.equal(ok.ok, true);
  });
});
