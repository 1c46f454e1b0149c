/**
 * @module The shared-state contract. `memory` (default, one process) and `redis` (many instances)
 * implement it and pass one contract suite (test/unit/state/store-contract.ts). Operations are atomic per key.
 *
 * Failures: a redis store MUST reject within its command timeout (a few hundred ms) when Redis is slow or
 * gone, never hang and never queue the call for later; callers (rate-limit, quota) decide what to do then.
 */

export interface RateLimitSpec {
  /**
   * `token-bucket`: refills `limit` tokens per window, holds at most `burst`.
   * `sliding-window`: two fixed windows, the previous weighted by how much of it still overlaps the sliding one
   * (O(1) state per key; an approximation that never admits more than `limit` in any window-aligned span).
   */
  readonly algorithm: 'token-bucket' | 'sliding-window';
  /** Requests allowed per window (sliding window) or bucket refill per window (token bucket). */
  readonly limit: number;
  readonly windowMs: number;
  /** Token bucket capacity; defaults to limit. Ignored by the sliding window. */
  readonly burst?: number;
}

export interface Decision {
  readonly allowed: boolean;
  /** Units still available after this take (never negative). */
  readonly remaining: number;
  /** Milliseconds until a request of the same cost would be allowed (0 when allowed). */
  readonly retryAfterMs: number;
  /** Milliseconds until the limit is fully restored. */
  readonly resetMs: number;
}

export interface Store {
  readonly kind: 'memory' | 'redis';
  /**
   * Take `cost` units from the limit at `key`; atomic. `nowMs` is the caller's clock (epoch ms), so an injected
   * clock works and several instances share one timeline as long as their clocks agree (NTP).
   */
  take(key: string, cost: number, spec: RateLimitSpec, nowMs: number): Promise<Decision>;
  /**
   * `take` answered synchronously; present only on stores that need no I/O (memory), so a rate limit on them
   * costs no promise or microtask per request.
   */
  takeSync?(key: string, cost: number, spec: RateLimitSpec, nowMs: number): Decision;
  /** Add `by` to the counter at `key` (created at 0) and set it to expire `ttlMs` from now; returns the new value. */
  increment(key: string, by: number, ttlMs: number): Promise<number>;
  get(key: string): Promise<Buffer | undefined>;
  set(key: string, value: Buffer, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
  /** False while the backing service is known to be unreachable (always true for memory). Cheap; no I/O. */
  ready(): boolean;
  /**
   * True while the first connection is still being made (never connected, no error yet): calls made now wait
   * for it, at most the command timeout, instead of failing. Absent on stores with nothing to connect to.
   */
  connecting?(): boolean;
  close(): Promise<void>;
}
