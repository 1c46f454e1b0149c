import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createRandom } from '../../../src/upstream/balancers/random.ts';
import { deps, makeTargets, runBalancerContract, tally } from './balancer-contract.ts';

runBalancerContract('random', createRandom);

it('random: shares follow weights 1:2:3 within ±2 points over 60000 picks', () => {
  const ts = makeTargets(3, [1, 2, 3]);
  const counts = tally(createRandom(deps(21)), ts, 60_000);
  ts.forEach((t, i) => {
    const share = (counts.get(t.key) ?? 0) / 60_000;
    assert.ok(Math.abs(share - (i + 1) / 6) <= 0.02, `${t.key} share ${share}`);
  });
});
