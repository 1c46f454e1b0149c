import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createPool } from '../../../src/upstream/pool.ts';
import type { AttemptOutcome } from '../../../src/upstream/types.ts';
import { ManualClock, upstreamConfig } from './fixtures.ts';

const targets = [1, 2, 3, 4].map((i) => ({ url: `http://127.0.0.1:900${i}` }));
const failure: AttemptOutcome = { kind: 'response', status: 502 };
const ok: AttemptOutcome = { kind: 'response', status: 404 };

function pool(passive: Record<string, unknown>, n = 4) {
  const clock = new ManualClock();
  const p = createPool(upstreamConfig({ targets: targets.slice(0, n), health: { passive } }), { now: clock.now });
  const hit = (i: number, outcome: AttemptOutcome, times = 1) => {
    for (let k = 0; k < times; k++) p.begin(p.targets[i]!)(outcome);
  };
  return { p, clock, hit };
}

it('outlier: consecutive failures eject; any non-5xx answer resets the count; cancels say nothing', () => {
  const { p, hit } = pool({ consecutiveFailures: 3 });
  const t = p.targets[0]!;
  hit(0, failure, 2);
  hit(0, { kind: 'cancelled' });
  hit(0, ok);
  hit(0, { kind: 'connect-failure' }, 2);
  assert.ok(t.available(), 'the 404 reset the count');
  hit(0, { kind: 'reset' });
  assert.ok(!t.available(), 'three in a row: ejected');
  assert.equal(p.outliers.ejected, 1);
  p.close();
});

it('outlier: the n-th ejection in a row lasts n × ejectFor, capped at maxEjectFor', () => {
  const { p, clock, hit } = pool({ consecutiveFailures: 1, ejectFor: '10s', maxEjectFor: '25s' });
  const t = p.targets[0]!;
  const lengths: number[] = [];
  for (let n = 0; n < 4; n++) {
    hit(0, { kind: 'timeout' });
    const start = clock.ms;
    let waited = 0;
    while (!t.available() && waited < 60_000) {
      clock.advance(1000);
      waited += 1000;
    }
    lengths.push(clock.ms - start);
  }
  assert.deepEqual(lengths, [10_000, 20_000, 25_000, 25_000]);
  // In long enough (past maxEjectFor), the next ejection starts over at ejectFor.
  clock.advance(26_000);
  hit(0, failure);
  assert.equal(t.ejectedUntil - clock.ms, 10_000);
  p.close();
});

it('outlier: maxEjectionPercent caps how much of the pool is out at once', () => {
  const { p, hit } = pool({ consecutiveFailures: 1, maxEjectionPercent: 50 });
  for (let i = 0; i < 4; i++) hit(i, failure);
  assert.deepEqual(
    p.targets.map((t) => t.available()),
    [false, false, true, true],
  );
  assert.equal(p.outliers.skipped, 2);
  p.close();
});

it('outlier: at least one target may be ejected, but never the last available one', () => {
  const { p, hit } = pool({ consecutiveFailures: 1, maxEjectionPercent: 0 }, 2);
  hit(0, failure);
  assert.ok(!p.targets[0]!.available(), 'one ejection is allowed even at 0%');
  const single = pool({ consecutiveFailures: 1, maxEjectionPercent: 100 }, 1);
  single.hit(0, failure, 5);
  assert.ok(single.p.targets[0]!.available(), 'the only target stays in');
  p.close();
  single.p.close();
});

it('outlier: consecutiveFailures 0 turns ejection off', () => {
  const { p, hit } = pool({ consecutiveFailures: 0 });
  hit(0, failure, 100);
  assert.ok(p.targets[0]!.available());
  p.close();
});

it('outlier: an ejected target comes back when its time is up', () => {
  const { p, clock, hit } = pool({ consecutiveFailures: 2, ejectFor: '30s' });
  hit(1, failure, 2);
  for (let i = 0; i < 50; i++) assert.notEqual(p.pick({}), p.targets[1]);
  clock.advance(30_000);
  assert.ok(p.targets[1]!.available());
  p.close();
});
