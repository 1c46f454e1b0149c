import assert from 'node:assert/strict';
import { it } from 'node:test';
import { UpstreamLoad } from '../../../src/upstream/circuit-breaker.ts';
import { isIdempotent, UpstreamRetryPolicy } from '../../../src/upstream/retry.ts';
import { upstreamConfig } from './fixtures.ts';

const targets = [{ url: 'http://127.0.0.1:1' }];

function policy(retries: Record<string, unknown> = {}, load = new UpstreamLoad()) {
  return new UpstreamRetryPolicy(upstreamConfig({ targets, retries }).retries, load);
}

it('retry: idempotent methods per RFC 9110', () => {
  for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']) assert.ok(isIdempotent(m), m);
  for (const m of ['POST', 'PATCH', 'CONNECT']) assert.ok(!isIdempotent(m), m);
});

it('retry: defaults retry connect failures (any method) and resets (idempotent only)', () => {
  const p = policy();
  assert.equal(p.attempts, 3);
  assert.ok(p.canRetry('GET', { kind: 'connect-failure' }, 1));
  assert.ok(p.canRetry('POST', { kind: 'connect-failure' }, 1));
  assert.ok(p.canRetry('GET', { kind: 'reset' }, 1));
  assert.ok(!p.canRetry('POST', { kind: 'reset' }, 1));
  assert.ok(!p.canRetry('GET', { kind: 'timeout' }, 1));
  assert.ok(!p.canRetry('GET', { kind: 'response', status: 503 }, 1));
  assert.ok(!p.canRetry('GET', { kind: 'cancelled' }, 1));
});

it('retry: stops after `attempts` tries', () => {
  const p = policy({ attempts: 2 });
  assert.ok(p.canRetry('GET', { kind: 'reset' }, 1));
  assert.ok(!p.canRetry('GET', { kind: 'reset' }, 2));
  assert.ok(!policy({ attempts: 1 }).canRetry('GET', { kind: 'connect-failure' }, 1));
});

it('retry: configured statuses and timeouts; nonIdempotent opens them to POST', () => {
  const p = policy({ on: [502, 503, 'timeout'] });
  assert.ok(p.canRetry('GET', { kind: 'response', status: 503 }, 1));
  assert.ok(!p.canRetry('GET', { kind: 'response', status: 500 }, 1));
  assert.ok(p.canRetry('GET', { kind: 'timeout' }, 1));
  assert.ok(!p.canRetry('GET', { kind: 'connect-failure' }, 1));
  assert.ok(!p.canRetry('POST', { kind: 'response', status: 503 }, 1));
  assert.ok(policy({ on: [503], nonIdempotent: true }).canRetry('POST', { kind: 'response', status: 503 }, 1));
});

it('retry: the budget caps retries in flight at max(minConcurrency, percent × active)', () => {
  const load = new UpstreamLoad();
  const p = policy({ budget: { percent: 20, minConcurrency: 2 } }, load);
  const reset = { kind: 'reset' } as const;
  load.active = 5;
  load.retries = 1;
  assert.ok(p.canRetry('GET', reset, 1), 'below the minimum concurrency');
  load.retries = 2;
  assert.ok(!p.canRetry('GET', reset, 1), 'at the minimum, 20% of 5 is 1');
  assert.equal(p.budgetExhausted, 1);
  load.active = 100;
  load.retries = 19;
  assert.ok(p.canRetry('GET', reset, 1), '19 < 20% of 100');
  load.retries = 20;
  assert.ok(!p.canRetry('GET', reset, 1));
  assert.equal(p.budgetExhausted, 2);
});
