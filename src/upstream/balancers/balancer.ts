/**
 * @module The Balancer contract shared by every algorithm, and the helpers they use.
 *
 * A balancer MUST only return a target from the array it is given, MUST skip targets whose `available()`
 * is false and those in `hint.exclude`, and MUST return undefined when no target qualifies. It does no I/O
 * and reads time and randomness only through its deps, so tests can replay it. `pick` runs per request:
 * it must not sort or allocate arrays; state derived from the target list is rebuilt only when the list
 * (compared by identity) changes.
 */
import type { PickHint, Target } from '../types.ts';

export interface Balancer {
  pick(targets: readonly Target[], hint: PickHint): Target | undefined;
}

export interface BalancerDeps {
  /** Uniform in [0, 1). */
  readonly random: () => number;
  /** Weight used right now (slow start lowers it for a while); defaults to `target.weight`. */
  readonly weightOf: (target: Target) => number;
}

export const defaultDeps: BalancerDeps = { random: Math.random, weightOf: (t) => t.weight };

export type BalancerFactory = (deps: BalancerDeps) => Balancer;

/** May `target` be picked for this hint? */
export function usable(target: Target, hint: PickHint): boolean {
  return target.available() && (hint.exclude === undefined || !hint.exclude.has(target));
}

/** Number of usable targets (O(n), no allocation). */
export function countUsable(targets: readonly Target[], hint: PickHint): number {
  let n = 0;
  for (let i = 0; i < targets.length; i++) if (usable(targets[i]!, hint)) n++;
  return n;
}

/** The `rank`-th usable target (0-based), or undefined. */
export function nthUsable(targets: readonly Target[], hint: PickHint, rank: number): Target | undefined {
  for (let i = 0; i < targets.length; i++) {
    const t = targets[i]!;
    if (usable(t, hint) && rank-- === 0) return t;
  }
  return undefined;
}
