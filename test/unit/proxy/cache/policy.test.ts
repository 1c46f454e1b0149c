/** Pure policy: Cache-Control parsing, storability, freshness and usability tables (RFC 9111, RFC 5861). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseAge, parseCacheControl, parseHttpDate, parseTokenList } from '../../../../src/proxy/cache/directives.ts';
import { KeyBuilder, normalise, variantKey } from '../../../../src/proxy/cache/key.ts';
import {
  canServeOnError,
  computeFreshness,
  correctedInitialAge,
  isStorable,
  type PolicyConfig,
  retentionMs,
  usability,
} from '../../../../src/proxy/cache/policy.ts';
import type { CacheEntry } from '../../../../src/proxy/cache/types.ts';

const CFG: PolicyConfig = { overrideTtl: false, staleWhileRevalidate: 0, staleIfError: 0, storeSetCookie: false };
const NOW = Date.parse('Mon, 01 Jan 2024 00:00:00 GMT');
const DATE = new Date(NOW).toUTCString();

describe('parseCacheControl', () => {
  it('reads directives, arguments, quotes, case and duplicates', () => {
    const d = parseCacheControl(
      'Public, MAX-AGE=60, s-maxage="120", max-age=5, no-cache="set-cookie", stale-if-error=30',
    );
    assert.equal(d.public, true);
    assert.equal(d.maxAge, 60); // first occurrence wins
    assert.equal(d.sMaxAge, 120);
    assert.equal(d.noCache, false, 'qualified no-cache is not the unqualified one');
    assert.deepEqual(d.noCacheFields, ['set-cookie']);
    assert.equal(d.staleIfError, 30);
    assert.equal(parseCacheControl('no-cache').noCache, true);
    assert.deepEqual(parseCacheControl('private="X-User, x-b", max-age=1').privateFields, ['x-user', 'x-b']);
    assert.equal(parseCacheControl('private="X-User"').private, false);
    assert.equal(parseCacheControl('must-understand, no-store').mustUnderstand, true);
    assert.equal(parseCacheControl('max-age=abc').maxAge, 0); // invalid → stale
    assert.equal(parseCacheControl(['no-store', 'private']).private, true);
    assert.equal(parseCacheControl('max-stale').maxStale, Number.POSITIVE_INFINITY);
    assert.equal(parseCacheControl(undefined).maxAge, -1);
  });
  it('splits Vary', () => {
    assert.deepEqual(parseTokenList('Accept-Encoding, accept-language ,Accept-Encoding'), [
      'accept-encoding',
      'accept-language',
    ]);
  });
});

describe('HTTP dates and Age', () => {
  it('accepts the three HTTP-date formats only (RFC 9110 §5.6.7)', () => {
    const t = Date.UTC(1994, 10, 6, 8, 49, 37);
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'), t);
    assert.equal(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT'), t);
    assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994'), t);
    assert.equal(parseHttpDate(' Sun, 06 Nov 1994 08:49:37 GMT '), t);
    for (const bad of [
      '0',
      '-1',
      '2099',
      'garbage',
      '',
      'Thu, 01 Jan 2099 00:00:00',
      'Mon, 31 Feb 2024 00:00:00 GMT',
    ]) {
      assert.equal(parseHttpDate(bad), undefined, bad);
    }
    assert.equal(parseHttpDate('Sun, 06 Nov 1994 24:00:00 GMT'), undefined);
  });
  it('reads the first member of Age and ignores invalid values (RFC 9111 §5.1)', () => {
    assert.equal(parseAge('30'), 30);
    assert.equal(parseAge('30, 100'), 30);
    assert.equal(parseAge(['7', '9']), 7);
    for (const bad of ['abc', '-5', '1e3', '', undefined]) assert.equal(parseAge(bad), 0, String(bad));
  });
});

describe('isStorable (shared cache)', () => {
  const table: [string, string, number, Record<string, string>, Record<string, string>, boolean][] = [
    ['200 max-age', 'GET', 200, {}, { 'cache-control': 'max-age=60' }, true],
    ['HEAD never stored', 'HEAD', 200, {}, { 'cache-control': 'max-age=60' }, false],
    ['404 by default with ttl-less heuristic via Last-Modified', 'GET', 404, {}, { 'last-modified': DATE }, true],
    ['500 without explicit freshness', 'GET', 500, {}, { 'last-modified': DATE }, false],
    ['500 with max-age', 'GET', 500, {}, { 'cache-control': 'max-age=5' }, true],
    ['206 never', 'GET', 206, {}, { 'cache-control': 'max-age=60' }, false],
    ['no-store', 'GET', 200, {}, { 'cache-control': 'no-store, max-age=60' }, false],
    ['private', 'GET', 200, {}, { 'cache-control': 'private, max-age=60' }, false],
    ['request no-store', 'GET', 200, { 'cache-control': 'no-store' }, { 'cache-control': 'max-age=60' }, false],
    ['auth without permission', 'GET', 200, { authorization: 'x' }, { 'cache-control': 'max-age=60' }, false],
    ['auth + public', 'GET', 200, { authorization: 'x' }, { 'cache-control': 'public, max-age=60' }, true],
    ['auth + s-maxage', 'GET', 200, { authorization: 'x' }, { 'cache-control': 's-maxage=60' }, true],
    [
      'auth + must-revalidate',
      'GET',
      200,
      { authorization: 'x' },
      { 'cache-control': 'must-revalidate, max-age=9' },
      true,
    ],
    ['set-cookie', 'GET', 200, {}, { 'cache-control': 'max-age=60', 'set-cookie': 'a=1' }, false],
    ['vary *', 'GET', 200, {}, { 'cache-control': 'max-age=60', vary: '*' }, false],
    ['no lifetime, no validators', 'GET', 200, {}, {}, false],
    ['max-age=0 without validators', 'GET', 200, {}, { 'cache-control': 'max-age=0' }, false],
    [
      'max-age=0, must-revalidate (kept for the 504)',
      'GET',
      200,
      {},
      { 'cache-control': 'max-age=0, must-revalidate' },
      true,
    ],
    [
      'max-age=0 with a stale-if-error window',
      'GET',
      200,
      {},
      { 'cache-control': 'max-age=0, stale-if-error=60' },
      true,
    ],
    [
      'must-understand overrides no-store',
      'GET',
      200,
      {},
      { 'cache-control': 'must-understand, no-store, max-age=9' },
      true,
    ],
    ['must-understand, unknown status', 'GET', 299, {}, { 'cache-control': 'must-understand, max-age=9' }, false],
    ['qualified private', 'GET', 200, {}, { 'cache-control': 'private="x-user", max-age=60' }, true],
    [
      'set-cookie excluded by private="set-cookie"',
      'GET',
      200,
      {},
      { 'cache-control': 'private="set-cookie", max-age=60', 'set-cookie': 'a=1' },
      true,
    ],
    ['302 without freshness', 'GET', 302, {}, { 'last-modified': DATE }, false],
    ['302 with max-age', 'GET', 302, {}, { 'cache-control': 'max-age=60' }, true],
    ['no-cache with etag (always revalidate)', 'GET', 200, {}, { 'cache-control': 'no-cache', etag: '"x"' }, true],
  ];
  for (const [name, method, status, reqH, resH, expected] of table) {
    it(name, () => {
      const resCc = parseCacheControl(resH['cache-control']);
      const f = computeFreshness(status, resH, resCc, CFG, NOW);
      const reqCc = parseCacheControl(reqH['cache-control']);
      assert.equal(isStorable(method, reqH.authorization !== undefined, reqCc, status, resH, resCc, CFG, f), expected);
    });
  }
});

describe('computeFreshness', () => {
  const life = (h: Record<string, string>, cfg: PolicyConfig = CFG, status = 200) =>
    computeFreshness(status, h, parseCacheControl(h['cache-control']), cfg, NOW);
  it('s-maxage over max-age over Expires over ttl over heuristic', () => {
    assert.equal(life({ 'cache-control': 'max-age=10, s-maxage=20' }).lifetime, 20_000);
    assert.equal(life({ 'cache-control': 'max-age=10' }).lifetime, 10_000);
    assert.equal(life({ date: DATE, expires: new Date(NOW + 30_000).toUTCString() }).lifetime, 30_000);
    assert.equal(life({ expires: '0' }).lifetime, 0);
    assert.equal(life({ expires: '2099' }).lifetime, 0, 'not an HTTP-date: already expired');
    assert.equal(life({}, { ...CFG, ttl: 5000 }).lifetime, 5000);
    assert.equal(life({ 'cache-control': 'max-age=10' }, { ...CFG, ttl: 5000, overrideTtl: true }).lifetime, 5000);
    const lm = new Date(NOW - 1_000_000).toUTCString();
    assert.equal(life({ date: DATE, 'last-modified': lm }).lifetime, 100_000); // 10% heuristic
  });
  it('stale windows come from the response, else the route; must-revalidate and s-maxage disable them', () => {
    const f = life({ 'cache-control': 'max-age=1, stale-while-revalidate=5' }, { ...CFG, staleIfError: 9000 });
    assert.equal(f.staleWhileRevalidate, 5000);
    assert.equal(f.staleIfError, 9000);
    assert.equal(life({ 'cache-control': 'max-age=1, must-revalidate, stale-if-error=5' }).staleIfError, 0);
    assert.equal(life({ 'cache-control': 's-maxage=1, stale-while-revalidate=5' }).staleWhileRevalidate, 0);
  });
});

describe('age and usability', () => {
  it('corrected initial age (§4.2.3) uses Age, Date and the response delay', () => {
    assert.equal(correctedInitialAge({ date: DATE, age: '30' }, NOW - 2000, NOW), 32_000);
    assert.equal(correctedInitialAge({ date: new Date(NOW - 50_000).toUTCString() }, NOW, NOW), 50_000);
  });
  const entry = (o: Partial<CacheEntry>): CacheEntry => ({
    status: 200,
    headers: {},
    body: Buffer.alloc(0),
    requestTime: 0,
    responseTime: 0,
    storedAt: 0,
    initialAge: 0,
    lifetime: 10_000,
    staleWhileRevalidate: 5000,
    staleIfError: 0,
    mustRevalidate: false,
    noCache: false,
    ...o,
  });
  const none = parseCacheControl(undefined);
  it('fresh, then stale-while-revalidate, then stale', () => {
    assert.equal(usability(entry({}), 5000, none), 'fresh');
    assert.equal(usability(entry({}), 12_000, none), 'stale-while-revalidate');
    assert.equal(usability(entry({}), 16_000, none), 'stale');
    assert.equal(usability(entry({ mustRevalidate: true }), 12_000, none), 'stale');
    assert.equal(usability(entry({ noCache: true, lifetime: 0 }), 0, none), 'stale');
  });
  it('request directives: no-cache, max-age, min-fresh, max-stale', () => {
    assert.equal(usability(entry({}), 1000, parseCacheControl('no-cache')), 'stale');
    assert.equal(usability(entry({}), 3000, parseCacheControl('max-age=2')), 'stale');
    assert.equal(usability(entry({}), 8000, parseCacheControl('min-fresh=5')), 'stale');
    assert.equal(usability(entry({ staleWhileRevalidate: 0 }), 30_000, parseCacheControl('max-stale=60')), 'max-stale');
    assert.equal(usability(entry({ staleWhileRevalidate: 0 }), 30_000, parseCacheControl('max-stale=10')), 'stale');
    assert.equal(
      usability(entry({ staleWhileRevalidate: 0, mustRevalidate: true }), 30_000, parseCacheControl('max-stale')),
      'stale',
    );
  });
});

describe('stale on error and retention', () => {
  const stale = {
    status: 200,
    headers: {},
    body: Buffer.alloc(0),
    requestTime: 0,
    responseTime: 0,
    storedAt: 0,
    initialAge: 0,
    lifetime: 10_000,
    staleWhileRevalidate: 0,
    staleIfError: 0,
    mustRevalidate: false,
    noCache: false,
  } satisfies CacheEntry;
  it('the response window, the request window or max-stale; never must-revalidate', () => {
    const none = parseCacheControl(undefined);
    assert.equal(canServeOnError(stale, 20_000, none), false);
    assert.equal(canServeOnError({ ...stale, staleIfError: 30_000 }, 20_000, none), true);
    assert.equal(canServeOnError(stale, 20_000, parseCacheControl('stale-if-error=60')), true);
    assert.equal(canServeOnError(stale, 20_000, parseCacheControl('max-stale=5')), false);
    assert.equal(canServeOnError(stale, 20_000, parseCacheControl('max-stale')), true);
    assert.equal(canServeOnError({ ...stale, mustRevalidate: true }, 20_000, parseCacheControl('max-stale')), false);
  });
  it('keeps entries stale for as long as they were fresh, at least five minutes', () => {
    const f = { lifetime: 1000, staleWhileRevalidate: 0, staleIfError: 0, mustRevalidate: false, noCache: false };
    assert.equal(retentionMs(f), 301_000);
    assert.equal(retentionMs({ ...f, lifetime: 3_600_000 }), 7_200_000);
    assert.equal(retentionMs({ ...f, staleIfError: 86_400_000 }), 86_401_000);
  });
});

describe('keys', () => {
  it('scheme, host, path and query by mode, plus configured headers and cookies', () => {
    const keep = new KeyBuilder({ headers: [], query: 'keep', cookies: [] });
    assert.equal(keep.base('https', 'Example.COM', '/a?b=1&a=2', {}), 'https://example.com/a?b=1&a=2');
    assert.equal(keep.base('http', 'Example.COM', '/a', {}), 'http://example.com/a');
    const sorted = new KeyBuilder({ headers: [], query: 'sorted', cookies: [] });
    assert.equal(sorted.base('https', 'h', '/a?b=1&a=2&a=1', {}), 'https://h/a?a=2&a=1&b=1');
    const ignore = new KeyBuilder({ headers: ['X-Tenant'], query: 'ignore', cookies: ['lang'] });
    assert.equal(
      ignore.base('https', 'h', '/a?x=1', { 'x-tenant': 'T1', cookie: 'sid=9; lang=fr' }),
      'https://h/a\nx-tenant:T1\ncookie.lang=fr',
    );
  });
  it('normalises Vary values', () => {
    assert.equal(normalise(['gzip ,  br', 'zstd']), 'gzip,br,zstd');
    assert.equal(normalise(' A  b ', false), 'A b');
    assert.notEqual(variantKey('b', ['x-flag'], {}), variantKey('b', ['x-flag'], { 'x-flag': '' }));
    assert.notEqual(variantKey('b', ['x-t'], { 'x-t': 'a' }), variantKey('b', ['x-t'], { 'x-t': 'A' }));
    assert.notEqual(variantKey('b', ['x-t'], { 'x-t': 'a' }, 'g1'), variantKey('b', ['x-t'], { 'x-t': 'a' }, 'g2'));
    assert.equal(
      variantKey('b', ['accept-encoding'], { 'accept-encoding': 'GZIP, br' }),
      'b\n#vary\naccept-encoding:gzip,br',
    );
  });
});
