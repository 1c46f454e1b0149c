/** @module The balancing algorithms by their config name. */
import type { UpstreamConfig } from '../../config/schema.ts';
import type { Balancer, BalancerDeps, BalancerFactory } from './balancer.ts';
import { createConsistentHash } from './consistent-hash.ts';
import { createLeastConnections } from './least-connections.ts';
import { createLeastRequest } from './least-request.ts';
import { createRandom } from './random.ts';
import { createRoundRobin } from './round-robin.ts';
import { createWeighted } from './weighted.ts';

export const balancers = {
  'round-robin': createRoundRobin,
  weighted: createWeighted,
  'least-connections': createLeastConnections,
  'least-request': createLeastRequest,
  random: createRandom,
  'consistent-hash': createConsistentHash,
} as const satisfies Record<UpstreamConfig['balance'], BalancerFactory>;

export function createBalancer(name: UpstreamConfig['balance'], deps: BalancerDeps): Balancer {
  return balancers[name](deps);
}

export type { Balancer, BalancerDeps } from './balancer.ts';
