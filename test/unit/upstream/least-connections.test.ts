import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createLeastConnections } from '../../../src/upstream/balancers/least-connections.ts';
import { deps, makeTargets, runBalancerContract, tally } from './balancer-contract.ts';

runBalancerContract('least-connections', createLeastConnections);

it('least-connections: picks the target with the fewest in flight', () => {
  const ts = makeTargets(3);
  ts[0]!.active = 5;
  ts[1]!.active = 2;
  ts[2]!.active = 7;
  const b = createLeastConnections(deps());
  for (let i = 0; i < 50; i++) assert.equal(b.pick(ts, {}), ts[1]);
});

it('least-connections: counts load per unit of weight', () => {
  const ts = makeTargets(2, [1, 4]);
  ts[0]!.active = 1; // (1+1)/1 = 2
  ts[1]!.active = 5; // (5+1)/4 = 1.5
  assert.equal(createLeastConnections(deps()).pick(ts, {}), ts[1]);
});

it('least-connections: spreads ties evenly (each within ±10% of its share over 3000 picks)', () => {
  const ts = makeTargets(3);
  const counts = tally(createLeastConnections(deps(5)), ts, 3000);
  for (const c of counts.values()) assert.ok(Math.abs(c - 1000) <= 100, `count ${c}`);
});
