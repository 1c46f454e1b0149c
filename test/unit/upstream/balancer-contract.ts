/**
 * @module The contract every Balancer passes (run by each balancer's test), plus test doubles: a Target
 * whose availability and load the test sets, and a seeded random source.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Balancer, BalancerDeps } from '../../../src/upstream/balancers/balancer.ts';
import type { PickHint, Target } from '../../../src/upstream/types.ts';

export class FakeTarget implements Target {
  readonly key: string;
  readonly origin: string;
  readonly host = '127.0.0.1';
  readonly port: number;
  weight: number;
  active = 0;
  up = true;
  constructor(port: number, weight = 1) {
    this.port = port;
    this.key = `http://127.0.0.1:${port}`;
    this.origin = this.key;
    this.weight = weight;
  }
  available(): boolean {
    return this.up;
  }
}

/** Mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeTargets(n: number, weights: readonly number[] = []): FakeTarget[] {
  return Array.from({ length: n }, (_, i) => new FakeTarget(9000 + i, weights[i] ?? 1));
}

export function deps(seed = 1): BalancerDeps {
  return { random: seeded(seed), weightOf: (t) => t.weight };
}

/** Counts picks per target key over `n` picks. */
export function tally(b: Balancer, targets: readonly Target[], n: number, hint: (i: number) => PickHint = () => ({})) {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const t = b.pick(targets, hint(i));
    if (t !== undefined) counts.set(t.key, (counts.get(t.key) ?? 0) + 1);
  }
  return counts;
}

/** A hint with a hash key, so hash-based balancers exercise their keyed path too. */
const keyed = (i: number): PickHint => ({ hashKey: `client-${i}` });

export function runBalancerContract(name: string, create: (deps: BalancerDeps) => Balancer): void {
  describe(`${name}: Balancer contract`, () => {
    it('returns undefined for an empty list', () => {
      const b = create(deps());
      assert.equal(b.pick([], {}), undefined);
      assert.equal(b.pick([], { hashKey: 'k' }), undefined);
    });

    it('returns undefined when every target is unavailable or excluded', () => {
      const b = create(deps());
      const ts = makeTargets(4);
      for (const t of ts) t.up = false;
      assert.equal(b.pick(ts, {}), undefined);
      assert.equal(b.pick(ts, { hashKey: 'k' }), undefined);
      for (const t of ts) t.up = true;
      assert.equal(b.pick(ts, { exclude: new Set(ts) }), undefined);
      assert.equal(b.pick(ts, { hashKey: 'k', exclude: new Set(ts) }), undefined);
    });

    it('never picks an unavailable or excluded target, and picks only from the list', () => {
      const b = create(deps(7));
      const ts = makeTargets(6, [1, 2, 3, 1, 2, 3]);
      const rnd = seeded(99);
      for (let i = 0; i < 2000; i++) {
        for (const t of ts) t.up = rnd() < 0.6;
        const exclude = new Set<Target>(ts.filter(() => rnd() < 0.2));
        const hint: PickHint = i % 2 === 0 ? { exclude } : { exclude, hashKey: `k${i}` };
        const got = b.pick(ts, hint);
        const any = ts.some((t) => t.up && !exclude.has(t));
        if (!any) {
          assert.equal(got, undefined);
          continue;
        }
        assert.ok(got !== undefined, 'a usable target exists, so one is picked');
        assert.ok(ts.includes(got as FakeTarget));
        assert.ok(got.available());
        assert.ok(!exclude.has(got));
      }
    });

    it('picks the only usable target', () => {
      const b = create(deps());
      const ts = makeTargets(5);
      for (const t of ts) t.up = false;
      ts[3]!.up = true;
      for (let i = 0; i < 20; i++) {
        assert.equal(b.pick(ts, {}), ts[3]);
        assert.equal(b.pick(ts, keyed(i)), ts[3]);
      }
    });

    it('follows a changed target list', () => {
      const b = create(deps());
      const first = makeTargets(3);
      for (let i = 0; i < 10; i++) b.pick(first, keyed(i));
      const second = [new FakeTarget(7000), new FakeTarget(7001)];
      for (let i = 0; i < 50; i++) {
        assert.ok(second.includes(b.pick(second, {}) as FakeTarget));
        assert.ok(second.includes(b.pick(second, keyed(i)) as FakeTarget));
      }
    });

    it('reaches every usable target', () => {
      const b = create(deps(3));
      const ts = makeTargets(4);
      const counts = tally(b, ts, 400, keyed);
      assert.equal(counts.size, 4, `picked ${[...counts.keys()].join(', ')}`);
    });

    it('is deterministic for a given random seed', () => {
      const ts = makeTargets(5, [1, 2, 1, 3, 1]);
      const a = create(deps(42));
      const b = create(deps(42));
      for (let i = 0; i < 200; i++) assert.equal(a.pick(ts, keyed(i)), b.pick(ts, keyed(i)));
    });
  });
}
