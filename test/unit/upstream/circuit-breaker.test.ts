import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createPool } from '../../../src/upstream/pool.ts';
import { upstreamConfig } from './fixtures.ts';

const two = [{ url: 'http://127.0.0.1:1' }, { url: 'http://127.0.0.1:2' }];

it('circuit breaker: per-target maxRequests makes a full target unavailable → overloaded', () => {
  const pool = createPool(upstreamConfig({ targets: two, circuitBreaker: { maxRequestsPerTarget: 2 } }));
  const ends = [];
  for (let i = 0; i < 4; i++) ends.push(pool.begin(pool.pick({})!));
  assert.deepEqual(
    pool.targets.map((t) => t.active),
    [2, 2],
  );
  assert.equal(pool.pick({}), undefined);
  assert.equal(pool.noTargetReason({}), 'overloaded');
  ends[0]!({ kind: 'response', status: 200 });
  assert.ok(pool.pick({}) !== undefined);
  pool.close();
});

it('circuit breaker: upstream maxRequests refuses picks while at the limit', () => {
  const pool = createPool(upstreamConfig({ targets: two, circuitBreaker: { maxRequests: 3 } }));
  const ends = [1, 2, 3].map(() => pool.begin(pool.pick({})!));
  assert.equal(pool.pick({}), undefined);
  assert.equal(pool.noTargetReason({}), 'overloaded');
  assert.equal(pool.load.overloaded, 1);
  for (const end of ends) end({ kind: 'response', status: 200 });
  assert.equal(pool.load.active, 0);
  assert.ok(pool.pick({}) !== undefined);
  pool.close();
});

it('circuit breaker: attempts beyond maxConnectionsPerTarget count as pending and maxPending caps them', () => {
  const pool = createPool(
    upstreamConfig({ targets: [two[0]], maxConnectionsPerTarget: 2, circuitBreaker: { maxPending: 1 } }),
  );
  const t = pool.targets[0]!;
  const a = pool.begin(t);
  const b = pool.begin(t);
  assert.deepEqual([pool.load.connections, pool.load.pending], [2, 0]);
  const c = pool.begin(t);
  assert.deepEqual([pool.load.connections, pool.load.pending], [2, 1]);
  assert.equal(pool.pick({}), undefined, 'a second pending request is refused');
  c({ kind: 'response', status: 200 });
  assert.deepEqual([pool.load.connections, pool.load.pending], [2, 0]);
  a({ kind: 'response', status: 200 });
  b({ kind: 'response', status: 200 });
  assert.deepEqual([pool.load.connections, pool.load.pending, pool.load.active], [0, 0, 0]);
  pool.close();
});

it('circuit breaker: upstream maxConnections', () => {
  const pool = createPool(upstreamConfig({ targets: two, circuitBreaker: { maxConnections: 1 } }));
  const end = pool.begin(pool.pick({})!);
  assert.equal(pool.pick({}), undefined);
  end({ kind: 'reset' });
  assert.ok(pool.pick({}) !== undefined);
  pool.close();
});

it('no target: unavailable when every target is down, not full', () => {
  const pool = createPool(upstreamConfig({ targets: two }));
  for (const t of pool.targets) t.healthy = false;
  assert.equal(pool.pick({}), undefined);
  assert.equal(pool.noTargetReason({}), 'unavailable');
  pool.close();
});
