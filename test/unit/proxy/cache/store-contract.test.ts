/** Contract suite every CacheStore passes: memory and a real Redis. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { MemoryStore } from '../../../../src/proxy/cache/memory-store.ts';
import { RedisStore } from '../../../../src/proxy/cache/redis-store.ts';
import type { CacheEntry, CacheStore } from '../../../../src/proxy/cache/types.ts';
import { type RedisServer, startRedisServer } from '../../../helpers/redis-server.ts';

function entry(body: string, extra: Partial<CacheEntry> = {}): CacheEntry {
  return {
    status: 200,
    headers: { 'content-type': 'text/plain', 'set-x': ['a', 'b'] },
    body: Buffer.from(body),
    requestTime: 1000,
    responseTime: 1001,
    storedAt: 1001,
    initialAge: 0,
    lifetime: 60_000,
    staleWhileRevalidate: 0,
    staleIfError: 0,
    mustRevalidate: false,
    noCache: false,
    etag: '"v1"',
    ...extra,
  };
}

function contract(name: string, make: () => CacheStore): void {
  describe(`CacheStore contract: ${name}`, () => {
    let store: CacheStore;
    before(() => {
      store = make();
    });
    after(async () => {
      await store.close();
    });

    it('returns what was set, body bytes intact', async () => {
      const binary = Buffer.from([0, 1, 2, 255, 254, 10, 13]);
      await store.set('h/a', { ...entry(''), body: binary }, 60_000);
      const got = await store.get('h/a');
      assert.ok(got);
      assert.deepEqual(got.body, binary);
      assert.equal(got.status, 200);
      assert.deepEqual(got.headers, { 'content-type': 'text/plain', 'set-x': ['a', 'b'] });
      assert.equal(got.etag, '"v1"');
      assert.equal(got.lifetime, 60_000);
    });

    it('misses unknown keys and keeps vary markers', async () => {
      assert.equal(await store.get('h/none'), undefined);
      await store.set('h/v', entry('', { status: 0, vary: ['accept-language'] }), 60_000);
      assert.deepEqual((await store.get('h/v'))?.vary, ['accept-language']);
    });

    it('deletes by key', async () => {
      await store.set('h/d', entry('x'), 60_000);
      assert.equal(await store.delete('h/d'), true);
      assert.equal(await store.get('h/d'), undefined);
      assert.equal(await store.delete('h/d'), false);
    });

    it('purges by prefix, literally (glob characters are not special)', async () => {
      await store.set('p.com/assets/a', entry('1'), 60_000);
      await store.set('p.com/assets/b?x=[1]', entry('2'), 60_000);
      await store.set('p.com/api/c', entry('3'), 60_000);
      await store.set('p.com/as*', entry('4'), 60_000);
      assert.equal(await store.purgePrefix('p.com/assets/'), 2);
      assert.equal(await store.get('p.com/assets/a'), undefined);
      assert.ok(await store.get('p.com/api/c'));
      assert.equal(await store.purgePrefix('p.com/as*'), 1);
      assert.ok(await store.get('p.com/api/c'));
    });

    it('forgets entries after their ttl', async () => {
      await store.set('h/t', entry('x'), 1);
      // Bounded wait: poll a few times for expiry.
      let got: CacheEntry | undefined = entry('x');
      for (let i = 0; i < 50 && got !== undefined; i++) {
        await new Promise((r) => setTimeout(r, 10));
        got = await store.get('h/t');
      }
      assert.equal(got, undefined);
    });
  });
}

contract('memory', () => new MemoryStore({ maxSize: 1024 * 1024 }));

let redis: RedisServer;
before(async () => {
  redis = await startRedisServer();
});
after(async () => {
  await redis.stop();
});
contract('redis', () => new RedisStore({ url: redis.url, prefix: 'test:', timeout: 1000 }));

describe('MemoryStore bound', () => {
  it('evicts least recently used entries to stay within maxSize bytes', async () => {
    const store = new MemoryStore({ maxSize: 10_000 });
    for (let i = 0; i < 10; i++) await store.set(`k${i}`, entry('x'.repeat(2000)), 60_000);
    assert.ok(store.size <= 10_000);
    assert.equal(await store.get('k0'), undefined);
    assert.ok(await store.get('k9'));
  });
});

describe('RedisStore failure', () => {
  it('treats an unreachable Redis as misses and no-ops', async () => {
    const errors: Error[] = [];
    const store = new RedisStore({
      url: 'redis://127.0.0.1:1',
      prefix: 'x:',
      timeout: 100,
      onError: (e) => errors.push(e),
    });
    await store.set('a', entry('x'), 1000);
    assert.equal(await store.get('a'), undefined);
    assert.equal(await store.delete('a'), false);
    assert.equal(await store.purgePrefix('a'), 0);
    assert.ok(errors.length > 0);
    await store.close();
  });
});
