/**
 * @module The two limiting algorithms as pure functions over a small mutable state. The memory store runs
 * them directly; src/state/lua.ts mirrors them line for line as Redis scripts, and the contract suite checks
 * that both stores decide alike.
 */
import type { Decision, RateLimitSpec } from './types.ts';

/** Token bucket state: tokens left (fractional) at time `ts`. */
export interface BucketState {
  tokens: number;
  ts: number;
}

/** Sliding window state: index of the current fixed window, its count, and the previous window's count. */
export interface WindowState {
  win: number;
  curr: number;
  prev: number;
}

/** Refill, then take `cost` tokens if there are enough. Mutates `s`. A clock behind `s.ts` refills nothing. */
export function takeToken(s: BucketState, cost: number, spec: RateLimitSpec, now: number): Decision {
  const cap = spec.burst ?? spec.limit;
  const rate = spec.limit / spec.windowMs;
  if (now > s.ts) {
    s.tokens = Math.min(cap, s.tokens + (now - s.ts) * rate);
    s.ts = now;
  }
  let allowed = false;
  let retryAfterMs = 0;
  if (s.tokens >= cost) {
    s.tokens -= cost;
    allowed = true;
  } else {
    retryAfterMs = Math.ceil((cost - s.tokens) / rate);
  }
  return { allowed, remaining: Math.floor(s.tokens), retryAfterMs, resetMs: Math.ceil((cap - s.tokens) / rate) };
}

/** A new, full bucket. */
export function newBucket(spec: RateLimitSpec, now: number): BucketState {
  return { tokens: spec.burst ?? spec.limit, ts: now };
}

/** Milliseconds a bucket must be kept: after that it is full again and can be forgotten. */
export function bucketTtl(spec: RateLimitSpec): number {
  return Math.ceil(((spec.burst ?? spec.limit) * spec.windowMs) / spec.limit) + 1000;
}

/**
 * Two-window weighted count: estimate = prev × (share of the previous window still inside the sliding one) +
 * curr. Admit when estimate + cost ≤ limit. Mutates `s`.
 */
export function takeWindow(s: WindowState, cost: number, spec: RateLimitSpec, now: number): Decision {
  const size = spec.windowMs;
  const limit = spec.limit;
  let win = Math.floor(now / size);
  let elapsed = now - win * size;
  if (win === s.win + 1) {
    s.prev = s.curr;
    s.curr = 0;
  } else if (win > s.win + 1) {
    s.prev = 0;
    s.curr = 0;
  } else if (win < s.win) {
    // This caller's clock is behind the one that wrote the state: count in the newer window, conservatively.
    win = s.win;
    elapsed = 0;
  }
  s.win = win;
  const estimate = (s.prev * (size - elapsed)) / size + s.curr;
  let allowed = false;
  let retryAfterMs = 0;
  if (estimate + cost <= limit) {
    s.curr += cost;
    allowed = true;
  } else {
    const room = limit - cost - s.curr;
    if (room >= 0 && s.prev > 0) {
      // Wait until the previous window's weight drops enough.
      retryAfterMs = Math.max(1, Math.ceil(size * (1 - room / s.prev) - elapsed));
    } else if (limit - cost < 0) {
      retryAfterMs = 2 * size - elapsed;
    } else {
      // Wait for the next window, where today's count becomes the weighted previous one.
      const room2 = limit - cost;
      const into = s.curr <= room2 ? 0 : Math.ceil(size * (1 - room2 / s.curr));
      retryAfterMs = size - elapsed + into;
    }
  }
  const used = (s.prev * (size - elapsed)) / size + s.curr;
  const remaining = Math.max(0, Math.floor(limit - used));
  const resetMs = s.curr > 0 ? 2 * size - elapsed : s.prev > 0 ? size - elapsed : 0;
  return { allowed, remaining, retryAfterMs, resetMs };
}

export function newWindow(): WindowState {
  return { win: 0, curr: 0, prev: 0 };
}
