/** @module Round-robin: each usable target in turn, weights ignored. */
import type { PickHint, Target } from '../types.ts';
import { type Balancer, usable } from './balancer.ts';

export function createRoundRobin(): Balancer {
  let cursor = 0;
  return {
    pick(targets: readonly Target[], hint: PickHint): Target | undefined {
      const n = targets.length;
      for (let step = 0; step < n; step++) {
        const t = targets[cursor % n]!;
        cursor = (cursor + 1) % n;
        if (usable(t, hint)) return t;
      }
      return undefined;
    },
  };
}
