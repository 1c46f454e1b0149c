import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createRoundRobin } from '../../../src/upstream/balancers/round-robin.ts';
import { makeTargets, runBalancerContract, tally } from './balancer-contract.ts';

runBalancerContract('round-robin', createRoundRobin);

it('round-robin: gives each target exactly its turn, ignoring weights', () => {
  const ts = makeTargets(3, [1, 5, 1]);
  const counts = tally(createRoundRobin(), ts, 300);
  assert.deepEqual([...counts.values()], [100, 100, 100]);
});

it('round-robin: shares evenly among the available targets', () => {
  const ts = makeTargets(4);
  ts[1]!.up = false;
  const counts = tally(createRoundRobin(), ts, 300);
  assert.equal(counts.get(ts[1]!.key), undefined);
  assert.deepEqual([...counts.values()], [100, 100, 100]);
});
