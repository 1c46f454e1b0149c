/**
 * @module Consistent hashing with a Maglev lookup table (Eisenbud et al., NSDI 2016): each target fills table
 * slots in the order of its own permutation, in proportion to its weight, so a key maps to the same target
 * while the target list stays, and adding or removing one of N targets moves about 1/N of the keys.
 *
 * The table is built from the target keys (sorted, so config order does not matter) when the list changes,
 * never per pick. A key whose slot holds an unusable target walks on to the next slots: the fallback is
 * still a function of the key, so one target's outage spreads its keys over the others.
 */
import { hash32 } from '../hash.ts';
import type { PickHint, Target } from '../types.ts';
import { type Balancer, type BalancerDeps, countUsable, defaultDeps, nthUsable, usable } from './balancer.ts';

/**
 * Prime table sizes; the table should have ≥ 100 slots per target for even shares. The size changes only
 * past 655 targets, because a new size remaps every key.
 */
const SIZES = [65_537, 655_373];

export function createConsistentHash(deps: BalancerDeps = defaultDeps): Balancer {
  let list: readonly Target[] | undefined;
  let table: Int32Array = new Int32Array(0);
  return {
    pick(targets: readonly Target[], hint: PickHint): Target | undefined {
      if (targets.length === 0) return undefined;
      if (hint.hashKey === undefined) {
        // Nothing to hash on: any usable target will do.
        const n = countUsable(targets, hint);
        return n === 0 ? undefined : nthUsable(targets, hint, Math.floor(deps.random() * n));
      }
      if (targets !== list) {
        list = targets;
        table = buildMaglevTable(targets);
      }
      const size = table.length;
      let slot = hash32(hint.hashKey) % size;
      const first = targets[table[slot]!]!;
      if (usable(first, hint)) return first;
      if (countUsable(targets, hint) === 0) return undefined;
      for (let step = 1; step < size; step++) {
        slot = slot + 1 === size ? 0 : slot + 1;
        const t = targets[table[slot]!]!;
        if (usable(t, hint)) return t;
      }
      return undefined;
    },
  };
}

/** Slot → index into `targets`. */
export function buildMaglevTable(targets: readonly Target[]): Int32Array {
  const size = SIZES.find((s) => s >= targets.length * 100) ?? SIZES[SIZES.length - 1]!;
  const order = targets.map((_, i) => i).sort((a, b) => (targets[a]!.key < targets[b]!.key ? -1 : 1));
  const n = order.length;
  const offset = new Uint32Array(n);
  const skip = new Uint32Array(n);
  const next = new Uint32Array(n);
  let maxWeight = 1;
  for (let j = 0; j < n; j++) {
    const t = targets[order[j]!]!;
    offset[j] = hash32(t.key, 0x9e3779b9) % size;
    skip[j] = (hash32(t.key, 0x85ebca6b) % (size - 1)) + 1;
    if (t.weight > maxWeight) maxWeight = t.weight;
  }
  const table = new Int32Array(size).fill(-1);
  let filled = 0;
  // Weighted Maglev: in round r a target takes a slot only while r·weight/maxWeight keeps growing past
  // an integer, so over many rounds its share of slots is proportional to its weight.
  for (let round = 0; filled < size; round++) {
    for (let j = 0; j < n && filled < size; j++) {
      const w = targets[order[j]!]!.weight;
      if (Math.floor(((round + 1) * w) / maxWeight) === Math.floor((round * w) / maxWeight)) continue;
      let slot = (offset[j]! + next[j]! * skip[j]!) % size;
      while (table[slot] !== -1) {
        next[j]!++;
        slot = (offset[j]! + next[j]! * skip[j]!) % size;
      }
      table[slot] = order[j]!;
      next[j]!++;
      filled++;
    }
  }
  return table;
}
