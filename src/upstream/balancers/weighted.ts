/**
 * @module Smooth weighted round-robin (nginx): every pick adds each usable target's weight to its running
 * score, takes the highest score and subtracts the total from it. Weights 5,1,1 give a a b a c a a, not
 * a a a a a b c, so a heavy target never gets a burst.
 */
import type { PickHint, Target } from '../types.ts';
import { type Balancer, type BalancerDeps, defaultDeps, usable } from './balancer.ts';

export function createWeighted(deps: BalancerDeps = defaultDeps): Balancer {
  let list: readonly Target[] = [];
  let current = new Float64Array(0);
  return {
    pick(targets: readonly Target[], hint: PickHint): Target | undefined {
      if (targets !== list) {
        list = targets;
        current = new Float64Array(targets.length);
      }
      let total = 0;
      let best = -1;
      for (let i = 0; i < targets.length; i++) {
        const t = targets[i]!;
        if (!usable(t, hint)) continue;
        const w = deps.weightOf(t);
        current[i]! += w;
        total += w;
        if (best < 0 || current[i]! > current[best]!) best = i;
      }
      if (best < 0) return undefined;
      current[best]! -= total;
      return targets[best];
    },
  };
}
