/**
 * @module The contract every Store passes (memory and redis): the same cases, the same expected decisions.
 * Call `runStoreContract(name, make)` from a test file; `make` returns a fresh, empty store.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { newBucket, newWindow, takeToken, takeWindow } from '../../../src/state/algorithms.ts';
import type { Decision, RateLimitSpec, Store } from '../../../src/state/types.ts';

const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);
let seq = 0;
const k = (name: string): string => `${name}:${process.pid}:${++seq}`;

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
