/**
 * @module The batched algorithms (the Redis store's coalesced takes) against the one-take ones: `count` takes
 * decided at once, fanned out by `decisionOf`, equal `count` takes made one after another, over many states.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import {
  decisionOf,
  newBucket,
  newWindow,
  takeToken,
  takeTokens,
  takeWindow,
  takeWindows,
} from '../../../src/state/algorithms.ts';
import type { Decision, RateLimitSpec } from '../../../src/state/types.ts';

/** Deterministic pseudo-random integers in [0, n). */
function lcg(seed: number): (n: number) => number {
  let x = seed;
  return (n) => {
    x = (x * 1_103_515_245 + 12_345) % 2 ** 31;
    return x % n;
  };
}

const T0 = Date.UTC(2030, 0, 1);
const specs: RateLimitSpec[] = [
  { algorithm: 'token-bucket', limit: 10, windowMs: 1000, burst: 5 },
  { algorithm: 'token-bucket', limit: 13, windowMs: 997, burst: 29 },
  { algorithm: 'token-bucket', limit: 7, windowMs: 60_000 },
  { algorithm: 'sliding-window', limit: 4, windowMs: 1000 },
  { algorithm: 'sliding-window', limit: 23, windowMs: 777 },
];

it('a batch of takes, fanned out, decides like the same takes one after another', () => {
  const rnd = lcg(7);
  for (const spec of specs) {
    const batched = { bucket: newBucket(spec, T0), window: newWindow() };
    const oneByOne = { bucket: newBucket(spec, T0), window: newWindow() };
    let now = T0;
    for (let step = 0; step < 2000; step++) {
      now += rnd(3) === 0 ? 0 : rnd(Math.ceil((spec.windowMs * 3) / spec.limit));
      const cost = 1 + rnd(3);
      const count = 1 + rnd(12);
      const t =
        spec.algorithm === 'token-bucket'
          ? takeTokens(batched.bucket, cost, count, spec, now)
          : takeWindows(batched.window, cost, count, spec, now);
      const got = Array.from({ length: count }, (_, i) => decisionOf(t, i, cost, spec));
      const want: Decision[] = Array.from({ length: count }, () =>
        spec.algorithm === 'token-bucket'
          ? takeToken(oneByOne.bucket, cost, spec, now)
          : takeWindow(oneByOne.window, cost, spec, now),
      );
      assert.deepEqual(got, want, `${JSON.stringify(spec)} step ${step}: ${count} × ${cost} at +${now - T0}`);
      assert.deepEqual(batched, oneByOne, 'the same state afterwards');
    }
  }
});

it('a batch admits its first callers only, however many ask', () => {
  const spec: RateLimitSpec = { algorithm: 'sliding-window', limit: 6, windowMs: 60_000 };
  const t = takeWindows(newWindow(), 1, 10, spec, T0);
  assert.deepEqual(t, { taken: 6, remaining: 0, retryAfterMs: t.retryAfterMs, resetMs: 120_000 });
  assert.ok(t.retryAfterMs > 0);
  const tb: RateLimitSpec = { algorithm: 'token-bucket', limit: 6, windowMs: 60_000 };
  const b = takeTokens(newBucket(tb, T0), 2, 4, tb, T0);
  assert.equal(b.taken, 3);
  assert.equal(b.retryAfterMs, 20_000, 'one more take of 2 units waits for 2 tokens');
});

it('a full sliding window tells the exact wait: one window plus the fall of the previous weight by one', () => {
  const spec: RateLimitSpec = { algorithm: 'sliding-window', limit: 50, windowMs: 3_600_000 };
  const state = newWindow();
  assert.equal(takeWindows(state, 1, 50, spec, T0).taken, 50);
  const denied = takeWindows(state, 1, 1, spec, T0);
  assert.equal(denied.retryAfterMs, 3_672_000, '3600 s + 3600 s / 50, with no rounding error on top');
  const early = structuredClone(state);
  assert.equal(takeWindows(early, 1, 1, spec, T0 + denied.retryAfterMs - 1).taken, 0, 'a millisecond early');
  assert.equal(takeWindows(state, 1, 1, spec, T0 + denied.retryAfterMs).taken, 1, 'admitted when told');
});
