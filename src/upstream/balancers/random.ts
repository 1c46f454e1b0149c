/** @module Weighted random: each usable target with probability weight / total weight. */
import type { PickHint, Target } from '../types.ts';
import { type Balancer, type BalancerDeps, defaultDeps, usable } from './balancer.ts';

export function createRandom(deps: BalancerDeps = defaultDeps): Balancer {
  return {
    pick(targets: readonly Target[], hint: PickHint): Target | undefined {
      let total = 0;
      for (let i = 0; i < targets.length; i++) {
        const t = targets[i]!;
        if (usable(t, hint)) total += deps.weightOf(t);
      }
      if (total === 0) return undefined;
      let r = deps.random() * total;
      let last: Target | undefined;
      for (let i = 0; i < targets.length; i++) {
        const t = targets[i]!;
        if (!usable(t, hint)) continue;
        last = t;
        r -= deps.weightOf(t);
        if (r < 0) return t;
      }
      return last; // float rounding left r at 0
    },
  };
}
