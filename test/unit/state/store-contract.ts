/**
 * @module The contract every Store passes (memory and redis): the same cases, the same expected decisions.
 * Call `runStoreContract(name, make)` from a test file; `make` returns a fresh, empty store.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type BucketState,
  newBucket,
  newWindow,
  takeToken,
  takeWindow,
  type WindowState,
} from '../../../src/state/algorithms.ts';
import type { Decision, RateLimitSpec, Store } from '../../../src/state/types.ts';

const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);
let seq = 0;
const k = (name: string): string => `${name}:${process.pid}:${++seq}`;

/** `n` takes in one event-loop turn (a Redis store coalesces them), answers in call order. */
function takeMany(store: Store, n: number, key: string, cost: number, spec: RateLimitSpec, now: number) {
  return Promise.all(Array.from({ length: n }, () => store.take(key, cost, spec, now)));
}

/** What `n` takes made one after another decide, by the reference algorithms. */
function sequential(
  state: { bucket: BucketState; window: WindowState },
  n: number,
  cost: number,
  spec: RateLimitSpec,
  now: number,
): Decision[] {
  return Array.from({ length: n }, () =>
    spec.algorithm === 'token-bucket'
      ? takeToken(state.bucket, cost, spec, now)
      : takeWindow(state.window, cost, spec, now),
  );
}

export function runStoreContract(name: string, make: () => Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    const tb: RateLimitSpec = { algorithm: 'token-bucket', limit: 10, windowMs: 1000, burst: 5 };
    const sw: RateLimitSpec = { algorithm: 'sliding-window', limit: 4, windowMs: 1000 };

    it('token bucket admits the burst, then denies with a retry time', async (t) => {
      const store = await make();
      t.after(() => store.close());
      const key = k('tb');
      for (let i = 0; i < 5; i++) {
        const d = await store.take(key, 1, tb, T0);
        assert.equal(d.allowed, true);
        assert.equal(d.remaining, 4 - i);
      }
      const denied = await store.take(key, 1, tb, T0);
      assert.deepEqual(denied, { allowed: false, remaining: 0, retryAfterMs: 100, resetMs: 500 });
      // 10 per second: after 100 ms one token is back.
      assert.equal((await store.take(key, 1, tb, T0 + 100)).allowed, true);
      assert.equal((await store.take(key, 1, tb, T0 + 100)).allowed, false);
      // Refills to the burst, never beyond.
      const full = await store.take(key, 1, tb, T0 + 60_000);
      assert.equal(full.remaining, 4);
    });

    it('token bucket takes a cost of several units', async (t) => {
      const store = await make();
      t.after(() => store.close());
      const key = k('tbc');
      assert.equal((await store.take(key, 3, tb, T0)).remaining, 2);
      const d = await store.take(key, 3, tb, T0);
      assert.equal(d.allowed, false);
      assert.equal(d.retryAfterMs, 100);
    });

    it('sliding window admits the limit, then weights the previous window', async (t) => {
      const store = await make();
      t.after(() => store.close());
      const key = k('sw');
      for (let i = 0; i < 4; i++) assert.equal((await store.take(key, 1, sw, T0 + 100)).allowed, true);
      const denied = await store.take(key, 1, sw, T0 + 200);
      assert.equal(denied.allowed, false);
      assert.equal(denied.remaining, 0);
      // Next window, 250 ms in: previous weighs 4 × 0.75 = 3 → one left.
      const d = await store.take(key, 1, sw, T0 + 1250);
      assert.equal(d.allowed, true);
      assert.equal(d.remaining, 0);
      assert.equal((await store.take(key, 1, sw, T0 + 1250)).allowed, false);
      // Two windows later everything is forgotten.
      assert.equal((await store.take(key, 1, sw, T0 + 3000)).remaining, 3);
    });

    it('decides exactly like the reference algorithms', async (t) => {
      const store = await make();
      t.after(() => store.close());
      for (const spec of [tb, sw, { ...sw, limit: 7, windowMs: 700 } satisfies RateLimitSpec]) {
        const key = k('ref');
        const bucket = newBucket(spec, T0);
        const window = newWindow();
        let now = T0;
        for (let i = 0; i < 60; i++) {
          now += (i * 37) % 160;
          const cost = 1 + (i % 3);
          const want: Decision =
            spec.algorithm === 'token-bucket'
              ? takeToken(bucket, cost, spec, now)
              : takeWindow(window, cost, spec, now);
          assert.deepEqual(await store.take(key, cost, spec, now), want, `${spec.algorithm} step ${i}`);
        }
      }
    });

    it('keys are independent', async (t) => {
      const store = await make();
      t.after(() => store.close());
      const a = k('a');
      const b = k('b');
      for (let i = 0; i < 4; i++) await store.take(a, 1, sw, T0);
      assert.equal((await store.take(a, 1, sw, T0)).allowed, false);
      assert.equal((await store.take(b, 1, sw, T0)).allowed, true);
    });

    it('concurrent takes admit exactly the limit', async (t) => {
      const store = await make();
      t.after(() => store.close());
      const key = k('conc');
      const spec: RateLimitSpec = { algorithm: 'sliding-window', limit: 25, windowMs: 60_000 };
      const now = T0 + 10;
      const all = await Promise.all(Array.from({ length: 80 }, () => store.take(key, 1, spec, now)));
      assert.equal(all.filter((d) => d.allowed).length, 25);
    });

    it('takes made at once decide as if made one after another, in call order', async (t) => {
      const store = await make();
      t.after(() => store.close());
      const specs: RateLimitSpec[] = [
        { algorithm: 'token-bucket', limit: 6, windowMs: 60_000 },
        { algorithm: 'sliding-window', limit: 6, windowMs: 60_000 },
      ];
      for (const spec of specs) {
        // 10 at once against a limit of 6: exactly the first 6 are admitted, remaining counts down.
        const key = k('batch');
        const all = await takeMany(store, 10, key, 1, spec, T0 + 10);
        assert.deepEqual(
          all.map((d) => d.allowed),
          [true, true, true, true, true, true, false, false, false, false],
          spec.algorithm,
        );
        assert.deepEqual(
          all.map((d) => d.remaining),
          [5, 4, 3, 2, 1, 0, 0, 0, 0, 0],
        );
        const state = { bucket: newBucket(spec, T0 + 10), window: newWindow() };
        assert.deepEqual(all, sequential(state, 10, 1, spec, T0 + 10), spec.algorithm);
        // Costs above 1: 7 at once of 2 units against 13 → 6 admitted (12 units), 1 unit left, one denied.
        const big = { ...spec, limit: 13 };
        const key2 = k('batch-cost');
        const costly = await takeMany(store, 7, key2, 2, big, T0 + 10);
        assert.deepEqual(
          costly.map((d) => [d.allowed, d.remaining]),
          [
            [true, 11],
            [true, 9],
            [true, 7],
            [true, 5],
            [true, 3],
            [true, 1],
            [false, 1],
          ],
        );
        const state2 = { bucket: newBucket(big, T0 + 10), window: newWindow() };
        assert.deepEqual(costly, sequential(state2, 7, 2, big, T0 + 10), `${spec.algorithm} cost 2`);
        assert.ok(costly[6]!.retryAfterMs > 0, 'the denied take waits for one more take of its cost');
      }
    });

    it('takes made at once decide like the reference algorithms one after another', async (t) => {
      const store = await make();
      t.after(() => store.close());
      const odd: RateLimitSpec = { algorithm: 'token-bucket', limit: 13, windowMs: 997, burst: 29 };
      for (const spec of [tb, odd, sw, { ...sw, limit: 7, windowMs: 700 } satisfies RateLimitSpec]) {
        const key = k('ref-batch');
        const state = { bucket: newBucket(spec, T0), window: newWindow() };
        let now = T0;
        for (let i = 0; i < 40; i++) {
          now += (i * 53) % 230;
          const cost = 1 + (i % 2);
          const n = 1 + ((i * 7) % 6);
          const got = await takeMany(store, n, key, cost, spec, now);
          const want = sequential(state, n, cost, spec, now);
          assert.deepEqual(got, want, `${spec.algorithm} step ${i}: ${n} takes of ${cost}`);
        }
      }
    });

    it('takes at once for other costs, specs or keys keep call order and stay apart', async (t) => {
      const store = await make();
      t.after(() => store.close());
      const key = k('mixed');
      const other = k('mixed-other');
      const spec: RateLimitSpec = { algorithm: 'sliding-window', limit: 5, windowMs: 60_000 };
      const wide: RateLimitSpec = { algorithm: 'sliding-window', limit: 9, windowMs: 60_000 };
      const now = T0 + 10;
      const calls: [string, number, RateLimitSpec][] = [
        [key, 1, spec],
        [key, 2, spec],
        [other, 1, spec],
        [key, 1, spec],
        [key, 1, wide],
        [key, 2, spec],
        [key, 1, spec],
        [other, 1, spec],
      ];
      const got = await Promise.all(calls.map(([key, cost, s]) => store.take(key, cost, s, now)));
      const ref = new Map<string, { bucket: BucketState; window: WindowState }>();
      const want = calls.map(([key, cost, s]) => {
        let st = ref.get(key);
        if (st === undefined) {
          st = { bucket: newBucket(s, now), window: newWindow() };
          ref.set(key, st);
        }
        return sequential(st, 1, cost, s, now)[0]!;
      });
      assert.deepEqual(got, want);
      assert.deepEqual(
        got.map((d) => d.allowed),
        [true, true, true, true, true, false, false, true],
      );
    });

    it('increments made at once count as if made one after another', async (t) => {
      const store = await make();
      t.after(() => store.close());
      const key = k('inc-batch');
      const bys = [1, 3, 1, 2, 5];
      const got = await Promise.all(bys.map((by) => store.increment(key, by, 60_000)));
      assert.deepEqual(got, [1, 4, 5, 7, 12]);
      assert.equal(await store.increment(key, 1, 60_000), 13);
    });

    it('increment counts and expires', async (t) => {
      const store = await make();
      t.after(() => store.close());
      const key = k('inc');
      assert.equal(await store.increment(key, 1, 60_000), 1);
      assert.equal(await store.increment(key, 5, 60_000), 6);
      const short = k('inc-short');
      assert.equal(await store.increment(short, 2, 20), 2);
      let gone = false;
      for (let i = 0; i < 200 && !gone; i++) {
        await sleep(10);
        gone = (await store.get(short)) === undefined;
      }
      assert.equal(gone, true);
      assert.equal(await store.increment(short, 1, 60_000), 1);
    });

    it('get, set and delete binary values with a ttl', async (t) => {
      const store = await make();
      t.after(() => store.close());
      const key = k('kv');
      assert.equal(await store.get(key), undefined);
      const value = Buffer.from([0, 255, 1, 128]);
      await store.set(key, value, 60_000);
      assert.deepEqual(await store.get(key), value);
      await store.delete(key);
      assert.equal(await store.get(key), undefined);
      await store.set(key, value, 20);
      let gone = false;
      for (let i = 0; i < 200 && !gone; i++) {
        await sleep(10);
        gone = (await store.get(key)) === undefined;
      }
      assert.equal(gone, true);
    });

    it('reports ready', async (t) => {
      const store = await make();
      t.after(() => store.close());
      assert.equal(store.ready(), true);
    });
  });
}
