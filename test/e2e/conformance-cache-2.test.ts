/**
 * End to end, second audit of the shared cache: what conformance-cache.test.ts leaves out — request
 * directives in their less common forms, malformed and extreme response directives, Age, client
 * preconditions on stored responses (If-Match, If-Unmodified-Since, If-None-Match: *), framing of responses
 * served from the cache (204, 304, HEAD, ranges), invalidation corners and coalescing when the leader fails.
 *
 * One upstream answers each path with a script given by the test; every test uses its own paths, so the
 * tests run concurrently. Where time must pass the responses use `max-age=1` and the test sleeps a little
 * over a second; nothing asserts on durations.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { fetchRaw, rawExchange } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import {
  type Got,
  HOUR,
  httpDate,
  type Reply,
  type Script,
  type ScriptedOrigin,
  sleep,
  startScriptedOrigin,
} from '../helpers/scripted-origin.ts';
import { within } from '../helpers/within.ts';

describe('RFC 9111 shared cache conformance, second audit', { concurrency: true }, () => {
  let origin: ScriptedOrigin;
  let p: PorticoProcess;
  const on = (path: string, script: Script) => origin.on(path, script);
  const count = (path: string) => origin.count(path);
  const last = (path: string) => origin.last(path);

  function send(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Got> {
    return fetchRaw(`${p.url()}${path}`, { method, headers });
  }
  /** The raw bytes of one exchange (`Connection: close`), for framing checks node:http would hide. */
  function raw(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<string> {
    const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`);
    return rawExchange(
      p.port(),
      `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1:${p.port()}\r\n${lines.join('')}Connection: close\r\n\r\n`,
    );
  }
  /** Waits (bounded) until the upstream has seen `n` requests for `path`. */
  async function untilCount(path: string, n: number): Promise<void> {
    for (let i = 0; i < 300 && count(path) < n; i++) await sleep(10);
    assert.ok(count(path) >= n, `upstream requests for ${path}: ${count(path)} < ${n}`);
  }
  const cacheable = (body: string, extra: Record<string, string> = {}): Reply => ({
    headers: { 'cache-control': 'max-age=600', ...extra },
    body,
  });

  before(async () => {
    origin = await startScriptedOrigin();
    p = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
cache: { store: memory, coalesceTimeout: 60s }
upstreams:
  - name: origin
    targets: [ { url: ${origin.url} } ]
    health: { passive: { consecutiveFailures: 0 } }
routes:
  - { name: small, match: { path: /small/* }, cache: { maxObjectSize: 1KiB }, upstream: origin }
  - { name: cached, match: { path: /* }, cache: true, upstream: origin }
`);
  });

  after(async () => {
    await p?.stop();
    await origin?.close();
  });

  // --- §5.2.1 request directives ----------------------------------------------------------------------------

  it('§5.2.1: max-stale and min-fresh bounds, only-if-cached on a stale entry, Pragma beside Cache-Control', async () => {
    const date = httpDate(-10_000);
    on('/r/min-fresh-ok', (_r, n) => ({ headers: { 'cache-control': 'max-age=600', date }, body: `v${n}` }));
    await send('/r/min-fresh-ok');
    const ok = await send('/r/min-fresh-ok', { 'cache-control': 'min-fresh=60' });
    assert.equal(ok.body, 'v1', 'fresh for 590 more seconds satisfies min-fresh=60');
    assert.equal(ok.headers['x-cache'], 'HIT');
    // Cache-Control present and understood: Pragma is ignored (§5.4).
    const pragma = await send('/r/min-fresh-ok', { pragma: 'no-cache', 'cache-control': 'max-stale=5' });
    assert.equal(pragma.body, 'v1', 'Pragma: no-cache is ignored when Cache-Control is present');
    assert.equal(count('/r/min-fresh-ok'), 1);

    for (const path of ['/r/stale-1', '/r/stale-oic', '/r/stale-pragma']) {
      on(path, (_r, n) => ({ headers: { 'cache-control': 'max-age=1' }, body: `v${n}` }));
      await send(path);
    }
    await sleep(1100);
    // Stale by a fraction of a second: max-stale=0 does not cover it… (§5.2.1.2)
    const zero = await send('/r/stale-1', { 'cache-control': 'max-stale=0' });
    assert.equal(zero.body, 'v2', 'max-stale=0 accepts no staleness');
    assert.equal(zero.headers['x-cache'], 'MISS');
    // …only-if-cached alone gets 504 for a stale entry, and with max-stale the stale copy (§5.2.1.7).
    const none = await send('/r/stale-oic', { 'cache-control': 'only-if-cached' });
    assert.equal(none.status, 504);
    const some = await send('/r/stale-oic', { 'cache-control': 'only-if-cached, max-stale' });
    assert.equal(some.status, 200);
    assert.equal(some.body, 'v1');
    assert.equal(some.headers['x-cache'], 'STALE');
    assert.equal(count('/r/stale-oic'), 1, 'only-if-cached never reaches the origin');
    const head = await send('/r/stale-oic', { 'cache-control': 'only-if-cached' }, 'HEAD');
    assert.equal(head.status, 504);
    // Pragma: no-cache and a Cache-Control without no-cache: the stale copy may still be taken.
    const both = await send('/r/stale-pragma', { pragma: 'no-cache', 'cache-control': 'max-stale=600' });
    assert.equal(both.body, 'v1');
  });

  it('§5.2.1.1: a request max-age=0 revalidates a fresh entry with its validators', async () => {
    on('/r/ma0', (req, n) =>
      req.headers['if-none-match'] === '"m"'
        ? { status: 304, headers: { etag: '"m"', 'cache-control': 'max-age=600' } }
        : { headers: { etag: '"m"', 'cache-control': 'max-age=600' }, body: `v${n}` },
    );
    await send('/r/ma0');
    const again = await send('/r/ma0', { 'cache-control': 'max-age=0' });
    assert.equal(count('/r/ma0'), 2);
    assert.equal(last('/r/ma0')!.headers['if-none-match'], '"m"');
    assert.equal(again.status, 200);
    assert.equal(again.body, 'v1');
    assert.equal(again.headers['x-cache'], 'REVALIDATED');
  });

  it('§5.2.1.5: a no-store request is neither stored nor served from the cache (BYPASS)', async () => {
    on('/r/no-store', (_r, n) => cacheable(`v${n}`));
    const first = await send('/r/no-store', { 'cache-control': 'no-store' });
    assert.equal(first.headers['x-cache'], 'BYPASS');
    const second = await send('/r/no-store');
    assert.equal(second.body, 'v2');
    assert.equal(second.headers['x-cache'], 'MISS');
    assert.equal((await send('/r/no-store')).headers['x-cache'], 'HIT');
  });

  it('RFC 5861 §4: a request stale-if-error lets a stale copy stand in for a failed upstream', async () => {
    on('/r/sie', (_r, n) => (n === 1 ? { headers: { 'cache-control': 'max-age=1' }, body: 'old' } : 'reset'));
    await send('/r/sie');
    await sleep(1100);
    const res = await send('/r/sie', { 'cache-control': 'stale-if-error=600' });
    assert.equal(res.status, 200);
    assert.equal(res.body, 'old');
    assert.equal(res.headers['x-cache'], 'STALE');
    const without = await send('/r/sie');
    assert.equal(without.status, 502, 'without the directive the failure is passed on');
  });

  // --- §5.2.2 response directives ---------------------------------------------------------------------------

  it('§5.2.2: qualified no-cache / private naming Set-Cookie store the rest of the response, without the cookie', async () => {
    for (const cc of ['max-age=600, no-cache="Set-Cookie"', 'max-age=600, private="set-cookie"']) {
      const path = `/d/cookie/${cc.includes('private') ? 'private' : 'no-cache'}`;
      on(path, (_r, n) => ({ headers: { 'cache-control': cc, 'set-cookie': `sid=${n}` }, body: `v${n}` }));
      const first = await send(path);
      assert.deepEqual(first.headers['set-cookie'], ['sid=1'], 'the client that caused the fetch gets its cookie');
      const second = await send(path);
      assert.equal(second.body, 'v1', cc);
      assert.equal(second.headers['set-cookie'], undefined, `${cc}: the cookie is never replayed`);
    }
    on('/d/cookie/plain', (_r, n) => ({
      headers: { 'cache-control': 'max-age=600', 'set-cookie': 'a=1' },
      body: `${n}`,
    }));
    await send('/d/cookie/plain');
    assert.equal((await send('/d/cookie/plain')).body, '2', 'an unqualified Set-Cookie response is not stored');
  });

  it('§1.2.2/§4.2.1: malformed, conflicting and extreme freshness values', async () => {
    const cases = [
      ['/d/ma-negative', { 'cache-control': 'max-age=-1' }, '2'],
      ['/d/ma-fraction', { 'cache-control': 'max-age=60.5' }, '2'],
      ['/d/ma-empty', { 'cache-control': 'max-age=' }, '2'],
      ['/d/ma-2-31', { 'cache-control': 'max-age=2147483648' }, '1'],
      ['/d/ma-huge', { 'cache-control': 'max-age=99999999999999999999999' }, '1'],
      ['/d/ma-no-cache', { 'cache-control': 'max-age=600, no-cache' }, '2'],
      ['/d/ma-no-store-line', { 'cache-control': ['max-age=600', 'no-store'] }, '2'],
      ['/d/ma-private-public', { 'cache-control': 'public, private, max-age=600' }, '2'],
      ['/d/upper', { 'cache-control': 'MAX-AGE=600' }, '1'],
      ['/d/immutable', { 'cache-control': 'max-age=600, immutable' }, '1'],
      ['/d/expires-past-ma', { 'cache-control': 'max-age=600', expires: httpDate(-HOUR) }, '1'],
      ['/d/expires-bad-ma', { 'cache-control': 'max-age=600', expires: '0' }, '1'],
      ['/d/expires-smaxage', { 'cache-control': 's-maxage=600', expires: httpDate(-HOUR) }, '1'],
      ['/d/date-future', { 'cache-control': 'max-age=600', date: httpDate(HOUR) }, '1'],
      ['/d/expires-date-future', { date: httpDate(HOUR), expires: httpDate(HOUR + 600_000) }, '1'],
      ['/d/public-302-lm', { 'cache-control': 'public', 'last-modified': httpDate(-10 * 24 * HOUR) }, '1'],
      ['/d/302-lm', { 'last-modified': httpDate(-10 * 24 * HOUR) }, '2'],
    ] as const;
    for (const [path, headers, expected] of cases) {
      const status = path.includes('302') ? 302 : 200;
      on(path, (_r, n) => ({ status, headers: { location: '/x', ...headers }, body: `${n}` }));
      await send(path);
      const again = await send(path);
      assert.equal(again.status, status, path);
      assert.equal(again.body, expected, `${path}: ${JSON.stringify(headers)}`);
      if (expected === '1') {
        assert.match(String(again.headers.age), /^\d+$/, `${path}: Age is a non-negative integer`);
        assert.ok(Number(again.headers.age) < 60, `${path}: Age ${again.headers.age}`);
      }
    }
    // Immutable is a hint to clients: a client's no-cache still reaches the origin.
    assert.equal((await send('/d/immutable', { 'cache-control': 'no-cache' })).body, '2');
  });

  it('§3.5: Authorization with proxy-revalidate or private + s-maxage is not shared; s-maxage alone is', async () => {
    const cases = [
      ['/d/auth/proxy-revalidate', 'proxy-revalidate, max-age=600', 2],
      ['/d/auth/private-smaxage', 'private, s-maxage=600', 2],
      ['/d/auth/no-cache-public', 'public, no-cache, max-age=600', 2],
      ['/d/auth/smaxage', 's-maxage=600, max-age=0', 1],
    ] as const;
    for (const [path, cc, expected] of cases) {
      on(path, (_r, n) => ({ headers: { 'cache-control': cc }, body: `v${n}` }));
      await send(path, { authorization: 'Basic YTpi' });
      await send(path);
      assert.equal(count(path), expected, `${path}: ${cc}`);
    }
  });

  // --- §4.2.3 / §5.1 Age ----------------------------------------------------------------------------------------

  it('§5.1: Age on hits is an integer that grows, counts the upstream Age, and ignores an invalid one', async () => {
    on('/age/grows', () => cacheable('a', { age: '5' }));
    on('/age/bad', () => cacheable('a', { age: 'abc' }));
    on('/age/negative', () => cacheable('a', { age: '-20' }));
    on('/age/list', () => cacheable('a', { age: '7, 100' }));
    for (const path of ['/age/grows', '/age/bad', '/age/negative', '/age/list']) await send(path);
    const before = await send('/age/grows');
    assert.ok(Number(before.headers.age) >= 5, `Age ${before.headers.age} includes the upstream's 5`);
    for (const path of ['/age/bad', '/age/negative']) {
      const hit = await send(path);
      assert.equal(hit.headers['x-cache'], 'HIT', path);
      assert.match(String(hit.headers.age), /^\d+$/, `${path}: ${hit.headers.age}`);
      assert.ok(Number(hit.headers.age) < 60, `${path}: ${hit.headers.age}`);
    }
    const list = await send('/age/list');
    assert.ok(Number(list.headers.age) >= 7 && Number(list.headers.age) < 100, `Age ${list.headers.age}`);
    await sleep(1100);
    const later = await send('/age/grows');
    assert.ok(
      Number(later.headers.age) >= Number(before.headers.age) + 1,
      `${before.headers.age} → ${later.headers.age}`,
    );
    assert.equal(count('/age/grows'), 1);
  });

  // --- §4.1 Vary -------------------------------------------------------------------------------------------------

  it('§4.1: Vary names are case-insensitive; a header present then absent gets its own entry', async () => {
    on('/v/case', (req, n) => ({
      headers: { 'cache-control': 'max-age=600', vary: 'X-Tenant, ACCEPT-LANGUAGE' },
      body: `${req.headers['x-tenant'] ?? '-'} ${n}`,
    }));
    assert.equal((await send('/v/case', { 'x-tenant': 'a' })).body, 'a 1');
    assert.equal((await send('/v/case')).body, '- 2');
    assert.equal((await send('/v/case', { 'x-tenant': 'a' })).body, 'a 1');
    assert.equal((await send('/v/case')).body, '- 2');
    assert.equal((await send('/v/case', { 'x-tenant': 'a', 'accept-language': 'en' })).body, 'a 3');
    assert.equal(count('/v/case'), 3);
  });

  it('§4.1: a Vary: * response replaces what was stored and is never served from the cache', async () => {
    on('/v/star', (_r, n) =>
      n === 1
        ? { headers: { 'cache-control': 'max-age=1' }, body: `${n}` }
        : { headers: { 'cache-control': 'max-age=600', vary: '*' }, body: `${n}` },
    );
    await send('/v/star');
    await sleep(1100);
    assert.equal((await send('/v/star')).body, '2');
    assert.equal((await send('/v/star', { 'cache-control': 'max-stale' })).body, '3', 'the stale copy is gone');
  });

  // --- RFC 9110 §13 conditional requests on stored responses ----------------------------------------------------

  it('RFC 9110 §13.1.2: If-None-Match * matches any stored representation, with or without ETag', async () => {
    on('/c/star-no-etag', (_r, n) => cacheable(`v${n}`, { 'last-modified': httpDate(-HOUR) }));
    await send('/c/star-no-etag');
    const star = await send('/c/star-no-etag', { 'if-none-match': '*' });
    assert.equal(star.status, 304);
    assert.equal(star.body, '');
    const weakStored = '/c/weak-stored';
    on(weakStored, (_r, n) => cacheable(`v${n}`, { etag: 'W/"w1"' }));
    await send(weakStored);
    assert.equal((await send(weakStored, { 'if-none-match': '"w1"' })).status, 304, 'weak comparison both ways');
    assert.equal((await send(weakStored, { 'if-none-match': '"w2", W/"w1"' })).status, 304);
    assert.equal((await send(weakStored, { 'if-none-match': '"w2"' })).status, 200);
    assert.equal(count('/c/star-no-etag'), 1);
    assert.equal(count(weakStored), 1);
  });

  it('RFC 9110 §13.2.1: preconditions are not evaluated on a stored non-2xx response', async () => {
    on('/c/404', (_r, n) => ({ status: 404, headers: { 'cache-control': 'max-age=600', etag: '"nf"' }, body: `${n}` }));
    await send('/c/404');
    const res = await send('/c/404', { 'if-none-match': '"nf"' });
    assert.equal(res.status, 404);
    assert.equal(res.body, '1');
  });

  it('RFC 9110 §13.1.1/§13.1.4: If-Match and If-Unmodified-Since on a stored response: 412 when false, never a 200 that ignores them', async () => {
    const lm = httpDate(-HOUR);
    on('/c/if-match', (req, n) =>
      req.headers['if-match'] !== undefined && req.headers['if-match'] !== '"im"' && req.headers['if-match'] !== '*'
        ? { status: 412, body: '' }
        : { headers: { 'cache-control': 'max-age=600', etag: '"im"', 'last-modified': lm }, body: `v${n}` },
    );
    await send('/c/if-match');
    const wrong = await send('/c/if-match', { 'if-match': '"other"' });
    assert.equal(wrong.status, 412, 'If-Match that does not match');
    const weak = await send('/c/if-match', { 'if-match': 'W/"im"' });
    assert.equal(weak.status, 412, 'If-Match uses the strong comparison');
    const right = await send('/c/if-match', { 'if-match': '"x", "im"' });
    assert.equal(right.status, 200);
    assert.equal(right.body, 'v1');
    assert.equal((await send('/c/if-match', { 'if-match': '*' })).status, 200);
    const ius = await send('/c/if-match', { 'if-unmodified-since': httpDate(-2 * HOUR) });
    assert.equal(ius.status, 412, 'modified after the If-Unmodified-Since date');
    assert.equal((await send('/c/if-match', { 'if-unmodified-since': httpDate() })).status, 200);
    assert.equal(
      (await send('/c/if-match', { 'if-unmodified-since': httpDate(-2 * HOUR), 'if-match': '"im"' })).status,
      200,
      'If-Unmodified-Since is ignored when If-Match is present (§13.2.2)',
    );
    assert.equal((await send('/c/if-match', { 'if-unmodified-since': 'garbage' })).status, 200);
    const fresh = await send('/c/if-match');
    assert.equal(fresh.body, 'v1', 'the stored response is still there');
  });

  it('RFC 9110 §15.4.5: a 304 from the cache has no body and no Content-Length mismatch; the connection stays usable', async () => {
    on('/c/304-raw', () => cacheable('0123456789', { etag: '"r3"' }));
    await send('/c/304-raw');
    const path = '/c/304-raw';
    const twice =
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${p.port()}\r\nIf-None-Match: "r3"\r\n\r\n` +
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${p.port()}\r\nConnection: close\r\n\r\n`;
    const out = await rawExchange(p.port(), twice);
    const first = out.indexOf('HTTP/1.1 304');
    const second = out.indexOf('HTTP/1.1 200');
    assert.ok(first === 0 && second > 0, out);
    const head304 = out.slice(0, second);
    assert.doesNotMatch(head304.toLowerCase(), /content-length: (?!10\r)/, 'a Content-Length, if any, is the 200 one');
    assert.match(head304.toLowerCase(), /\r\netag: "r3"\r\n/);
    assert.ok(head304.endsWith('\r\n\r\n'), 'nothing after the 304 head');
    assert.ok(out.endsWith('0123456789'), out);
  });

  it('§4.3.2: the client precondition goes upstream with a stale entry; its 412 or 206 leaves the entry stored', async () => {
    on('/c/stale-412', (req, n) => {
      if (req.headers['if-match'] === '"other"') return { status: 412, body: '' };
      if (req.headers.range !== undefined && req.headers['if-none-match'] !== '"s4"') {
        return { status: 206, headers: { 'content-range': 'bytes 0-1/10', etag: '"s4"' }, body: 'ab' };
      }
      if (req.headers['if-none-match'] === '"s4"') {
        return { status: 304, headers: { etag: '"s4"', 'cache-control': 'max-age=1' } };
      }
      return { headers: { 'cache-control': 'max-age=1', etag: '"s4"' }, body: `abcdefghi${n}` };
    });
    await send('/c/stale-412');
    await sleep(1100);
    const failed = await send('/c/stale-412', { 'if-match': '"other"' });
    assert.equal(failed.status, 412);
    const kept = await send('/c/stale-412', { 'cache-control': 'only-if-cached, max-stale' });
    assert.equal(kept.status, 200, 'a 412 answering the client says nothing about the stored response');
    assert.equal(kept.body, 'abcdefghi1');
    // Revalidated by a 304, a Range request is answered from the refreshed entry.
    const ranged = await send('/c/stale-412', { range: 'bytes=2-3' });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.body, 'cd');
    assert.equal(ranged.headers['content-range'], 'bytes 2-3/10');
  });

  it('RFC 5861 §3 / §5.2.1.3: a client min-fresh or max-age is not answered with a stale-while-revalidate copy', async () => {
    for (const path of ['/c/swr-min-fresh', '/c/swr-max-age']) {
      on(path, (_r, n) => ({ headers: { 'cache-control': 'max-age=1, stale-while-revalidate=600' }, body: `v${n}` }));
      await send(path);
    }
    await sleep(1100);
    const minFresh = await send('/c/swr-min-fresh', { 'cache-control': 'min-fresh=1' });
    assert.equal(minFresh.body, 'v2', 'min-fresh wants a fresh response');
    const maxAge = await send('/c/swr-max-age', { 'cache-control': 'max-age=0' });
    assert.equal(maxAge.body, 'v2');
  });

  it('RFC 9110 §6.6.1: a stored response whose Date is invalid is served with a valid one', async () => {
    on('/c/bad-date', () => (res) => {
      res.sendDate = false;
      res.writeHead(200, { 'cache-control': 'max-age=600', date: 'yesterday', 'content-length': 1 });
      res.end('x');
    });
    await send('/c/bad-date');
    const hit = await send('/c/bad-date');
    assert.equal(hit.headers['x-cache'], 'HIT');
    assert.ok(!Number.isNaN(Date.parse(String(hit.headers.date))), `Date: ${hit.headers.date}`);
  });

  // --- framing of responses from the cache ---------------------------------------------------------------------

  it('RFC 9110 §8.6: a stored 204 is served without Content-Length; HEAD from a stored GET keeps its length', async () => {
    on('/f/204', () => ({ status: 204, headers: { 'cache-control': 'max-age=600' } }));
    await send('/f/204');
    const hit = await raw('/f/204');
    assert.match(hit, /^HTTP\/1\.1 204/);
    assert.match(hit.toLowerCase(), /x-cache: hit/);
    assert.doesNotMatch(hit.toLowerCase(), /content-length/, hit);
    assert.doesNotMatch(hit.toLowerCase(), /transfer-encoding/, hit);
    const head = await raw('/f/204', {}, 'HEAD');
    assert.doesNotMatch(head.toLowerCase(), /content-length/, head);
    assert.equal(count('/f/204'), 1);
    // A chunked upstream response is stored whole and served with its length, to GET and HEAD alike.
    on('/f/chunked', () => (res) => {
      res.writeHead(200, { 'cache-control': 'max-age=600', trailer: 'x-sum' });
      res.write('hello ');
      res.addTrailers({ 'x-sum': '42' });
      res.end('world');
    });
    assert.equal((await send('/f/chunked')).body, 'hello world');
    const stored = await send('/f/chunked');
    assert.equal(stored.body, 'hello world');
    assert.equal(stored.headers['x-cache'], 'HIT');
    const headHit = await send('/f/chunked', {}, 'HEAD');
    assert.equal(headHit.headers['content-length'], '11');
    assert.equal(headHit.body, '');
  });

  it('RFC 9110 §14: ranges from a stored 200 — bad, multiple, past the end, If-Range by date, HEAD', async () => {
    const lm = httpDate(-HOUR);
    on('/f/range', () => cacheable('abcdefghij', { etag: '"rg"', 'last-modified': lm }));
    await send('/f/range');
    const backwards = await send('/f/range', { range: 'bytes=5-2' });
    assert.equal(backwards.status, 200);
    assert.equal(backwards.body, 'abcdefghij');
    const multi = await send('/f/range', { range: 'bytes=0-1,4-5' });
    if (multi.status === 200) assert.equal(multi.body, 'abcdefghij');
    else assert.equal(multi.status, 206);
    const past = await send('/f/range', { range: 'bytes=20-' });
    assert.equal(past.status, 416);
    assert.equal(past.headers['content-range'], 'bytes */10');
    const overlong = await send('/f/range', { range: 'bytes=7-100' });
    assert.equal(overlong.status, 206);
    assert.equal(overlong.body, 'hij');
    assert.equal(overlong.headers['content-range'], 'bytes 7-9/10');
    assert.equal(overlong.headers['content-length'], '3');
    const byDate = await send('/f/range', { range: 'bytes=0-2', 'if-range': lm });
    assert.equal(byDate.status, 206, 'If-Range with the (strong) Last-Modified');
    assert.equal(byDate.body, 'abc');
    const weak = await send('/f/range', { range: 'bytes=0-2', 'if-range': 'W/"rg"' });
    assert.equal(weak.status, 200, 'a weak If-Range never matches');
    const head = await send('/f/range', { range: 'bytes=0-2' }, 'HEAD');
    assert.ok(head.status === 200 || head.status === 206);
    assert.equal(head.body, '');
    const notModified = await send('/f/range', { range: 'bytes=0-2', 'if-none-match': '"rg"' });
    assert.equal(notModified.status, 304, 'If-None-Match comes before Range (§13.2.2)');
    assert.equal(count('/f/range'), 1);
    on('/f/range-404', () => ({ status: 404, headers: { 'cache-control': 'max-age=600' }, body: 'missing' }));
    await send('/f/range-404');
    const r404 = await send('/f/range-404', { range: 'bytes=0-1' });
    assert.equal(r404.status, 404, 'a range applies to 200 only');
    assert.equal(r404.body, 'missing');
  });

  it('§3.3: a 200 carrying Content-Range is not stored as the complete response', async () => {
    on('/f/200-content-range', (_r, n) => ({
      headers: { 'cache-control': 'max-age=600', 'content-range': 'bytes 0-3/10' },
      body: `${n}abc`,
    }));
    await send('/f/200-content-range');
    assert.equal((await send('/f/200-content-range')).body, '2abc');
  });

  // --- §4.4 invalidation ------------------------------------------------------------------------------------------

  it('§4.4: a 4xx to an unsafe method invalidates nothing; a 3xx does; other paths are untouched', async () => {
    const paths = ['/i/404', '/i/303', '/i/303-sibling', '/i/query?a=1'];
    on('/i/404', (req, n) => (req.method === 'GET' ? cacheable(`v${n}`) : { status: 404 }));
    on('/i/303', (req, n) =>
      req.method === 'GET' ? cacheable(`v${n}`) : { status: 303, headers: { location: '/x' } },
    );
    on('/i/303-sibling', (_r, n) => cacheable(`v${n}`));
    on('/i/query?a=1', (req, n) => (req.method === 'GET' ? cacheable(`v${n}`) : { status: 204 }));
    on('/i/query', (_r, n) => cacheable(`v${n}`));
    for (const path of [...paths, '/i/query']) await send(path);
    const del = await send('/i/404', {}, 'DELETE');
    assert.equal(del.headers['x-cache'], 'BYPASS');
    await send('/i/303', {}, 'PUT');
    await send('/i/query?a=1', {}, 'POST');
    assert.equal((await send('/i/404')).body, 'v1', '404 to DELETE');
    assert.equal((await send('/i/303')).body, 'v3', '303 to PUT');
    assert.equal((await send('/i/303-sibling')).body, 'v1');
    assert.equal((await send('/i/query?a=1')).body, 'v3');
    assert.equal((await send('/i/query')).body, 'v1', 'another query is another URI');
  });

  it('§4.4: a Location naming the URI in another spelling (escapes, dot-segments) invalidates it', async () => {
    for (const path of ['/i/t~ilde', '/i/dots/b', '/i/hex%C3%A9']) {
      on(path, (_r, n) => cacheable(`v${n}`));
      await send(path);
    }
    on('/i/form', () => ({
      status: 201,
      headers: { location: '/i/t%7eilde', 'content-location': '/i/x/../dots/./b' },
    }));
    on('/i/form2', () => ({ status: 201, headers: { location: '/i/hex%c3%a9' } }));
    await send('/i/form', {}, 'POST');
    await send('/i/form2', {}, 'POST');
    assert.equal((await send('/i/t~ilde')).body, 'v2', 'Location with an escaped unreserved character');
    assert.equal((await send('/i/dots/b')).body, 'v2', 'Content-Location with dot-segments');
    assert.equal((await send('/i/hex%C3%A9')).body, 'v2', 'Location with lower-case hex escapes');
  });

  it('§4.4: a method the cache does not know as safe (MKCOL) invalidates like any unsafe method', async () => {
    on('/i/unknown', (req, n) => (req.method === 'GET' ? cacheable(`v${n}`) : { status: 200 }));
    await send('/i/unknown');
    const res = await send('/i/unknown', {}, 'MKCOL');
    assert.equal(res.status, 200);
    assert.equal((await send('/i/unknown')).body, 'v3');
  });

  it('§4.1: repeated request header lines select the same variant as their combined value', async () => {
    on('/v/lines', (_r, n) => cacheable(`${n}`, { vary: 'accept-language' }));
    await send('/v/lines', { 'accept-language': 'en, fr' });
    const out = await rawExchange(
      p.port(),
      `GET /v/lines HTTP/1.1\r\nHost: 127.0.0.1:${p.port()}\r\nAccept-Language: en\r\nAccept-Language: fr\r\nConnection: close\r\n\r\n`,
    );
    assert.ok(out.endsWith('\r\n\r\n1'), out);
    assert.equal(count('/v/lines'), 1);
  });

  it('hits are answered per request: their own request id, the stored headers otherwise', async () => {
    on('/h/id', () => cacheable('x'));
    const a = await send('/h/id');
    const b = await send('/h/id');
    const c = await send('/h/id');
    assert.equal(c.headers['x-cache'], 'HIT');
    if (a.headers['x-request-id'] !== undefined) {
      assert.notEqual(b.headers['x-request-id'], a.headers['x-request-id']);
      assert.notEqual(c.headers['x-request-id'], b.headers['x-request-id']);
    }
  });

  // --- coalescing -------------------------------------------------------------------------------------------------

  it('coalescing: when the leader gets a 502 the waiters go upstream themselves and get the right answer', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    on('/co/502', (_r, n) => (res) => {
      if (n === 1) {
        void held.then(() => {
          res.writeHead(502, { 'content-type': 'text/plain' });
          res.end('bad gateway');
        });
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=600' });
      res.end(`v${n}`);
    });
    const leader = send('/co/502');
    await untilCount('/co/502', 1);
    const waiters = [send('/co/502'), send('/co/502'), send('/co/502')];
    await sleep(100);
    assert.equal(count('/co/502'), 1, 'the waiters wait for the leader');
    release();
    assert.equal((await leader).status, 502);
    const answers = await within(Promise.all(waiters), 10_000, 'waiters after a 502');
    for (const a of answers) assert.equal(a.status, 200);
    assert.equal((await send('/co/502')).headers['x-cache'], 'HIT');
  });

  it('coalescing: a waiter whose Vary header differs from the leader gets its own variant', async () => {
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    on('/co/vary', (req, n) => (res) => {
      const write = () => {
        res.writeHead(200, { 'cache-control': 'max-age=600', vary: 'accept-language' });
        res.end(`${req.headers['accept-language']} ${n}`);
      };
      if (n === 1) void held.then(write);
      else write();
    });
    const leader = send('/co/vary', { 'accept-language': 'en' });
    await untilCount('/co/vary', 1);
    const waiter = send('/co/vary', { 'accept-language': 'fr' });
    const same = send('/co/vary', { 'accept-language': 'en' });
    await sleep(100);
    release();
    assert.equal((await leader).body, 'en 1');
    assert.equal((await within(waiter, 10_000, 'fr waiter')).body, 'fr 2');
    assert.equal((await within(same, 10_000, 'en waiter')).body, 'en 1');
  });

  it('coalescing: an uncacheable answer releases the waiters at its head, before its body ends', async () => {
    let finish: () => void = () => {};
    const secondArrived = new Promise<void>((r) => {
      finish = r;
    });
    let overlapped = false;
    on('/co/no-store', (_r, n) => (res) => {
      if (n === 1) {
        res.writeHead(200, { 'cache-control': 'no-store' });
        res.write('part ');
        // The body ends when a waiter's own request arrives (or after 5 s, and then the test fails).
        const timer = setTimeout(() => res.end('late'), 5000);
        void secondArrived.then(() => {
          overlapped = true;
          clearTimeout(timer);
          res.end('end');
        });
        return;
      }
      finish();
      res.writeHead(200, { 'cache-control': 'no-store' });
      res.end(`v${n}`);
    });
    const leader = send('/co/no-store');
    await untilCount('/co/no-store', 1);
    const waiter = send('/co/no-store');
    const [a, b] = await Promise.all([leader, waiter]);
    assert.equal(a.body, 'part end');
    assert.equal(b.body, 'v2');
    assert.ok(overlapped, 'the waiter went upstream while the leader was still streaming');
  });

  it('coalescing: a body that outgrows maxObjectSize releases the waiters at once, not at its end', async () => {
    let finish: () => void = () => {};
    const secondArrived = new Promise<void>((r) => {
      finish = r;
    });
    let overlapped = false;
    on('/small/big', (_r, n) => (res) => {
      res.writeHead(200, { 'cache-control': 'max-age=600' });
      if (n === 1) {
        res.write('x'.repeat(2048));
        const timer = setTimeout(() => res.end('late'), 5000);
        void secondArrived.then(() => {
          overlapped = true;
          clearTimeout(timer);
          res.end('end');
        });
        return;
      }
      finish();
      res.end(`v${n}`);
    });
    const leader = send('/small/big');
    await untilCount('/small/big', 1);
    const waiter = send('/small/big');
    const [a, b] = await Promise.all([leader, waiter]);
    assert.equal(a.body.length, 2051);
    assert.ok(a.body.endsWith('end'), `the leader's body ends with ${a.body.slice(-4)}`);
    assert.equal(b.body, 'v2');
    assert.ok(overlapped, 'the waiter went upstream while the leader was still streaming');
  });

  it('coalescing: a waiter gets a whole response when the leading client goes away mid-body', async () => {
    on('/co/abort', (_r, n) => (res) => {
      res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': 10 });
      if (n === 1) {
        res.write('01234');
        // The rest comes only if the leader's client stays (it does not): bounded either way.
        setTimeout(() => res.end('56789'), 3000).unref();
        return;
      }
      res.end('abcdefghij');
    });
    const leaderGone = new Promise<void>((resolve) => {
      const req = request(`${p.url()}/co/abort`, { agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => resolve());
      req.end();
    });
    await untilCount('/co/abort', 1);
    const waiter = send('/co/abort');
    await leaderGone;
    const got = await within(waiter, 10_000, 'waiter after the leader left');
    assert.equal(got.status, 200);
    assert.ok(got.body === 'abcdefghij' || got.body === '0123456789', got.body);
    assert.equal(got.body.length, 10);
  });
});
