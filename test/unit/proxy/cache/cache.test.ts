/** The cache engine with a real MemoryStore and an injected clock, driven the way the forwarder drives it. */
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { Cache, type CacheRequest, type LookupResult, type Ticket } from '../../../../src/proxy/cache/cache.ts';
import { MemoryStore } from '../../../../src/proxy/cache/memory-store.ts';
import { routeCache } from '../../../../src/proxy/cache/schema.ts';

const DATE = 'Mon, 01 Jan 2024 00:00:00 GMT';
const T0 = Date.parse(DATE);

function setup(route: unknown = true) {
  const clock = { t: T0 };
  const cache = new Cache({ store: new MemoryStore({ maxSize: 1 << 20 }), now: () => clock.t });
  const rc = cache.forRoute(routeCache.parse(route));
  return { clock, cache, rc };
}

function req(headers: Record<string, string> = {}, url = '/a', method = 'GET'): CacheRequest {
  return { method, host: 'example.com', url, headers };
}

/** Plays the upstream's part for a ticket; returns what the client received. */
async function upstream(
  ticket: Ticket,
  status: number,
  headers: Record<string, string>,
  body = 'hello',
): Promise<{ status: number; headers: Record<string, unknown>; body: string; cached: boolean }> {
  const out = ticket.onResponse(status, { ...headers });
  if (out.kind === 'serve') {
    return {
      status: out.response.status,
      headers: out.response.headers,
      body: out.response.body.toString(),
      cached: true,
    };
  }
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(c, _e, cb) {
      chunks.push(c);
      cb();
    },
  });
  const source = Readable.from([Buffer.from(body.slice(0, 2)), Buffer.from(body.slice(2))]);
  if (out.capture) await pipeline(source, out.capture, sink);
  else await pipeline(source, sink);
  await new Promise((r) => setImmediate(r)); // let the store write settle
  return { status, headers: out.headers, body: Buffer.concat(chunks).toString(), cached: false };
}

function ticketOf(r: LookupResult): Ticket {
  assert.ok(r.kind === 'miss' || r.kind === 'revalidate', `expected miss/revalidate, got ${r.kind}`);
  return r.ticket;
}

describe('cache engine', () => {
  it('miss, store, then hit with Age and x-cache', async () => {
    const { clock, rc } = setup();
    const r1 = await rc.lookup(req());
    assert.equal(r1.kind, 'miss');
    const sent = await upstream(ticketOf(r1), 200, {
      date: DATE,
      'cache-control': 'max-age=60',
      'content-length': '5',
    });
    assert.equal(sent.headers['x-cache'], 'MISS');
    assert.equal(sent.body, 'hello');
    clock.t += 10_000;
    const r2 = await rc.lookup(req());
    assert.equal(r2.kind, 'hit');
    assert.equal(r2.response.body.toString(), 'hello');
    assert.equal(r2.response.headers.age, '10');
    assert.equal(r2.response.headers['x-cache'], 'HIT');
    assert.equal(r2.response.headers['content-length'], '5');
    clock.t += 60_000;
    assert.equal((await rc.lookup(req())).kind, 'miss'); // stale, no validators
  });

  it('bypasses unsafe methods and no-store requests', async () => {
    const { rc } = setup();
    assert.equal((await rc.lookup(req({}, '/a', 'POST'))).kind, 'bypass');
    assert.equal((await rc.lookup(req({ 'cache-control': 'no-store' }))).kind, 'bypass');
  });

  it('does not store private, no-store, Set-Cookie or Vary: * responses', async () => {
    for (const headers of [
      { 'cache-control': 'private, max-age=60' },
      { 'cache-control': 'no-store, max-age=60' },
      { 'cache-control': 'max-age=60', 'set-cookie': 'a=b' },
      { 'cache-control': 'max-age=60', vary: '*' },
    ] as Record<string, string>[]) {
      const { rc } = setup();
      await upstream(ticketOf(await rc.lookup(req())), 200, headers);
      assert.equal((await rc.lookup(req())).kind, 'miss', JSON.stringify(headers));
    }
  });

  it('stores Set-Cookie responses when configured', async () => {
    const { rc } = setup({ storeSetCookie: true });
    await upstream(ticketOf(await rc.lookup(req())), 200, { 'cache-control': 'max-age=60', 'set-cookie': 'a=b' });
    assert.equal((await rc.lookup(req())).kind, 'hit');
  });

  it('stores responses to Authorization requests only when allowed (RFC 9111 §3.5)', async () => {
    const auth = { authorization: 'Bearer x' };
    let s = setup();
    await upstream(ticketOf(await s.rc.lookup(req(auth))), 200, { 'cache-control': 'max-age=60' });
    assert.equal((await s.rc.lookup(req())).kind, 'miss');
    s = setup();
    await upstream(ticketOf(await s.rc.lookup(req(auth))), 200, { 'cache-control': 'public, max-age=60' });
    assert.equal((await s.rc.lookup(req())).kind, 'hit');
  });

  it('uses the route ttl when the response has no freshness, and can override', async () => {
    let s = setup({ ttl: '30s' });
    await upstream(ticketOf(await s.rc.lookup(req())), 200, { date: DATE });
    s.clock.t += 29_000;
    assert.equal((await s.rc.lookup(req())).kind, 'hit');
    s.clock.t += 2_000;
    assert.equal((await s.rc.lookup(req())).kind, 'miss');
    s = setup({ ttl: '30s', overrideTtl: true });
    await upstream(ticketOf(await s.rc.lookup(req())), 200, { date: DATE, 'cache-control': 'max-age=0' });
    assert.equal((await s.rc.lookup(req())).kind, 'hit');
  });

  it('serves HEAD from a GET entry without a body', async () => {
    const { rc } = setup();
    await upstream(ticketOf(await rc.lookup(req())), 200, { 'cache-control': 'max-age=60', 'content-length': '5' });
    const r = await rc.lookup(req({}, '/a', 'HEAD'));
    assert.equal(r.kind, 'hit');
    assert.equal(r.response.body.length, 0);
    assert.equal(r.response.headers['content-length'], '5');
  });

  it('answers client conditionals with 304 from a fresh entry', async () => {
    const { rc } = setup();
    const lm = 'Sun, 31 Dec 2023 00:00:00 GMT';
    await upstream(ticketOf(await rc.lookup(req())), 200, {
      'cache-control': 'max-age=60',
      etag: '"v1"',
      'last-modified': lm,
    });
    for (const h of [
      { 'if-none-match': 'W/"v1"' },
      { 'if-none-match': '"x", "v1"' },
      { 'if-modified-since': lm },
    ] as Record<string, string>[]) {
      const r = await rc.lookup(req(h));
      assert.equal(r.kind, 'hit');
      assert.equal(r.response.status, 304, JSON.stringify(h));
      assert.equal(r.response.headers.etag, '"v1"');
      assert.equal(r.response.body.length, 0);
    }
    const r = await rc.lookup(req({ 'if-none-match': '"v2"' }));
    assert.equal(r.kind === 'hit' && r.response.status, 200);
  });

  it('revalidates a stale entry: 304 refreshes it, 200 replaces it', async () => {
    const { clock, rc } = setup();
    await upstream(ticketOf(await rc.lookup(req())), 200, { 'cache-control': 'max-age=10', etag: '"v1"' }, 'old');
    clock.t += 20_000;
    const r = await rc.lookup(req());
    assert.equal(r.kind, 'revalidate');
    assert.deepEqual(r.ticket.upstreamHeaders, { 'if-none-match': '"v1"' });
    const sent = await upstream(r.ticket, 304, { 'cache-control': 'max-age=100', etag: '"v1"' });
    assert.equal(sent.cached, true);
    assert.equal(sent.status, 200);
    assert.equal(sent.body, 'old');
    assert.equal(sent.headers['x-cache'], 'REVALIDATED');
    clock.t += 50_000;
    const hit = await rc.lookup(req());
    assert.equal(hit.kind, 'hit');
    assert.equal(hit.response.headers['cache-control'], 'max-age=100');
    clock.t += 60_000;
    const again = ticketOf(await rc.lookup(req()));
    await upstream(again, 200, { 'cache-control': 'max-age=100', etag: '"v2"' }, 'new');
    const replaced = await rc.lookup(req());
    assert.equal(replaced.kind === 'hit' && replaced.response.body.toString(), 'new');
  });

  it('stale-while-revalidate: serves stale once and refreshes in the background', async () => {
    const { clock, rc } = setup();
    await upstream(ticketOf(await rc.lookup(req())), 200, {
      'cache-control': 'max-age=10, stale-while-revalidate=30',
      etag: '"v1"',
    });
    clock.t += 15_000;
    const r = await rc.lookup(req());
    assert.equal(r.kind, 'stale');
    assert.equal(r.response.headers['x-cache'], 'STALE');
    assert.ok(r.revalidation);
    const second = await rc.lookup(req());
    assert.equal(second.kind === 'stale' && second.revalidation, undefined); // one refresh at a time
    await r.revalidation.complete(304, { 'cache-control': 'max-age=10, stale-while-revalidate=30' }, Readable.from([]));
    await new Promise((res) => setImmediate(res));
    assert.equal((await rc.lookup(req())).kind, 'hit');
  });

  it('must-revalidate forbids stale serving', async () => {
    const { clock, rc } = setup({ staleWhileRevalidate: '1m', staleIfError: '1m' });
    await upstream(ticketOf(await rc.lookup(req())), 200, {
      'cache-control': 'max-age=10, must-revalidate',
      etag: '"a"',
    });
    clock.t += 15_000;
    const r = await rc.lookup(req());
    assert.equal(r.kind, 'revalidate');
    assert.equal(r.ticket.onError(), undefined);
  });

  it('stale-if-error: a connect error or 5xx within the window serves the stale entry', async () => {
    const { clock, rc } = setup({ staleIfError: '1m' });
    await upstream(ticketOf(await rc.lookup(req())), 200, { 'cache-control': 'max-age=10' }, 'kept');
    clock.t += 30_000;
    const stale = ticketOf(await rc.lookup(req())).onError();
    assert.equal(stale?.body.toString(), 'kept');
    assert.equal(stale?.headers['x-cache'], 'STALE');
    const sent = await upstream(ticketOf(await rc.lookup(req())), 503, {});
    assert.equal(sent.body, 'kept');
    clock.t += 60_000;
    assert.equal(ticketOf(await rc.lookup(req())).onError(), undefined); // window over
  });

  it('coalesces 50 concurrent misses into one upstream request', async () => {
    const { rc } = setup();
    const results = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const r = await rc.lookup(req());
        if (r.kind === 'miss') {
          await upstream(r.ticket, 200, { 'cache-control': 'max-age=60' }, 'shared');
          return 'upstream';
        }
        assert.equal(r.kind, 'hit');
        assert.equal(r.response.body.toString(), 'shared');
        return 'hit';
      }),
    );
    assert.equal(results.filter((x) => x === 'upstream').length, 1);
  });

  it('followers go upstream themselves when the leader could not store', async () => {
    const { rc } = setup();
    const leader = await rc.lookup(req());
    const followers = Array.from({ length: 5 }, () => rc.lookup(req()));
    await new Promise((r) => setImmediate(r)); // followers are now waiting on the leader
    await upstream(ticketOf(leader), 200, { 'cache-control': 'no-store' });
    for (const f of await Promise.all(followers)) {
      assert.equal(f.kind, 'miss');
      ticketOf(f).onError(); // release anyone coalesced behind this one
    }
  });

  it('keys variants by the headers Vary names', async () => {
    const { rc } = setup();
    const en = { 'accept-language': 'en' };
    const fr = { 'accept-language': 'fr' };
    await upstream(
      ticketOf(await rc.lookup(req(en))),
      200,
      { 'cache-control': 'max-age=60', vary: 'Accept-Language' },
      'hello',
    );
    const frMiss = await rc.lookup(req(fr));
    assert.equal(frMiss.kind, 'miss');
    await upstream(ticketOf(frMiss), 200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' }, 'bonjour');
    const a = await rc.lookup(req(en));
    const b = await rc.lookup(req(fr));
    assert.equal(a.kind === 'hit' && a.response.body.toString(), 'hello');
    assert.equal(b.kind === 'hit' && b.response.body.toString(), 'bonjour');
  });

  it('does not store bodies over maxObjectSize but streams them whole', async () => {
    const { rc } = setup({ maxObjectSize: 4 });
    const sent = await upstream(ticketOf(await rc.lookup(req())), 200, { 'cache-control': 'max-age=60' }, 'too long');
    assert.equal(sent.body, 'too long');
    assert.equal((await rc.lookup(req())).kind, 'miss');
  });

  it('purges by key and by prefix', async () => {
    const { cache, rc } = setup();
    for (const url of ['/assets/a', '/assets/b', '/api']) {
      await upstream(ticketOf(await rc.lookup(req({}, url))), 200, { 'cache-control': 'max-age=60' });
    }
    assert.equal(await cache.purge(rc.keyOf(req({}, '/api'))), true);
    assert.equal(await cache.purgePrefix('example.com/assets/'), 2);
    assert.equal((await rc.lookup(req({}, '/assets/a'))).kind, 'miss');
  });

  it('invalidates after an unsafe request', async () => {
    const { rc } = setup();
    await upstream(ticketOf(await rc.lookup(req())), 200, { 'cache-control': 'max-age=60' });
    await rc.invalidate(req({}, '/a', 'POST'));
    assert.equal((await rc.lookup(req())).kind, 'miss');
  });
});
