import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createLeastRequest } from '../../../src/upstream/balancers/least-request.ts';
import type { Target } from '../../../src/upstream/types.ts';
import { deps, makeTargets, runBalancerContract, seeded, tally } from './balancer-contract.ts';

runBalancerContract('least-request', createLeastRequest);

it('least-request: idle equal targets share evenly (each within ±5% of its share over 30000 picks)', () => {
  const ts = makeTargets(3);
  const counts = tally(createLeastRequest(deps(11)), ts, 30_000);
  for (const c of counts.values()) assert.ok(Math.abs(c - 10_000) <= 500, `count ${c}`);
});

it('least-request: the busiest target loses every pair it is drawn in', () => {
  const ts = makeTargets(3);
  ts[2]!.active = 10;
  const counts = tally(createLeastRequest(deps(2)), ts, 3000);
  assert.equal(counts.get(ts[2]!.key), undefined);
});

it('least-request: under simulated load a heavier target carries more, a slow one less', () => {
  const ts = makeTargets(3, [1, 1, 2]);
  const b = createLeastRequest(deps(8));
  const rnd = seeded(4);
  const inFlight: Target[] = [];
  const served = new Map<Target, number>();
  for (let step = 0; step < 20_000; step++) {
    const t = b.pick(ts, {})!;
    (t as (typeof ts)[number]).active++;
    inFlight.push(t);
    served.set(t, (served.get(t) ?? 0) + 1);
    // Target 0 is slow: its requests finish a third as often as the others'.
    for (let i = inFlight.length - 1; i >= 0; i--) {
      const x = inFlight[i]!;
      if (rnd() < (x === ts[0] ? 0.1 : 0.3)) {
        (x as (typeof ts)[number]).active--;
        inFlight.splice(i, 1);
      }
    }
  }
  const [slow, normal, heavy] = ts.map((t) => served.get(t) ?? 0);
  assert.ok(slow! < normal!, `slow ${slow} < normal ${normal}`);
  assert.ok(heavy! > normal!, `heavy ${heavy} > normal ${normal}`);
});
