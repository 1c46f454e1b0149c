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

/**
 * What `count` takes of `cost` units each, made in one step, yield: the first `taken` are admitted, the rest
 * denied. `remaining` and `resetMs` describe the state after all of them; `retryAfterMs` is the wait for one
 * more take of `cost` (0 when all `count` were admitted). With `count` 1 this is exactly one take.
 */
export interface Taken {
  readonly taken: number;
  readonly remaining: number;
  readonly retryAfterMs: number;
  readonly resetMs: number;
  /** Token bucket: the tokens left, unrounded (for the earlier callers' `resetMs`, see `decisionOf`). */
  readonly tokens?: number;
}

/** Refill, then take `cost` tokens if there are enough. Mutates `s`. A clock behind `s.ts` refills nothing. */
export function takeToken(s: BucketState, cost: number, spec: RateLimitSpec, now: number): Decision {
  const t = takeTokens(s, cost, 1, spec, now);
  return { allowed: t.taken === 1, remaining: t.remaining, retryAfterMs: t.retryAfterMs, resetMs: t.resetMs };
}

/**
 * `count` takes of `cost` tokens at one instant, decided as if made one after another: refill once, then admit
 * while the tokens last. Mutates `s`.
 */
export function takeTokens(s: BucketState, cost: number, count: number, spec: RateLimitSpec, now: number): Taken {
  const cap = spec.burst ?? spec.limit;
  const rate = spec.limit / spec.windowMs;
  if (now > s.ts) {
    s.tokens = Math.min(cap, s.tokens + (now - s.ts) * rate);
    s.ts = now;
  }
  let taken = 0;
  while (taken < count && s.tokens >= cost) {
    s.tokens -= cost;
    taken++;
  }
  const retryAfterMs = taken < count ? Math.ceil((cost - s.tokens) / rate) : 0;
  const tokens = s.tokens;
  return { taken, remaining: Math.floor(tokens), retryAfterMs, resetMs: Math.ceil((cap - tokens) / rate), tokens };
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
  const t = takeWindows(s, cost, 1, spec, now);
  return { allowed: t.taken === 1, remaining: t.remaining, retryAfterMs: t.retryAfterMs, resetMs: t.resetMs };
}

/**
 * `count` takes of `cost` at one instant, decided as if made one after another: move the windows once, then
 * admit while estimate + cost ≤ limit. Mutates `s`.
 */
export function takeWindows(s: WindowState, cost: number, count: number, spec: RateLimitSpec, now: number): Taken {
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
  const weighted = (s.prev * (size - elapsed)) / size;
  let taken = 0;
  while (taken < count && weighted + s.curr + cost <= limit) {
    s.curr += cost;
    taken++;
  }
  let retryAfterMs = 0;
  if (taken < count) {
    const room = limit - cost - s.curr;
    if (room >= 0 && s.prev > 0) {
      // Wait until the previous window's weight drops enough. (prev - room) / prev, not 1 - room / prev: whole
      // numbers stay exact, so 50 per hour waits 72 s, not 72.000000000001.
      retryAfterMs = Math.max(1, Math.ceil((size * (s.prev - room)) / s.prev - elapsed));
    } else if (limit - cost < 0) {
      retryAfterMs = 2 * size - elapsed;
    } else {
      // Wait for the next window, where today's count becomes the weighted previous one.
      const room2 = limit - cost;
      const into = s.curr <= room2 ? 0 : Math.ceil((size * (s.curr - room2)) / s.curr);
      retryAfterMs = size - elapsed + into;
    }
  }
  const used = weighted + s.curr;
  const remaining = Math.max(0, Math.floor(limit - used));
  const resetMs = s.curr > 0 ? 2 * size - elapsed : s.prev > 0 ? size - elapsed : 0;
  return { taken, remaining, retryAfterMs, resetMs };
}

export function newWindow(): WindowState {
  return { win: 0, curr: 0, prev: 0 };
}

/**
 * The decision the `i`-th (0-based, in call order) of the `count` takes behind `t` gets: what it would have seen
 * had the takes been made one after another. The first `t.taken` are admitted, each seeing the units the
 * admitted ones after it have not taken yet; the rest are denied and see the state after the batch. A token
 * bucket's earlier callers get their own `resetMs` from the exact tokens (`t.tokens`, needed when `t.taken` > 1).
 */
export function decisionOf(t: Taken, i: number, cost: number, spec: RateLimitSpec): Decision {
  if (i >= t.taken) return { allowed: false, remaining: t.remaining, retryAfterMs: t.retryAfterMs, resetMs: t.resetMs };
  const later = (t.taken - 1 - i) * cost;
  if (later === 0) return { allowed: true, remaining: t.remaining, retryAfterMs: 0, resetMs: t.resetMs };
  // Integer units added back to the tokens left are exact: these are the tokens caller i left behind.
  const resetMs =
    spec.algorithm === 'token-bucket'
      ? Math.ceil(((spec.burst ?? spec.limit) - (t.tokens! + later)) / (spec.limit / spec.windowMs))
      : t.resetMs;
  return { allowed: true, remaining: t.remaining + later, retryAfterMs: 0, resetMs };
}
