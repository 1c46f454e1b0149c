import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createConsistentHash } from '../../../src/upstream/balancers/consistent-hash.ts';
import type { Target } from '../../../src/upstream/types.ts';
import { deps, FakeTarget, makeTargets, runBalancerContract } from './balancer-contract.ts';

runBalancerContract('consistent-hash', createConsistentHash);

const KEYS = Array.from({ length: 20_000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);

function assign(targets: readonly Target[]): Map<string, string> {
  const b = createConsistentHash(deps());
  return new Map(KEYS.map((k) => [k, b.pick(targets, { hashKey: k })!.key]));
}

it('consistent-hash: a key always maps to the same target, whatever the list order', () => {
  const ts = makeTargets(5);
  const a = assign(ts);
  const b = assign([...ts].reverse());
  assert.deepEqual(a, b);
});

it('consistent-hash: shares are even (each of 4 within ±10% of 1/4)', () => {
  const counts = new Map<string, number>();
  for (const key of assign(makeTargets(4)).values()) counts.set(key, (counts.get(key) ?? 0) + 1);
  for (const c of counts.values()) assert.ok(Math.abs(c - 5000) <= 500, `count ${c}`);
});

it('consistent-hash: weights 1:3 give shares within ±3 points of 25% and 75%', () => {
  const ts = makeTargets(2, [1, 3]);
  let first = 0;
  for (const key of assign(ts).values()) if (key === ts[0]!.key) first++;
  assert.ok(Math.abs(first / KEYS.length - 0.25) <= 0.03, `share ${first / KEYS.length}`);
});

// Maglev trades a little extra churn for even shares: the stated tolerance is that ≥ 95% of moved keys move
// to or from the changed target.
it('consistent-hash: adding a fifth target moves about 1/5 of the keys, nearly all to it', () => {
  const four = makeTargets(4);
  const added = new FakeTarget(9100);
  const before = assign(four);
  const after = assign([...four, added]);
  let moved = 0;
  let toAdded = 0;
  for (const [k, v] of after) {
    if (before.get(k) === v) continue;
    moved++;
    if (v === added.key) toAdded++;
  }
  const share = moved / KEYS.length;
  assert.ok(share > 0.15 && share < 0.25, `moved ${share}`);
  assert.ok(toAdded / moved >= 0.95, `to the new target ${toAdded / moved}`);
});

it('consistent-hash: removing a target moves its keys and few others', () => {
  const ts = makeTargets(5);
  const before = assign(ts);
  const after = assign(ts.slice(0, 4));
  let moved = 0;
  let fromRemoved = 0;
  for (const [k, v] of after) {
    if (before.get(k) === v) continue;
    moved++;
    if (before.get(k) === ts[4]!.key) fromRemoved++;
  }
  assert.ok(moved / KEYS.length < 0.25, `moved ${moved / KEYS.length}`);
  assert.ok(fromRemoved / moved >= 0.95, `from the removed target ${fromRemoved / moved}`);
});

it('consistent-hash: an unavailable target’s keys spread over the others and come back', () => {
  const ts = makeTargets(4);
  const b = createConsistentHash(deps());
  const before = new Map(KEYS.map((k) => [k, b.pick(ts, { hashKey: k })]));
  ts[0]!.up = false;
  const spread = new Set<Target>();
  for (const k of KEYS) {
    const t = b.pick(ts, { hashKey: k })!;
    if (before.get(k) === ts[0]) spread.add(t);
    else assert.equal(t, before.get(k), 'keys of live targets stay put');
  }
  assert.equal(spread.size, 3);
  ts[0]!.up = true;
  for (const k of KEYS) assert.equal(b.pick(ts, { hashKey: k }), before.get(k));
});
