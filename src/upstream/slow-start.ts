/**
 * @module Slow start: a target that just became available (new, back from ejection or from failing health
 * checks) works at a fraction of its weight that grows linearly to the full weight over the window.
 * Weight-aware balancers (weighted, least-request, least-connections, random) read it through `weightOf`.
 */
import type { UpstreamConfig } from '../config/schema.ts';
import type { Clock, UpstreamTarget } from './target.ts';
import type { Target } from './types.ts';

export function createWeightOf(config: UpstreamConfig['slowStart'], now: Clock): (t: Target) => number {
  if (config === undefined || config.window === 0) return (t) => t.weight;
  const window = config.window;
  const floor = config.minWeightPercent / 100;
  return (t) => {
    const since = (t as UpstreamTarget).availableSince;
    if (since === undefined) return t.weight;
    const elapsed = now() - since;
    if (elapsed >= window) return t.weight;
    return t.weight * Math.max(floor, elapsed / window);
  };
}
