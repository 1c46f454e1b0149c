/**
 * @module Least request by the power of two choices (Envoy's default): draw two distinct usable targets at
 * random and keep the one with fewer in-flight requests per unit of weight. Near least-loaded results at
 * O(n) without a full scan for the minimum, and no herd onto one idle target.
 */
import type { PickHint, Target } from '../types.ts';
import { type Balancer, type BalancerDeps, countUsable, defaultDeps, nthUsable } from './balancer.ts';

export function createLeastRequest(deps: BalancerDeps = defaultDeps): Balancer {
  return {
    pick(targets: readonly Target[], hint: PickHint): Target | undefined {
      const n = countUsable(targets, hint);
      if (n === 0) return undefined;
      if (n === 1) return nthUsable(targets, hint, 0);
      const r1 = Math.floor(deps.random() * n);
      let r2 = Math.floor(deps.random() * (n - 1));
      if (r2 >= r1) r2++;
      const a = nthUsable(targets, hint, r1)!;
      const b = nthUsable(targets, hint, r2)!;
      const loadA = (a.active + 1) / deps.weightOf(a);
      const loadB = (b.active + 1) / deps.weightOf(b);
      return loadB < loadA ? b : a;
    },
  };
}
