/**
 * End to end: the shared cache against RFC 9111 (HTTP Caching), RFC 9110 §13 / §15 (conditional requests,
 * status codes) and RFC 5861 (stale-while-revalidate, stale-if-error), through the real process.
 *
 * One upstream answers each path with a script given by the test; every test uses its own paths, so the
 * tests run concurrently. Where time must pass the responses use `max-age=1` and the test sleeps a little
 * over a second; nothing asserts on durations.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { fetchRaw } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import {
  type Got,
  HOUR,
  httpDate,
  type Script,
  type ScriptedOrigin,
  sleep,
  startScriptedOrigin,
} from '../helpers/scripted-origin.ts';

describe('RFC 9111 shared cache conformance', { concurrency: true }, () => {
  let origin: ScriptedOrigin;
  let p: PorticoProcess;
  const on = (path: string, script: Script) => origin.on(path, script);
  const count = (path: string) => origin.count(path);
  const last = (path: string) => origin.last(path);

  function send(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Got> {
    return fetchRaw(`${p.url()}${path}`, { method, headers });
  }
  /** A request whose response may be cut short: resolves with what arrived, or the error. */
  function sendLoose(path: string): Promise<{ body: string; complete: boolean }> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      const req = request(`${p.url()}${path}`, { agent: false }, (res) => {
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ body: Buffer.concat(chunks).toString(), complete: res.complete }));
        res.on('error', () => resolve({ body: Buffer.concat(chunks).toString(), complete: false }));
      });
      req.on('error', () => resolve({ body: Buffer.concat(chunks).toString(), complete: false }));
      req.end();
    });
  }
  /** Waits (bounded) until the upstream has seen `n` requests for `path`. */
  async function untilCount(path: string, n: number): Promise<void> {
    for (let i = 0; i < 200 && count(path) < n; i++) await sleep(10);
    assert.equal(count(path), n, `upstream requests for ${path}`);
  }

  before(async () => {
    origin = await startScriptedOrigin();
    p = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams:
  - name: origin
    targets: [ { url: ${origin.url} } ]
    health: { passive: { consecutiveFailures: 0 } }
routes:
  - name: rules
    match: { path: /rules/* }
    cache: true
    upstream: origin
    headers: { response: { set: { x-rule: applied }, add: { x-added: once }, remove: [x-internal] } }
  - { name: cached, match: { path: /* }, cache: true, upstream: origin }
`);
  });

  after(async () => {
    await p?.stop();
    await origin?.close();
  });

  // --- §3 storing responses -------------------------------------------------------------------------

  it('§3/§4: stores a fresh 200 and serves it again with its Date and an Age (§4.2.3, §5.1)', async () => {
    const date = httpDate(-10_000);
    on('/s3/fresh', (_r, n) => ({ headers: { 'cache-control': 'max-age=600', date }, body: `v${n}` }));
    const first = await send('/s3/fresh');
    assert.equal(first.body, 'v1');
    const second = await send('/s3/fresh');
    assert.equal(second.body, 'v1');
    assert.equal(count('/s3/fresh'), 1);
    assert.equal(second.headers.date, date, 'the stored Date is kept');
    const age = Number(second.headers.age);
    assert.ok(age >= 10 && age < 600, `Age ${second.headers.age} counts the apparent age (Date 10 s ago)`);
  });

  it('§4.2.3: the Age the upstream sent is part of the current age', async () => {
    on('/s3/age30', (_r, n) => ({ headers: { 'cache-control': 'max-age=600', age: '30' }, body: `v${n}` }));
    await send('/s3/age30');
    const hit = await send('/s3/age30');
    assert.equal(count('/s3/age30'), 1);
    assert.ok(Number(hit.headers.age) >= 30, `Age ${hit.headers.age} ≥ 30`);
    on('/s3/age-old', (_r, n) => ({ headers: { 'cache-control': 'max-age=60', age: '100' }, body: `v${n}` }));
    await send('/s3/age-old');
    const again = await send('/s3/age-old');
    assert.equal(again.body, 'v2', 'older than its max-age on arrival: stale, not served');
  });

  it('§4.2.3: without a Date the time of receipt stands in (RFC 9110 §6.6.1)', async () => {
    on('/s3/no-date', (_r, n) => (res) => {
      res.sendDate = false;
      res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': 2 });
      res.end(`v${n}`);
    });
    await send('/s3/no-date');
    const hit = await send('/s3/no-date');
    assert.equal(hit.body, 'v1');
    assert.ok(hit.headers.date !== undefined && !Number.isNaN(Date.parse(hit.headers.date)));
    assert.ok(Number(hit.headers.age) < 5);
  });

  it('RFC 9110 §15.1: heuristically cacheable statuses are stored with a Last-Modified heuristic (§4.2.2)', async () => {
    const lastModified = httpDate(-10 * 24 * HOUR);
    const cacheable = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501];
    const notCacheable = [302, 303, 307, 400, 403, 500, 502, 503];
    for (const status of [...cacheable, ...notCacheable]) {
      on(`/s3/status/${status}`, (_r, n) => ({
        status,
        headers: { 'last-modified': lastModified, 'x-n': String(n) },
        body: status === 204 ? '' : `s${n}`,
      }));
    }
    for (const status of [...cacheable, ...notCacheable]) {
      await send(`/s3/status/${status}`);
      const second = await send(`/s3/status/${status}`);
      assert.equal(second.status, status);
      const expected = cacheable.includes(status) ? 1 : 2;
      assert.equal(count(`/s3/status/${status}`), expected, `status ${status}`);
    }
  });

  it('§3: explicit freshness makes other statuses storable; no lifetime and no validator stores nothing', async () => {
    on('/s3/302', (_r, n) => ({
      status: 302,
      headers: { location: '/x', 'cache-control': 'max-age=600' },
      body: `${n}`,
    }));
    await send('/s3/302');
    assert.equal((await send('/s3/302')).status, 302);
    assert.equal(count('/s3/302'), 1);
    on('/s3/plain', (_r, n) => ({ body: `v${n}` }));
    await send('/s3/plain');
    assert.equal((await send('/s3/plain')).body, 'v2');
  });

  it('§3, §5.2.2.5, §5.2.2.7: no-store, private and Vary: * are never served from the cache', async () => {
    for (const [path, headers] of [
      ['/s3/no-store', { 'cache-control': 'no-store, max-age=600' }],
      ['/s3/private', { 'cache-control': 'private, max-age=600' }],
      ['/s3/NO-STORE', { 'cache-control': 'NO-STORE, max-age=600' }],
      ['/s3/vary-star', { 'cache-control': 'max-age=600', vary: '*' }],
      ['/s3/vary-star-list', { 'cache-control': 'max-age=600', vary: 'accept, *' }],
    ] as const) {
      on(path, (_r, n) => ({ headers, body: `v${n}` }));
      await send(path);
      assert.equal((await send(path)).body, 'v2', path);
    }
  });

  it('§5.2.2.7: private="field" — the named field is never stored (the rest may be)', async () => {
    on('/s3/private-field', (_r, n) => ({
      headers: { 'cache-control': 'max-age=600, private="x-user"', 'x-user': 'alice' },
      body: `v${n}`,
    }));
    await send('/s3/private-field');
    const second = await send('/s3/private-field');
    if (count('/s3/private-field') === 1) assert.equal(second.headers['x-user'], undefined);
    assert.equal(count('/s3/private-field'), 1, 'the remainder of the response is stored');
  });

  it('§5.2.2.3: must-understand with an understood status overrides no-store; an unknown status is not stored', async () => {
    on('/s3/mu-200', (_r, n) => ({
      headers: { 'cache-control': 'must-understand, no-store, max-age=600' },
      body: `${n}`,
    }));
    await send('/s3/mu-200');
    assert.equal((await send('/s3/mu-200')).body, '1');
    on('/s3/mu-299', (_r, n) => ({
      status: 299,
      headers: { 'cache-control': 'must-understand, max-age=600' },
      body: `${n}`,
    }));
    await send('/s3/mu-299');
    assert.equal((await send('/s3/mu-299')).body, '2');
  });

  it('§3.5: a response to a request with Authorization is shared only when the response allows it', async () => {
    const cases = [
      ['/s35/none', 'max-age=600', 2],
      ['/s35/public', 'public, max-age=600', 1],
      ['/s35/s-maxage', 's-maxage=600', 1],
      ['/s35/must-revalidate', 'must-revalidate, max-age=600', 1],
    ] as const;
    for (const [path, cc, expected] of cases) {
      on(path, (_r, n) => ({ headers: { 'cache-control': cc }, body: `v${n}` }));
      await send(path, { authorization: 'Bearer one' });
      await send(path, { authorization: 'Bearer two' });
      assert.equal(count(path), expected, `${path}: ${cc}`);
    }
  });

  it('§3.3: an incomplete response is never stored (declared length not reached)', async () => {
    on('/s33/short', (_r, n) => (res) => {
      if (n === 1) {
        res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': 100 });
        res.write('x'.repeat(50));
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      res.writeHead(200, { 'cache-control': 'max-age=600', 'content-length': 100 });
      res.end('y'.repeat(100));
    });
    const cut = await sendLoose('/s33/short');
    assert.equal(cut.complete && cut.body.length === 100, false, 'the client sees a truncated response');
    const next = await send('/s33/short');
    assert.equal(next.body, 'y'.repeat(100));
    assert.equal(count('/s33/short'), 2);
  });

  it('§3.3: a chunked response cut short is never stored', async () => {
    on('/s33/chunked', (_r, n) => (res) => {
      res.writeHead(200, { 'cache-control': 'max-age=600' });
      if (n === 1) {
        res.write('partial');
        setTimeout(() => res.socket?.destroy(), 20);
        return;
      }
      res.end('whole');
    });
    await sendLoose('/s33/chunked');
    assert.equal((await send('/s33/chunked')).body, 'whole');
    assert.equal(count('/s33/chunked'), 2);
  });

  it('§3.4/RFC 9110 §14: a 206 answering a Range request is not stored as the full response', async () => {
    on('/s34/range', (req, n) =>
      req.headers.range === undefined
        ? { headers: { 'cache-control': 'max-age=600' }, body: `0123456789-${n}` }
        : { status: 206, headers: { 'cache-control': 'max-age=600', 'content-range': 'bytes 0-3/12' }, body: '0123' },
    );
    const part = await send('/s34/range', { range: 'bytes=0-3' });
    assert.equal(part.status, 206);
    const full = await send('/s34/range');
    assert.equal(full.status, 200);
    assert.equal(full.body, '0123456789-2');
    assert.equal(count('/s34/range'), 2);
  });

  it('RFC 9110 §14.2: a Range request on a stored 200 gets the right bytes (206) or the whole (200)', async () => {
    on('/s34/stored', () => ({ headers: { 'cache-control': 'max-age=600', etag: '"r"' }, body: 'abcdefghij' }));
    await send('/s34/stored');
    const r = await send('/s34/stored', { range: 'bytes=2-4' });
    assert.equal(count('/s34/stored'), 1);
    if (r.status === 206) {
      assert.equal(r.body, 'cde');
      assert.equal(r.headers['content-range'], 'bytes 2-4/10');
    } else {
      assert.equal(r.status, 200);
      assert.equal(r.body, 'abcdefghij');
    }
    const suffix = await send('/s34/stored', { range: 'bytes=-3' });
    if (suffix.status === 206) assert.equal(suffix.body, 'hij');
    const ifRange = await send('/s34/stored', { range: 'bytes=0-1', 'if-range': '"other"' });
    assert.equal(ifRange.status, 200, 'If-Range that does not match: the whole representation');
    assert.equal(ifRange.body, 'abcdefghij');
  });

  it('§3.1: the 304 refresh keeps Content-Length; the headers the 304 brings replace the stored ones (§3.2, §4.3.4)', async () => {
    on('/s43/update', (req, n) =>
      req.headers['if-none-match'] === '"u1"'
        ? {
            status: 304,
            headers: {
              etag: '"u1"',
              'cache-control': 'max-age=600',
              'x-version': `${n}`,
              'content-type': 'text/plain; charset=utf-8',
            },
          }
        : { headers: { etag: '"u1"', 'cache-control': 'max-age=0', 'x-version': `${n}` }, body: 'payload' },
    );
    await send('/s43/update');
    const refreshed = await send('/s43/update');
    assert.equal(refreshed.status, 200);
    assert.equal(refreshed.body, 'payload');
    assert.equal(refreshed.headers['x-version'], '2');
    assert.equal(refreshed.headers['content-length'], '7');
    assert.equal(refreshed.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(last('/s43/update')!.headers['if-none-match'], '"u1"');
    const hit = await send('/s43/update');
    assert.equal(hit.body, 'payload');
    assert.equal(hit.headers['x-version'], '2');
    assert.equal(count('/s43/update'), 2, 'the 304 made the entry fresh again');
    assert.ok(hit.headers.age !== undefined);
  });

  it('§4.3.1: Last-Modified alone is sent back as If-Modified-Since', async () => {
    const lm = httpDate(-HOUR);
    on('/s43/lm', (req) =>
      req.headers['if-modified-since'] === lm
        ? { status: 304, headers: { 'cache-control': 'max-age=0' } }
        : { headers: { 'last-modified': lm, 'cache-control': 'max-age=0' }, body: 'lm body' },
    );
    await send('/s43/lm');
    const again = await send('/s43/lm');
    assert.equal(again.status, 200);
    assert.equal(again.body, 'lm body');
    assert.equal(last('/s43/lm')!.headers['if-modified-since'], lm);
  });

  // --- §4.1 Vary ----------------------------------------------------------------------------------------

  it('§4.1: variants are selected by the request headers Vary names', async () => {
    on('/s41/lang', (req) => ({
      headers: { 'cache-control': 'max-age=600', vary: 'Accept-Language' },
      body: `lang ${req.headers['accept-language']}`,
    }));
    assert.equal((await send('/s41/lang', { 'accept-language': 'en' })).body, 'lang en');
    assert.equal((await send('/s41/lang', { 'accept-language': 'fr' })).body, 'lang fr');
    assert.equal((await send('/s41/lang', { 'accept-language': 'en' })).body, 'lang en');
    assert.equal((await send('/s41/lang', { 'accept-language': 'fr' })).body, 'lang fr');
    assert.equal(count('/s41/lang'), 2);
  });

  it('§4.1: values match after whitespace normalisation, not across different case-sensitive values', async () => {
    on('/s41/spaces', (_r, n) => ({
      headers: { 'cache-control': 'max-age=600', vary: 'accept-language' },
      body: `${n}`,
    }));
    await send('/s41/spaces', { 'accept-language': 'en, fr' });
    assert.equal((await send('/s41/spaces', { 'accept-language': 'en,fr' })).body, '1');
    on('/s41/token', (_r, n) => ({ headers: { 'cache-control': 'max-age=600', vary: 'x-token' }, body: `${n}` }));
    await send('/s41/token', { 'x-token': 'abc' });
    assert.equal((await send('/s41/token', { 'x-token': 'ABC' })).body, '2', 'x-token values differ');
    assert.equal((await send('/s41/token', { 'x-token': 'abc' })).body, '1');
  });

  it('§4.1: an absent header matches only an absent header', async () => {
    on('/s41/absent', (_r, n) => ({ headers: { 'cache-control': 'max-age=600', vary: 'x-flag' }, body: `${n}` }));
    await send('/s41/absent');
    assert.equal((await send('/s41/absent', { 'x-flag': '' })).body, '2');
    assert.equal((await send('/s41/absent')).body, '1');
  });

  // --- §4.2 freshness -------------------------------------------------------------------------------------

  it('§5.3: an invalid Expires means already expired; a valid one in the future is fresh', async () => {
    for (const expires of ['0', '-1', 'garbage', '2099', 'Thu, 01 Jan 2099 00:00:00']) {
      const path = `/s53/invalid/${encodeURIComponent(expires)}`;
      on(path, (_r, n) => ({ headers: { expires }, body: `${n}` }));
      await send(path);
      assert.equal((await send(path)).body, '2', `Expires: ${expires}`);
    }
    on('/s53/future', (_r, n) => ({ headers: { expires: httpDate(HOUR) }, body: `${n}` }));
    await send('/s53/future');
    assert.equal((await send('/s53/future')).body, '1');
    on('/s53/past', (_r, n) => ({ headers: { expires: httpDate(-HOUR) }, body: `${n}` }));
    await send('/s53/past');
    assert.equal((await send('/s53/past')).body, '2');
    on('/s53/rfc850', (_r, n) => ({ headers: { expires: 'Sunday, 06-Nov-94 08:49:37 GMT' }, body: `${n}` }));
    await send('/s53/rfc850');
    assert.equal((await send('/s53/rfc850')).body, '2');
  });

  it('§4.2.1: Expires counts from Date; max-age beats Expires; s-maxage beats max-age', async () => {
    const date = httpDate(-HOUR);
    on('/s421/expires-date', (_r, n) => ({ headers: { date, expires: httpDate(HOUR) }, body: `${n}` }));
    await send('/s421/expires-date');
    const hit = await send('/s421/expires-date');
    assert.equal(hit.body, '1');
    assert.ok(Number(hit.headers.age) >= 3600, `Age ${hit.headers.age}`);
    const cases = [
      ['/s421/max-age-0', { 'cache-control': 'max-age=0', expires: httpDate(HOUR) }, '2'],
      ['/s421/s-maxage-wins', { 'cache-control': 'max-age=0, s-maxage=600' }, '1'],
      ['/s421/s-maxage-0', { 'cache-control': 'max-age=600, s-maxage=0' }, '2'],
      ['/s421/bad-max-age', { 'cache-control': 'max-age=abc' }, '2'],
      ['/s421/extensions', { 'cache-control': 'foo, max-age=600, bar="x, y"' }, '1'],
      ['/s421/two-lines', { 'cache-control': ['public', 'max-age=600'] }, '1'],
      ['/s421/leading-zeros', { 'cache-control': 'max-age=000600' }, '1'],
      ['/s421/space-before-equals', { 'cache-control': 'max-age =600' }, '2'],
      ['/s421/space-after-equals', { 'cache-control': 'max-age= 600' }, '2'],
      ['/s421/single-quoted', { 'cache-control': "max-age='600'" }, '2'],
      ['/s421/quoted-decoy', { 'cache-control': 'ext="max-age=600", max-age=0' }, '2'],
      ['/s421/quoted-decoy-after', { 'cache-control': 'max-age=0, ext="max-age=600"' }, '2'],
      ['/s421/quoted', { 'cache-control': 'max-age="600"' }, '1'],
    ] as const;
    for (const [path, headers, expected] of cases) {
      on(path, (_r, n) => ({ headers, body: `${n}` }));
      await send(path);
      assert.equal((await send(path)).body, expected, path);
    }
  });

  it('§4.2: a response goes stale when its max-age has passed', async () => {
    on('/s42/one-second', (_r, n) => ({ headers: { 'cache-control': 'max-age=1' }, body: `${n}` }));
    await send('/s42/one-second');
    await sleep(1100);
    assert.equal((await send('/s42/one-second')).body, '2');
  });

  // --- §4.2.4 / §5.2.2 stale responses and RFC 5861 ------------------------------------------------------

  it('§5.2.2.2: must-revalidate with max-age=0 and the upstream down → 504, never the stale copy', async () => {
    on('/s522/mr0', (_r, n) =>
      n === 1 ? { headers: { 'cache-control': 'max-age=0, must-revalidate' }, body: 'old' } : 'reset',
    );
    await send('/s522/mr0');
    const down = await send('/s522/mr0');
    assert.equal(down.status, 504);
    assert.notEqual(down.body, 'old');
    on('/s522/mr0-etag', (_r, n) =>
      n === 1 ? { headers: { 'cache-control': 'max-age=0, must-revalidate', etag: '"e"' }, body: 'old' } : 'reset',
    );
    await send('/s522/mr0-etag');
    assert.equal((await send('/s522/mr0-etag')).status, 504);
  });

  it('§5.2.2.2/§5.2.2.8/§5.2.2.10: after expiry, must-revalidate, proxy-revalidate and s-maxage forbid stale even with stale-if-error', async () => {
    const cases = [
      ['/s522/mr', 'max-age=1, must-revalidate, stale-if-error=600'],
      ['/s522/pr', 'max-age=1, proxy-revalidate, stale-if-error=600'],
      ['/s522/sm', 's-maxage=1, stale-if-error=600'],
    ] as const;
    for (const [path, cc] of cases) {
      on(path, (_r, n) => (n === 1 ? { headers: { 'cache-control': cc }, body: 'old' } : 'reset'));
      await send(path);
    }
    await sleep(1100);
    for (const [path, cc] of cases) {
      const res = await send(path, { 'cache-control': 'max-stale=600' });
      assert.equal(res.status, 504, cc);
    }
  });

  it('RFC 5861 §4: stale-if-error serves the stale copy on a connection failure or a 5xx', async () => {
    on('/s5861/sie-reset', (_r, n) =>
      n === 1 ? { headers: { 'cache-control': 'max-age=1, stale-if-error=600' }, body: 'old' } : 'reset',
    );
    on('/s5861/sie-500', (_r, n) =>
      n === 1
        ? { headers: { 'cache-control': 'max-age=1, stale-if-error=600' }, body: 'old' }
        : { status: 500, body: 'boom' },
    );
    await send('/s5861/sie-reset');
    await send('/s5861/sie-500');
    await sleep(1100);
    const a = await send('/s5861/sie-reset');
    assert.equal(a.status, 200);
    assert.equal(a.body, 'old');
    const b = await send('/s5861/sie-500');
    assert.equal(b.status, 200);
    assert.equal(b.body, 'old');
  });

  it('RFC 5861 §3: stale-while-revalidate answers at once and refreshes in the background', async () => {
    // The refreshed copy lives long, so reading it back triggers no further refresh.
    on('/s5861/swr', (_r, n) => ({
      headers: { 'cache-control': `max-age=${n === 1 ? 1 : 600}, stale-while-revalidate=600` },
      body: `v${n}`,
    }));
    await send('/s5861/swr');
    await sleep(1100);
    const stale = await send('/s5861/swr');
    assert.equal(stale.body, 'v1');
    await untilCount('/s5861/swr', 2);
    let fresh = '';
    for (let i = 0; i < 100 && fresh !== 'v2'; i++) {
      fresh = (await send('/s5861/swr')).body;
      if (fresh !== 'v2') await sleep(10);
    }
    assert.equal(fresh, 'v2');
    assert.equal(count('/s5861/swr'), 2);
  });

  it('§5.2.1.2: max-stale lets a client take a stale copy, unless must-revalidate', async () => {
    on('/s5212/max-stale', (_r, n) => ({ headers: { 'cache-control': 'max-age=1' }, body: `v${n}` }));
    on('/s5212/max-stale-mr', (_r, n) => ({
      headers: { 'cache-control': 'max-age=1, must-revalidate' },
      body: `v${n}`,
    }));
    await send('/s5212/max-stale');
    await send('/s5212/max-stale-mr');
    await sleep(1100);
    assert.equal((await send('/s5212/max-stale', { 'cache-control': 'max-stale=600' })).body, 'v1');
    assert.equal((await send('/s5212/max-stale', { 'cache-control': 'max-stale' })).body, 'v1');
    assert.equal((await send('/s5212/max-stale-mr', { 'cache-control': 'max-stale=600' })).body, 'v2');
  });

  it('§5.2.2.4: a no-cache response is stored but revalidated on every use', async () => {
    on('/s5224/no-cache', (req, n) =>
      req.headers['if-none-match'] === '"nc"'
        ? { status: 304, headers: { etag: '"nc"', 'cache-control': 'no-cache, max-age=600' } }
        : { headers: { etag: '"nc"', 'cache-control': 'no-cache, max-age=600' }, body: `v${n}` },
    );
    await send('/s5224/no-cache');
    const second = await send('/s5224/no-cache');
    const third = await send('/s5224/no-cache');
    assert.equal(count('/s5224/no-cache'), 3, 'every use went to the origin');
    assert.equal(last('/s5224/no-cache')!.headers['if-none-match'], '"nc"', 'as a conditional request');
    assert.equal(second.body, 'v1');
    assert.equal(third.body, 'v1');
    on('/s5224/no-cache-plain', (_r, n) => ({ headers: { 'cache-control': 'no-cache' }, body: `v${n}` }));
    await send('/s5224/no-cache-plain');
    assert.equal((await send('/s5224/no-cache-plain')).body, 'v2');
  });

  it('§5.2.2.4: no-cache="field" — the named field is not sent without revalidation', async () => {
    on('/s5224/qualified', (_r, n) => ({
      headers: { 'cache-control': 'max-age=600, no-cache="x-secret"', 'x-secret': 's3cr3t' },
      body: `v${n}`,
    }));
    await send('/s5224/qualified');
    const second = await send('/s5224/qualified');
    if (count('/s5224/qualified') === 1) assert.equal(second.headers['x-secret'], undefined);
  });

  // --- §5.2.1 request directives -------------------------------------------------------------------------

  it('§5.2.1: no-cache, max-age, min-fresh in the request send it to the origin', async () => {
    const date = httpDate(-10_000);
    const cases = [
      ['/s521/no-cache', { 'cache-control': 'no-cache' }],
      ['/s521/pragma', { pragma: 'no-cache' }],
      ['/s521/max-age-0', { 'cache-control': 'max-age=0' }],
      ['/s521/max-age-5', { 'cache-control': 'max-age=5' }],
      ['/s521/min-fresh', { 'cache-control': 'min-fresh=1200' }],
    ] as const;
    for (const [path, headers] of cases) {
      on(path, (_r, n) => ({ headers: { 'cache-control': 'max-age=600', date }, body: `v${n}` }));
      await send(path);
      assert.equal((await send(path, headers)).body, 'v2', path);
    }
    on('/s521/max-age-60', (_r, n) => ({ headers: { 'cache-control': 'max-age=600', date }, body: `v${n}` }));
    await send('/s521/max-age-60');
    assert.equal((await send('/s521/max-age-60', { 'cache-control': 'max-age=60' })).body, 'v1');
  });

  it('§5.2.1.5: a no-store request is not stored', async () => {
    on('/s521/no-store', (_r, n) => ({ headers: { 'cache-control': 'max-age=600' }, body: `v${n}` }));
    await send('/s521/no-store', { 'cache-control': 'no-store' });
    assert.equal((await send('/s521/no-store')).body, 'v2');
  });

  it('§5.2.1.7: only-if-cached gets a stored response or 504, never the origin', async () => {
    on('/s521/oic', (_r, n) => ({ headers: { 'cache-control': 'max-age=600' }, body: `v${n}` }));
    const none = await send('/s521/oic', { 'cache-control': 'only-if-cached' });
    assert.equal(none.status, 504);
    assert.equal(count('/s521/oic'), 0);
    await send('/s521/oic');
    const stored = await send('/s521/oic', { 'cache-control': 'only-if-cached' });
    assert.equal(stored.status, 200);
    assert.equal(stored.body, 'v1');
    assert.equal(count('/s521/oic'), 1);
  });

  // --- §4.3.2 conditional requests from clients ------------------------------------------------------------

  it('§4.3.2/RFC 9110 §13.2.2: client conditionals on a stored response are answered 304 with the right headers', async () => {
    const lm = httpDate(-HOUR);
    const expires = httpDate(HOUR);
    on('/s432/cond', (_r, n) => ({
      headers: {
        'cache-control': 'max-age=600',
        etag: '"c1"',
        'last-modified': lm,
        expires,
        vary: 'accept-language',
        'content-location': '/s432/cond.txt',
        'x-other': 'yes',
      },
      body: `v${n}`,
    }));
    await send('/s432/cond');
    const nm = await send('/s432/cond', { 'if-none-match': '"c1"' });
    assert.equal(nm.status, 304);
    assert.equal(nm.body, '');
    assert.equal(nm.headers.etag, '"c1"');
    assert.equal(nm.headers['cache-control'], 'max-age=600');
    assert.equal(nm.headers.expires, expires);
    assert.equal(nm.headers.vary, 'accept-language');
    assert.equal(nm.headers['content-location'], '/s432/cond.txt');
    assert.ok(nm.headers.date !== undefined);
    assert.equal((await send('/s432/cond', { 'if-none-match': 'W/"c1"' })).status, 304, 'weak comparison');
    assert.equal((await send('/s432/cond', { 'if-none-match': '"x", "c1"' })).status, 304);
    assert.equal((await send('/s432/cond', { 'if-none-match': '*' })).status, 304);
    assert.equal((await send('/s432/cond', { 'if-none-match': '"other"' })).status, 200);
    assert.equal((await send('/s432/cond', { 'if-modified-since': lm })).status, 304);
    assert.equal((await send('/s432/cond', { 'if-modified-since': httpDate(-2 * HOUR) })).status, 200);
    assert.equal((await send('/s432/cond', { 'if-modified-since': 'yesterday' })).status, 200);
    const precedence = await send('/s432/cond', { 'if-none-match': '"other"', 'if-modified-since': lm });
    assert.equal(precedence.status, 200, 'If-None-Match takes precedence over If-Modified-Since');
    assert.equal((await send('/s432/cond', { 'if-none-match': '"c1"' }, 'HEAD')).status, 304);
    assert.equal(count('/s432/cond'), 1);
  });

  it('HEAD is answered from a stored GET response, without a body', async () => {
    on('/head/x', (_r, n) => ({ headers: { 'cache-control': 'max-age=600' }, body: `body ${n}` }));
    await send('/head/x');
    const head = await send('/head/x', {}, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-length'], '6');
    assert.equal(count('/head/x'), 1);
    on('/head/first', (req, n) => ({ headers: { 'cache-control': 'max-age=600' }, body: `${req.method} ${n}` }));
    await send('/head/first', {}, 'HEAD');
    assert.equal((await send('/head/first')).body, 'GET 2', 'a HEAD response is not stored as the GET one');
  });

  // --- §4.4 invalidation --------------------------------------------------------------------------------

  it('§4.4: a successful POST, PUT, DELETE or PATCH invalidates the target URI', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const path = `/s44/${method.toLowerCase()}`;
      on(path, (req, n) =>
        req.method === 'GET' ? { headers: { 'cache-control': 'max-age=600' }, body: `v${n}` } : { status: 204 },
      );
      await send(path);
      assert.equal((await send(path)).body, 'v1');
      await send(path, {}, method);
      assert.equal((await send(path)).body, 'v3', method);
    }
  });

  it('§4.4: an error response to an unsafe method invalidates nothing', async () => {
    on('/s44/error', (req, n) =>
      req.method === 'GET' ? { headers: { 'cache-control': 'max-age=600' }, body: `v${n}` } : { status: 500 },
    );
    await send('/s44/error');
    await send('/s44/error', {}, 'POST');
    assert.equal((await send('/s44/error')).body, 'v1');
  });

  it('§4.4: Location and Content-Location of the same origin are invalidated, another origin is not', async () => {
    const host = `127.0.0.1:${p.port()}`;
    for (const path of ['/s44/loc', '/s44/cloc', '/s44/abs']) {
      on(path, (_r, n) => ({ headers: { 'cache-control': 'max-age=600' }, body: `v${n}` }));
      await send(path);
    }
    on('/s44/other', (_r, n) => ({ headers: { 'cache-control': 'max-age=600' }, body: `v${n}` }));
    await send('/s44/other', { host: 'other.test' });
    on('/s44/form', () => ({ status: 201, headers: { location: '/s44/loc', 'content-location': 'cloc' } }));
    on('/s44/form2', () => ({ status: 303, headers: { location: `http://${host}/s44/abs` } }));
    on('/s44/form3', () => ({ status: 200, headers: { location: 'http://other.test/s44/other' } }));
    await send('/s44/form', {}, 'POST');
    await send('/s44/form2', {}, 'POST');
    await send('/s44/form3', {}, 'POST');
    assert.equal((await send('/s44/loc')).body, 'v2', 'Location');
    assert.equal((await send('/s44/cloc')).body, 'v2', 'Content-Location (relative)');
    assert.equal((await send('/s44/abs')).body, 'v2', 'absolute Location of the same origin');
    assert.equal((await send('/s44/other', { host: 'other.test' })).body, 'v1', 'another origin is left alone');
  });

  it('§4.4: invalidation reaches every Vary variant of the URI', async () => {
    on('/s44/variants', (req, n) =>
      req.method === 'GET'
        ? {
            headers: { 'cache-control': 'max-age=600', vary: 'accept-language' },
            body: `${req.headers['accept-language']} ${n}`,
          }
        : { status: 200 },
    );
    await send('/s44/variants', { 'accept-language': 'en' });
    await send('/s44/variants', { 'accept-language': 'fr' });
    await send('/s44/variants', {}, 'POST');
    assert.equal((await send('/s44/variants', { 'accept-language': 'en' })).body, 'en 4');
    assert.equal((await send('/s44/variants', { 'accept-language': 'fr' })).body, 'fr 5');
    assert.equal((await send('/s44/variants', { 'accept-language': 'en' })).body, 'en 4');
  });

  it("the route's response header rules apply to responses from the cache too", async () => {
    on('/rules/x', (req, n) =>
      req.headers['if-none-match'] === '"r"'
        ? { status: 304, headers: { etag: '"r"', 'cache-control': 'max-age=0' } }
        : { headers: { 'cache-control': 'max-age=0', etag: '"r"', 'x-internal': 'secret' }, body: `v${n}` },
    );
    for (const headers of [{}, {}, { 'if-none-match': '"r"' }] as Record<string, string>[]) {
      const res = await send('/rules/x', headers);
      assert.equal(res.headers['x-rule'], 'applied');
      assert.equal(res.headers['x-internal'], undefined);
    }
    on('/rules/hit', () => ({ headers: { 'cache-control': 'max-age=600', 'x-internal': 'secret' }, body: 'b' }));
    for (const headers of [{}, {}, { 'cache-control': 'only-if-cached' }] as Record<string, string>[]) {
      const res = await send('/rules/hit', headers);
      assert.equal(res.headers['x-rule'], 'applied');
      assert.equal(res.headers['x-added'], 'once', 'the stored entry holds the upstream headers, not the rules output');
      assert.equal(res.headers['x-internal'], undefined);
    }
    assert.equal(count('/rules/hit'), 1);
  });

  // --- the key ----------------------------------------------------------------------------------------------

  it('§4: responses are never shared across different Host values', async () => {
    on('/key/host', (_r, n) => ({ headers: { 'cache-control': 'max-age=600' }, body: `v${n}` }));
    assert.equal((await send('/key/host', { host: 'a.test' })).body, 'v1');
    assert.equal((await send('/key/host', { host: 'b.test' })).body, 'v2');
    assert.equal((await send('/key/host', { host: 'a.test' })).body, 'v1');
    assert.equal((await send('/key/host', { host: 'b.test' })).body, 'v2');
  });
});
