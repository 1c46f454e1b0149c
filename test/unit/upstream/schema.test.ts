import assert from 'node:assert/strict';
import { it } from 'node:test';
import { upstream } from '../../../src/upstream/schema.ts';

it('schema: { name, targets } stays valid and gets documented defaults', () => {
  const u = upstream.parse({ name: 'a', targets: [{ url: 'http://127.0.0.1:1' }] });
  assert.equal(u.balance, 'least-request');
  assert.equal(u.hashOn, undefined);
  assert.deepEqual(u.health.passive, {
    consecutiveFailures: 5,
    ejectFor: 30_000,
    maxEjectFor: 300_000,
    maxEjectionPercent: 50,
  });
  assert.equal(u.health.active, undefined);
  assert.deepEqual(u.retries, {
    attempts: 3,
    on: ['connect-failure', 'reset'],
    perTryTimeout: 0,
    budget: { percent: 20, minConcurrency: 3 },
    nonIdempotent: false,
  });
  assert.equal(u.slowStart, undefined);
  assert.equal(u.sticky, undefined);
  assert.equal(u.circuitBreaker, undefined);
  assert.equal(u.discovery, undefined);
});

it('schema: parses the full set of settings with units', () => {
  const u = upstream.parse({
    name: 'a',
    balance: 'consistent-hash',
    hashOn: { header: 'x-user' },
    targets: [{ url: 'http://127.0.0.1:1', weight: 2 }],
    health: {
      active: { path: '/healthz', interval: '5s', timeout: '1s', expectedStatuses: [200, '204-299'], host: 'svc' },
      passive: { consecutiveFailures: 3, ejectFor: '10s' },
    },
    slowStart: { window: '30s' },
    retries: { attempts: 2, on: ['connect-failure', 502, 503], perTryTimeout: '2s', budget: { percent: 10 } },
    circuitBreaker: { maxRequests: 100, maxPending: 10, maxConnections: 50, maxRequestsPerTarget: 40 },
    sticky: { ttl: '1h', secret: '0123456789abcdef' },
    discovery: { resolveEvery: '10s' },
  });
  assert.equal(u.health.active?.interval, 5000);
  assert.equal(u.health.active?.healthyThreshold, 2);
  assert.equal(u.health.passive.ejectFor, 10_000);
  assert.equal(u.slowStart?.window, 30_000);
  assert.equal(u.retries.perTryTimeout, 2000);
  assert.deepEqual(u.retries.budget, { percent: 10, minConcurrency: 3 });
  assert.equal(u.sticky?.cookie, 'portico_sticky');
  assert.equal(u.sticky?.ttl, 3_600_000);
  assert.equal(u.discovery?.resolveEvery, 10_000);
});

it('schema: rejects unknown keys, hashOn without consistent-hash and bad values', () => {
  const base = { name: 'a', targets: [{ url: 'http://127.0.0.1:1' }] };
  assert.equal(upstream.safeParse({ ...base, retries: { tries: 2 } }).success, false);
  assert.equal(upstream.safeParse({ ...base, hashOn: 'path' }).success, false);
  assert.equal(upstream.safeParse({ ...base, balance: 'consistent-hash', hashOn: 'path' }).success, true);
  assert.equal(upstream.safeParse({ ...base, balance: 'consistent-hash', hashOn: { query: 'x' } }).success, false);
  assert.equal(upstream.safeParse({ ...base, health: { active: { expectedStatuses: ['2xx'] } } }).success, false);
  assert.equal(upstream.safeParse({ ...base, sticky: { secret: 'short' } }).success, false);
  assert.equal(upstream.safeParse({ ...base, retries: { on: ['sometimes'] } }).success, false);
});
