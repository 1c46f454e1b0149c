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
    assert.equal(await cache.purge(rc.keyOf(req({}, '/api'))), 1);
    assert.equal(await cache.purgePrefix('example.com/assets/'), 2);
    assert.equal((await rc.lookup(req({}, '/assets/a'))).kind, 'miss');
  });

  it('a 200 to a HEAD sent upstream freshens the stale GET entry it matches, or drops one it does not (§4.3.5)', async () => {
    const { clock, rc } = setup();
    const stored = { 'cache-control': 'max-age=10', etag: '"v1"', 'content-length': '5' };
    await upstream(ticketOf(await rc.lookup(req())), 200, stored);
    clock.t += 20_000;
    // Stale: the HEAD goes upstream; its 200 matches by ETag and Content-Length.
    const head = await upstream(ticketOf(await rc.lookup(req({}, '/a', 'HEAD'))), 200, {
      ...stored,
      'cache-control': 'max-age=60',
      'x-version': 'new',
    });
    assert.equal(head.headers['x-cache'], 'MISS');
    const hit = await rc.lookup(req());
    assert.ok(hit.kind === 'hit', `expected a hit, got ${hit.kind}`);
    assert.equal(hit.response.headers['x-version'], 'new');
    assert.equal(hit.response.body.toString(), 'hello', 'the stored body is kept');

    clock.t += 120_000;
    // Another representation now (a new ETag): the stored one is dropped, not served as fresh.
    await upstream(ticketOf(await rc.lookup(req({}, '/a', 'HEAD'))), 200, { ...stored, etag: '"v2"' });
    assert.equal((await rc.lookup(req())).kind, 'miss');
  });

  it('a HEAD 200 without validators, or with another length, does not freshen the entry', async () => {
    const { clock, rc } = setup();
    const stored = { 'cache-control': 'max-age=10', etag: '"v1"' };
    for (const headHeaders of [{ 'cache-control': 'max-age=60' }, { ...stored, 'content-length': '999' }]) {
      await upstream(ticketOf(await rc.lookup(req())), 200, stored);
      clock.t += 20_000;
      await upstream(ticketOf(await rc.lookup(req({}, '/a', 'HEAD'))), 200, headHeaders);
      const after = await rc.lookup(req());
      assert.notEqual(after.kind, 'hit');
      if (after.kind === 'miss' || after.kind === 'revalidate') after.ticket.onError();
    }
  });

  it('keys by scheme: http and https entries are apart, and a purge without a scheme takes both', async () => {
    const { cache, rc } = setup();
    const plain: CacheRequest = { ...req(), scheme: 'http' };
    await upstream(ticketOf(await rc.lookup(plain)), 301, { 'cache-control': 'max-age=60', location: 'https://x/' });
    assert.equal(rc.keyOf(plain), 'http://example.com/a');
    assert.equal((await rc.lookup(req())).kind, 'miss', 'the https request does not get the http answer');
    await upstream(ticketOf(await rc.lookup(req())), 200, { 'cache-control': 'max-age=60' });
    const hit = await rc.lookup(plain);
    assert.equal(hit.kind === 'hit' && hit.response.status, 301);
    assert.equal(await cache.purge('https://example.com/a'), 1, 'a key with a scheme is exact');
    assert.equal((await rc.lookup(plain)).kind, 'hit');
    await upstream(ticketOf(await rc.lookup(req())), 200, { 'cache-control': 'max-age=60' });
    assert.equal(await cache.purge('example.com/a'), 2);
    assert.equal(await cache.purgePrefix('https://example.com/'), 0);
    // An unsafe request over one scheme invalidates the URI under both.
    await upstream(ticketOf(await rc.lookup(plain)), 200, { 'cache-control': 'max-age=60' });
    await rc.invalidate(req({}, '/a', 'POST'));
    assert.equal((await rc.lookup(plain)).kind, 'miss');
  });

  it('invalidates after an unsafe request', async () => {
    const { rc } = setup();
    await upstream(ticketOf(await rc.lookup(req())), 200, { 'cache-control': 'max-age=60' });
    await rc.invalidate(req({}, '/a', 'POST'));
    assert.equal((await rc.lookup(req())).kind, 'miss');
  });
});

describe('cache engine: RFC 9111 details', () => {
  it('§4.4: afterUnsafe invalidates the target, same-host Location / Content-Location and every variant', async () => {
    const { rc } = setup();
    const store = async (url: string, headers: Record<string, string> = {}, vary?: string) =>
      upstream(ticketOf(await rc.lookup(req(headers, url))), 200, {
        'cache-control': 'max-age=60',
        ...(vary === undefined ? {} : { vary }),
      });
    await store('/t', { 'accept-language': 'en' }, 'accept-language');
    await store('/t', { 'accept-language': 'fr' }, 'accept-language');
    await store('/loc');
    await store('/dir/cloc');
    await store('/kept');
    await rc.afterUnsafe(req({}, '/t', 'GET'), 200, {});
    assert.equal((await rc.lookup(req({ 'accept-language': 'fr' }, '/t'))).kind, 'hit', 'GET invalidates nothing');
    await rc.afterUnsafe(req({}, '/t', 'POST'), 500, {});
    assert.equal((await rc.lookup(req({ 'accept-language': 'fr' }, '/t'))).kind, 'hit', 'errors invalidate nothing');
    await rc.afterUnsafe(req({}, '/dir/form', 'POST'), 201, {
      location: 'http://example.com/loc',
      'content-location': 'cloc',
    });
    await rc.afterUnsafe(req({}, '/t', 'PATCH'), 204, { location: 'http://elsewhere.test/kept' });
    await rc.afterUnsafe(req({}, '/x', 'PUT'), 204, { location: '//elsewhere.test/kept' });
    for (const [url, headers] of [
      ['/t', { 'accept-language': 'en' }],
      ['/t', { 'accept-language': 'fr' }],
      ['/loc', {}],
      ['/dir/cloc', {}],
    ] as const) {
      const r = await rc.lookup(req(headers, url));
      assert.equal(r.kind, 'miss', url);
      r.kind === 'miss' && r.ticket.onError();
    }
    assert.equal((await rc.lookup(req({}, '/kept'))).kind, 'hit', 'another host is never invalidated');
  });

  it('§4.4: with key headers configured, invalidation reaches every key of the URI', async () => {
    const { rc } = setup({ key: { headers: ['x-tenant'] } });
    for (const tenant of ['a', 'b']) {
      await upstream(ticketOf(await rc.lookup(req({ 'x-tenant': tenant }))), 200, { 'cache-control': 'max-age=60' });
    }
    await upstream(ticketOf(await rc.lookup(req({ 'x-tenant': 'a' }, '/ab'))), 200, { 'cache-control': 'max-age=60' });
    await rc.afterUnsafe(req({ 'x-tenant': 'a' }, '/a', 'DELETE'), 200, {});
    assert.equal((await rc.lookup(req({ 'x-tenant': 'b' }))).kind, 'miss');
    assert.equal((await rc.lookup(req({ 'x-tenant': 'a' }, '/ab'))).kind, 'hit');
  });

  it('§5.2.1.7: only-if-cached answers 504 when nothing usable is stored', async () => {
    const { clock, rc } = setup();
    const oic = { 'cache-control': 'only-if-cached' };
    const none = await rc.lookup(req(oic));
    assert.equal(none.kind === 'reply' && none.reply.status, 504);
    await upstream(ticketOf(await rc.lookup(req())), 200, { 'cache-control': 'max-age=10', etag: '"a"' });
    assert.equal((await rc.lookup(req(oic))).kind, 'hit');
    clock.t += 20_000;
    const stale = await rc.lookup(req(oic));
    assert.equal(stale.kind === 'reply' && stale.reply.code, 'GW_CACHE_ONLY_IF_CACHED');
  });

  it('§5.2.2.2: a failed revalidation of a must-revalidate entry becomes 504', async () => {
    const { clock, rc } = setup();
    await upstream(ticketOf(await rc.lookup(req())), 200, { 'cache-control': 'max-age=0, must-revalidate' });
    clock.t += 1000;
    const t = ticketOf(await rc.lookup(req()));
    assert.equal(t.onError(), undefined);
    const upstreamDown = { status: 502, code: 'GW_UPSTREAM_RESET', details: 'upstream_reset' } as const;
    assert.equal(t.failureReply(upstreamDown).status, 504);
    const { rc: plain } = setup();
    const t2 = ticketOf(await plain.lookup(req()));
    assert.equal(t2.failureReply(upstreamDown), upstreamDown, 'nothing stored: the upstream failure as is');
  });

  it('§4.3.2: the client If-None-Match joins the stored entity-tag; a 304 for the client only is passed on', async () => {
    const { clock, rc } = setup();
    await upstream(ticketOf(await rc.lookup(req())), 200, { 'cache-control': 'max-age=10', etag: '"v1"' }, 'old');
    clock.t += 20_000;
    const r = await rc.lookup(req({ 'if-none-match': '"c"' }));
    assert.equal(r.kind, 'revalidate');
    assert.deepEqual(r.ticket.upstreamHeaders, { 'if-none-match': '"c", "v1"' });
    const out = r.ticket.onResponse(304, { etag: '"c"' });
    assert.equal(out.kind, 'forward', 'the 304 names the client tag: forwarded, the entry not updated');
  });

  it('§4.3.4: a 304 naming another entity-tag does not update the stored response', async () => {
    const { clock, rc } = setup();
    await upstream(ticketOf(await rc.lookup(req())), 200, { 'cache-control': 'max-age=10', etag: '"v1"' }, 'old');
    clock.t += 20_000;
    const sent = await upstream(ticketOf(await rc.lookup(req())), 304, {
      'cache-control': 'max-age=100',
      etag: '"v2"',
    });
    assert.equal(sent.status, 200);
    assert.equal(sent.body, 'old');
    assert.notEqual(sent.headers['cache-control'], 'max-age=100');
    assert.equal((await rc.lookup(req())).kind, 'miss', 'dropped: the next request fetches it whole');
  });

  it('§4.3.4: a 304 without Date dates the refreshed response at its receipt', async () => {
    const { clock, rc } = setup();
    await upstream(ticketOf(await rc.lookup(req())), 200, { date: DATE, 'cache-control': 'max-age=10', etag: '"a"' });
    clock.t += 3_600_000;
    const sent = await upstream(ticketOf(await rc.lookup(req())), 304, { 'cache-control': 'max-age=60' });
    assert.equal(sent.headers.age, '0');
    assert.equal(sent.headers.date, new Date(clock.t).toUTCString());
    clock.t += 30_000;
    const hit = await rc.lookup(req());
    assert.equal(hit.kind === 'hit' && hit.response.headers.age, '30');
  });

  it('§3.1 / RFC 9110 §6.6.1: Date added when missing; Proxy-Authentication-Info and qualified private fields not stored', async () => {
    const { rc } = setup();
    await upstream(ticketOf(await rc.lookup(req())), 200, {
      'cache-control': 'max-age=60, private="x-user", no-cache="x-secret"',
      'x-user': 'alice',
      'x-secret': 's',
      'x-public': 'p',
      'proxy-authentication-info': 'nextnonce=1',
    });
    const hit = await rc.lookup(req());
    assert.equal(hit.kind, 'hit');
    const h = hit.response.headers;
    assert.equal(h.date, new Date(T0).toUTCString());
    assert.equal(h['x-public'], 'p');
    for (const name of ['x-user', 'x-secret', 'proxy-authentication-info']) assert.equal(h[name], undefined, name);
  });

  it('§5.2.2.3: must-understand stores understood statuses despite no-store, never unknown ones', async () => {
    let s = setup();
    await upstream(ticketOf(await s.rc.lookup(req())), 200, {
      'cache-control': 'must-understand, no-store, max-age=60',
    });
    assert.equal((await s.rc.lookup(req())).kind, 'hit');
    s = setup();
    await upstream(ticketOf(await s.rc.lookup(req())), 299, { 'cache-control': 'must-understand, max-age=60' });
    assert.equal((await s.rc.lookup(req())).kind, 'miss');
  });

  it('RFC 9110 §14: single byte ranges from a stored 200; If-Range; 416 past the end', async () => {
    const { rc } = setup();
    await upstream(
      ticketOf(await rc.lookup(req())),
      200,
      { date: DATE, 'cache-control': 'max-age=60', etag: '"r"', 'last-modified': 'Sun, 31 Dec 2023 00:00:00 GMT' },
      'abcdefghij',
    );
    const cases: [Record<string, string>, number, string, string | undefined][] = [
      [{ range: 'bytes=2-4' }, 206, 'cde', 'bytes 2-4/10'],
      [{ range: 'bytes=7-' }, 206, 'hij', 'bytes 7-9/10'],
      [{ range: 'bytes=-3' }, 206, 'hij', 'bytes 7-9/10'],
      [{ range: 'bytes=8-100' }, 206, 'ij', 'bytes 8-9/10'],
      [{ range: 'bytes=0-1,4-5' }, 200, 'abcdefghij', undefined],
      [{ range: 'items=0-1' }, 200, 'abcdefghij', undefined],
      [{ range: 'bytes=4-2' }, 200, 'abcdefghij', undefined],
      [{ range: 'bytes=10-' }, 416, '', 'bytes */10'],
      [{ range: 'bytes=0-1', 'if-range': '"r"' }, 206, 'ab', 'bytes 0-1/10'],
      [{ range: 'bytes=0-1', 'if-range': 'W/"r"' }, 200, 'abcdefghij', undefined],
      [{ range: 'bytes=0-1', 'if-range': 'Sun, 31 Dec 2023 00:00:00 GMT' }, 206, 'ab', 'bytes 0-1/10'],
      [{ range: 'bytes=0-1', 'if-range': 'Sat, 30 Dec 2023 00:00:00 GMT' }, 200, 'abcdefghij', undefined],
    ];
    for (const [headers, status, body, contentRange] of cases) {
      const r = await rc.lookup(req(headers));
      assert.equal(r.kind, 'hit');
      assert.equal(r.response.status, status, JSON.stringify(headers));
      assert.equal(r.response.body.toString(), body, JSON.stringify(headers));
      assert.equal(r.response.headers['content-range'], contentRange);
      assert.equal(r.response.headers['content-length'], String(body.length));
    }
    const head = await rc.lookup(req({ range: 'bytes=0-1' }, '/a', 'HEAD'));
    assert.equal(head.kind === 'hit' && head.response.status, 200, 'Range is defined for GET only');
  });

  it('§4.1: absent and empty values differ; case matters except for Accept-* fields', async () => {
    const { rc } = setup();
    const vary = { 'cache-control': 'max-age=60', vary: 'x-token, accept-language' };
    await upstream(ticketOf(await rc.lookup(req({ 'x-token': 'abc', 'accept-language': 'EN' }))), 200, vary);
    assert.equal((await rc.lookup(req({ 'x-token': 'abc', 'accept-language': 'en' }))).kind, 'hit');
    const upper = await rc.lookup(req({ 'x-token': 'ABC', 'accept-language': 'en' }));
    assert.equal(upper.kind, 'miss');
    upper.kind === 'miss' && upper.ticket.onError();
    const { rc: rc2 } = setup();
    await upstream(ticketOf(await rc2.lookup(req())), 200, { 'cache-control': 'max-age=60', vary: 'x-flag' });
    const empty = await rc2.lookup(req({ 'x-flag': '' }));
    assert.equal(empty.kind, 'miss');
    empty.kind === 'miss' && empty.ticket.onError();
    assert.equal((await rc2.lookup(req())).kind, 'hit');
  });

  it('a cookie set by a 304 reaches that client only; it is not stored', async () => {
    const { clock, rc } = setup();
    await upstream(ticketOf(await rc.lookup(req())), 200, { 'cache-control': 'max-age=10', etag: '"a"' });
    clock.t += 20_000;
    const sent = await upstream(ticketOf(await rc.lookup(req())), 304, {
      'cache-control': 'max-age=60',
      etag: '"a"',
      'set-cookie': 'sid=1',
    });
    assert.equal(sent.headers['set-cookie'], 'sid=1');
    const hit = await rc.lookup(req());
    assert.equal(hit.kind === 'hit' && hit.response.headers['set-cookie'], undefined);
  });

  it('stale-while-revalidate refreshes without the client preconditions', async () => {
    const { clock, rc } = setup();
    await upstream(ticketOf(await rc.lookup(req())), 200, {
      'cache-control': 'max-age=10, stale-while-revalidate=60',
      etag: '"a"',
    });
    clock.t += 20_000;
    const r = await rc.lookup(req({ 'if-none-match': '"client"', range: 'bytes=0-1' }));
    assert.ok(r.kind === 'stale' && r.revalidation !== undefined);
    assert.deepEqual(r.revalidation.upstreamHeaders, { 'if-none-match': '"a"' });
    r.revalidation.onError();
  });

  it('request stale-if-error and max-stale let a failed upstream be hidden (RFC 5861 §4, RFC 9111 §4.2.4)', async () => {
    const { clock, rc } = setup();
    await upstream(ticketOf(await rc.lookup(req())), 200, { 'cache-control': 'max-age=10' }, 'kept');
    clock.t += 30_000;
    assert.equal(ticketOf(await rc.lookup(req())).onError(), undefined);
    const sie = ticketOf(await rc.lookup(req({ 'cache-control': 'stale-if-error=60' }))).onError();
    assert.equal(sie?.body.toString(), 'kept');
  });
});
