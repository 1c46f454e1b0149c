/**
 * @module The shared-state contract. `memory` (default, one process) and `redis` (many instances)
 * implement it and pass one contract suite. Operations are atomic per key.
 */

export interface RateLimitSpec {
  readonly algorithm: 'token-bucket' | 'sliding-window';
  /** Requests allowed per window (sliding window) or bucket refill per window (token bucket). */
  readonly limit: number;
  readonly windowMs: number;
  /** Token bucket capacity; defaults to limit. */
  readonly burst?: number;
}

export interface Decision {
  readonly allowed: boolean;
  readonly remaining: number;
  /** Milliseconds until a request of the same cost would be allowed (0 when allowed). */
  readonly retryAfterMs: number;
  /** Milliseconds until the limit is fully restored. */
  readonly resetMs: number;
}

export interface Store {
  readonly kind: 'memory' | 'redis';
  /** Take `cost` units from the limit at `key`; atomic. */
  take(key: string, cost: number, spec: RateLimitSpec, nowMs: number): Promise<Decision>;
  /** Increment a counter that expires at `expiresAtMs`; returns the new value. */
  increment(key: string, by: number, expiresAtMs: number): Promise<number>;
  get(key: string): Promise<Buffer | undefined>;
  set(key: string, value: Buffer, ttlMs: number): Promise<void>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
}
