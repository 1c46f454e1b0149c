/**
 * @module Least connections: the usable target with the fewest in-flight attempts per unit of weight,
 * ties broken at random by reservoir sampling (Caddy's LeastConnSelection) so equal targets share load.
 */
import type { PickHint, Target } from '../types.ts';
import { type Balancer, type BalancerDeps, defaultDeps, usable } from './balancer.ts';

export function createLeastConnections(deps: BalancerDeps = defaultDeps): Balancer {
  return {
    pick(targets: readonly Target[], hint: PickHint): Target | undefined {
      let best: Target | undefined;
      let bestLoad = Number.POSITIVE_INFINITY;
      let ties = 0;
      for (let i = 0; i < targets.length; i++) {
        const t = targets[i]!;
        if (!usable(t, hint)) continue;
        const load = (t.active + 1) / deps.weightOf(t);
        if (load < bestLoad) {
          best = t;
          bestLoad = load;
          ties = 1;
        } else if (load === bestLoad && deps.random() * ++ties < 1) {
          best = t;
        }
      }
      return best;
    },
  };
}
