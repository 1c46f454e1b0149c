import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createWeighted } from '../../../src/upstream/balancers/weighted.ts';
import { deps, makeTargets, runBalancerContract, tally } from './balancer-contract.ts';

runBalancerContract('weighted', createWeighted);

it('weighted: follows nginx smooth weighted round-robin (5,1,1 → a a b a c a a)', () => {
  const ts = makeTargets(3, [5, 1, 1]);
  const b = createWeighted(deps());
  const names = new Map(ts.map((t, i) => [t, 'abc'[i]!]));
  const seq = Array.from({ length: 7 }, () => names.get(b.pick(ts, {}) as (typeof ts)[number])).join(' ');
  assert.equal(seq, 'a a b a c a a');
});

it('weighted: shares are exactly proportional to weight over whole cycles', () => {
  const ts = makeTargets(3, [3, 2, 1]);
  const counts = tally(createWeighted(deps()), ts, 600);
  assert.deepEqual([...counts.values()], [300, 200, 100]);
});

it('weighted: uses the effective weight (slow start) from its deps', () => {
  const ts = makeTargets(2, [4, 4]);
  // The second target is ramping at a quarter of its weight.
  const b = createWeighted({ random: Math.random, weightOf: (t) => (t === ts[1] ? 1 : t.weight) });
  const counts = tally(b, ts, 500);
  assert.deepEqual([...counts.values()], [400, 100]);
});
