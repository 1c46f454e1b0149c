/**
 * What the second cache audit fixed, unit by unit: client preconditions on stored responses (If-Match,
 * If-Unmodified-Since, If-None-Match: *), 204 framing, 200s carrying Content-Range, min-fresh against
 * stale-while-revalidate, invalid Date fields, the capture releasing waiters as soon as a body is too big.
 */
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, it } from 'node:test';
import { Cache, type CacheRequest, type LookupResult, type Ticket } from '../../../../src/proxy/cache/cache.ts';
import { CaptureStream } from '../../../../src/proxy/cache/capture.ts';
import { isNotModified, matchesStrong, preconditionFails } from '../../../../src/proxy/cache/conditional.ts';
import { parseCacheControl } from '../../../../src/proxy/cache/directives.ts';
import { MemoryStore } from '../../../../src/proxy/cache/memory-store.ts';
import { computeFreshness, isStorable, type PolicyConfig, usability } from '../../../../src/proxy/cache/policy.ts';
import { headersToStore, mergeNotModified, respondFromEntry } from '../../../../src/proxy/cache/respond.ts';
import { routeCache } from '../../../../src/proxy/cache/schema.ts';
import type { CacheEntry } from '../../../../src/proxy/cache/types.ts';

const DATE = 'Mon, 01 Jan 2024 00:00:00 GMT';
const T0 = Date.parse(DATE);
const LM = 'Sun, 31 Dec 2023 00:00:00 GMT';
const CFG: PolicyConfig = { overrideTtl: false, staleWhileRevalidate: 0, staleIfError: 0, storeSetCookie: false };

function entry(o: Partial<CacheEntry> = {}): CacheEntry {
  return {
    status: 200,
    headers: { date: DATE, 'content-length': '5' },
    body: Buffer.from('hello'),
    requestTime: T0,
    responseTime: T0,
    storedAt: T0,
    initialAge: 0,
    lifetime: 60_000,
    staleWhileRevalidate: 0,
    staleIfError: 0,
    mustRevalidate: false,
    noCache: false,
    ...o,
  };
}

describe('preconditions on a stored response (RFC 9110 §13.1, §13.2.2)', () => {
  const tagged = entry({ etag: '"a"', lastModified: LM });
  it('If-Match: strong comparison, lists, `*`; a weak or missing stored tag matches only `*`', () => {
    assert.equal(matchesStrong('"a"', '"a"'), true);
    assert.equal(matchesStrong('"x", "a"', '"a"'), true);
    assert.equal(matchesStrong('W/"a"', '"a"'), false);
    assert.equal(matchesStrong('"a"', 'W/"a"'), false);
    assert.equal(matchesStrong('*', undefined), true);
    assert.equal(matchesStrong('"a"', undefined), false);
    assert.equal(preconditionFails({ 'if-match': '"b"' }, tagged), true);
    assert.equal(preconditionFails({ 'if-match': '"a"' }, tagged), false);
  });
  it('If-Unmodified-Since: only without If-Match, a valid date and a stored Last-Modified', () => {
    const before = 'Sat, 30 Dec 2023 00:00:00 GMT';
    assert.equal(preconditionFails({ 'if-unmodified-since': before }, tagged), true);
    assert.equal(preconditionFails({ 'if-unmodified-since': LM }, tagged), false);
    assert.equal(preconditionFails({ 'if-unmodified-since': before, 'if-match': '"a"' }, tagged), false);
    assert.equal(preconditionFails({ 'if-unmodified-since': 'yesterday' }, tagged), false);
    assert.equal(preconditionFails({ 'if-unmodified-since': before }, entry()), false);
  });
  it('If-None-Match: * matches a stored representation without an entity-tag', () => {
    assert.equal(isNotModified({ 'if-none-match': '*' }, entry()), true);
    assert.equal(isNotModified({ 'if-none-match': '"a"' }, entry()), false);
  });
  it('a failed precondition is a 412 without body; it goes before 304 and ranges; non-2xx entries ignore it', () => {
    const r = respondFromEntry(
      tagged,
      0,
      { method: 'GET', headers: { 'if-match': '"b"', range: 'bytes=0-1' } },
      'HIT',
      'x-cache',
    );
    assert.equal(r.status, 412);
    assert.equal(r.body.length, 0);
    assert.equal(r.headers['content-length'], '0');
    const inm = respondFromEntry(
      tagged,
      0,
      { method: 'GET', headers: { 'if-match': '"b"', 'if-none-match': '"a"' } },
      'HIT',
      'x-cache',
    );
    assert.equal(inm.status, 412);
    const notFound = entry({ status: 404, etag: '"a"' });
    const nf = respondFromEntry(notFound, 0, { method: 'GET', headers: { 'if-match': '"b"' } }, 'HIT', 'x-cache');
    assert.equal(nf.status, 404);
  });
});

describe('framing and storing', () => {
  it('a stored 204 is served without Content-Length (RFC 9110 §8.6), to GET and HEAD', () => {
    const noContent = entry({ status: 204, body: Buffer.alloc(0), headers: { date: DATE, 'content-length': '0' } });
    for (const method of ['GET', 'HEAD']) {
      const r = respondFromEntry(noContent, 0, { method, headers: {} }, 'HIT', 'x-cache');
      assert.equal(r.status, 204);
      assert.equal(r.headers['content-length'], undefined, method);
    }
  });
  it('a response with Content-Range is stored only as a 416 (RFC 9110 §14.4)', () => {
    const headers = { 'cache-control': 'max-age=60', 'content-range': 'bytes 0-3/10' };
    const cc = parseCacheControl(headers['cache-control']);
    for (const [status, storable] of [
      [200, false],
      [404, false],
      [416, true],
    ] as const) {
      const f = computeFreshness(status, headers, cc, CFG, T0);
      assert.equal(isStorable('GET', false, parseCacheControl(undefined), status, headers, cc, CFG, f), storable);
    }
  });
  it('an invalid Date is replaced by the time of receipt, when stored and when a 304 refreshes', () => {
    const stored = headersToStore({ date: 'yesterday', etag: '"a"' }, 'x-cache', 1, T0, []);
    assert.equal(stored.date, DATE);
    const merged = mergeNotModified({ date: DATE }, { date: 'garbage' }, 'x-cache', T0 + 5000);
    assert.equal(merged.date, new Date(T0 + 5000).toUTCString());
    assert.equal(mergeNotModified({ date: DATE }, {}, 'x-cache', T0).date, DATE);
  });
});

describe('usability', () => {
  it('a client min-fresh is never answered with a stale-while-revalidate copy (§5.2.1.3)', () => {
    const e = entry({ lifetime: 10_000, staleWhileRevalidate: 60_000 });
    assert.equal(usability(e, 12_000, parseCacheControl(undefined)), 'stale-while-revalidate');
    assert.equal(usability(e, 12_000, parseCacheControl('min-fresh=0')), 'stale');
    assert.equal(usability(e, 5000, parseCacheControl('min-fresh=1')), 'fresh');
  });
});

describe('capture and coalescing', () => {
  it('the capture gives up as soon as the body passes the limit, and still streams every byte', async () => {
    let settledWith: Buffer | undefined | 'pending' = 'pending';
    let settledAfter = -1;
    let seen = 0;
    const capture = new CaptureStream(4, {
      finishCapture(body) {
        settledWith = body;
        settledAfter = seen;
      },
    });
    const out: Buffer[] = [];
    const sink = new Writable({
      write(c: Buffer, _e, cb) {
        out.push(c);
        cb();
      },
    });
    const parts = ['ab', 'cde', 'fg', 'h'].map((s) => Buffer.from(s));
    const source = new Readable({
      read() {
        const next = parts.shift();
        if (next !== undefined) seen++;
        this.push(next ?? null);
      },
    });
    await pipeline(source, capture, sink);
    assert.equal(settledWith, undefined);
    assert.ok(settledAfter >= 2 && settledAfter < 4, `settled after chunk ${settledAfter}, before the end`);
    assert.equal(Buffer.concat(out).toString(), 'abcdefgh');
  });

  it('followers of a leader whose body outgrows maxObjectSize are released before that body ends', async () => {
    const cache = new Cache({ store: new MemoryStore({ maxSize: 1 << 20 }), now: () => T0 });
    const rc = cache.forRoute(routeCache.parse({ maxObjectSize: 4 }));
    const req: CacheRequest = { method: 'GET', host: 'example.com', url: '/big', headers: {} };
    const first = await rc.lookup(req);
    const ticket = ticketOf(first);
    const follower = rc.lookup(req);
    const out = ticket.onResponse(200, { 'cache-control': 'max-age=60' });
    assert.ok(out.kind === 'forward' && out.capture !== undefined);
    out.capture.write(Buffer.from('too long already'));
    // The body has not ended, yet the follower goes upstream itself.
    const next = await follower;
    assert.equal(next.kind, 'miss');
    out.capture.end();
  });
});

describe('invalidation (§4.4)', () => {
  it('a Location in another spelling of a stored URI (escapes, dot-segments, hex case) invalidates it', async () => {
    const cache = new Cache({ store: new MemoryStore({ maxSize: 1 << 20 }), now: () => T0 });
    const rc = cache.forRoute(routeCache.parse(true));
    const at = (url: string, method = 'GET'): CacheRequest => ({ method, host: 'example.com', url, headers: {} });
    for (const url of ['/a~b', '/c/d', '/%C3%A9?q=1']) {
      const out = ticketOf(await rc.lookup(at(url))).onResponse(200, { 'cache-control': 'max-age=60' });
      assert.ok(out.kind === 'forward' && out.capture !== undefined);
      out.capture.end(Buffer.from('x'));
      await new Promise((r) => setImmediate(r));
      assert.equal((await rc.lookup(at(url))).kind, 'hit', url);
    }
    await rc.afterUnsafe(at('/form', 'POST'), 201, { location: '/a%7eb', 'content-location': '/x/../c/./d' });
    await rc.afterUnsafe(at('/form', 'POST'), 303, { location: 'http://example.com/%c3%a9?q=1' });
    for (const url of ['/a~b', '/c/d', '/%C3%A9?q=1']) assert.equal((await rc.lookup(at(url))).kind, 'miss', url);
  });
});

function ticketOf(r: LookupResult): Ticket {
  assert.ok(r.kind === 'miss' || r.kind === 'revalidate', `expected miss/revalidate, got ${r.kind}`);
  return r.ticket;
}
