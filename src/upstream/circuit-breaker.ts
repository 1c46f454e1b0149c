/**
 * @module Circuit breaking: per-upstream counters of work in flight and the limits checked before a pick.
 * Counters live in the registry under the upstream's name, so the old and new generation of a reloaded pool
 * count the same requests. Per-target limits are `UpstreamTarget.maxActive` (its `available()` says no).
 */
import type { UpstreamConfig } from '../config/schema.ts';
import type { UpstreamTarget } from './target.ts';

/** Work in flight on one upstream; updated in O(1) per attempt. */
export class UpstreamLoad {
  /** Attempts in flight (L7 requests, L4 connections). */
  active = 0;
  /** Of those, retries (the retry budget's numerator). */
  retries = 0;
  /** Attempts that fit in their target's connection pool: Σ min(target.active, connectionsPerTarget). */
  connections = 0;
  /** Attempts queued beyond their target's connection pool. */
  pending = 0;
  /** Picks refused by an upstream-wide limit (a counter for metrics). */
  overloaded = 0;
}

export interface CircuitLimits {
  readonly maxRequests: number;
  readonly maxPending: number;
  readonly maxConnections: number;
  readonly maxRequestsPerTarget: number;
  readonly connectionsPerTarget: number;
}

const NONE = Number.POSITIVE_INFINITY;

export function circuitLimits(config: UpstreamConfig): CircuitLimits {
  const cb = config.circuitBreaker;
  return {
    maxRequests: cb?.maxRequests ?? NONE,
    maxPending: cb?.maxPending ?? NONE,
    maxConnections: cb?.maxConnections ?? NONE,
    maxRequestsPerTarget: cb?.maxRequestsPerTarget ?? NONE,
    connectionsPerTarget: config.maxConnectionsPerTarget,
  };
}

/** True when one more attempt would break an upstream-wide limit. */
export function overLimits(load: UpstreamLoad, limits: CircuitLimits): boolean {
  return (
    load.active >= limits.maxRequests || load.pending >= limits.maxPending || load.connections >= limits.maxConnections
  );
}

/** Counts an attempt starting on `target`. */
export function attemptStarted(
  load: UpstreamLoad,
  target: UpstreamTarget,
  limits: CircuitLimits,
  retry: boolean,
): void {
  if (target.active < limits.connectionsPerTarget) load.connections++;
  else load.pending++;
  target.active++;
  load.active++;
  if (retry) load.retries++;
}

/** Reverses `attemptStarted`. */
export function attemptEnded(load: UpstreamLoad, target: UpstreamTarget, limits: CircuitLimits, retry: boolean): void {
  target.active--;
  load.active--;
  if (target.active < limits.connectionsPerTarget) load.connections--;
  else load.pending--;
  if (retry) load.retries--;
}
