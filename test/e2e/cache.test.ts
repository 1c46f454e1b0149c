/**
 * End to end: the RFC 9111 cache and response compression through the real process.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync, zstdDecompressSync } from 'node:zlib';
import { startUpstream, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';

/** GET with node:http (no automatic decompression), returning the raw body. */
function get(url: string, headers: Record<string, string> = {}, method = 'GET') {
  return new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>(
    (resolve, reject) => {
      request(url, { method, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      })
        .on('error', reject)
        .end();
    },
  );
}

describe('cache and compression', () => {
  let origin: TestServer;
  let p: PorticoProcess;
  const hits = new Map<string, number>();
  let originDown = false;
  const count = (url: string) => hits.set(url, (hits.get(url) ?? 0) + 1);
  const text = 'hello portico '.repeat(200);

  before(async () => {
    origin = await startUpstream((req, res) => {
      const url = req.url!;
      count(url);
      if (originDown && url.startsWith('/stale')) {
        res.writeHead(503);
        res.end();
        return;
      }
      if (url.startsWith('/tagged-fresh')) {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60', etag: '"t1"' });
        res.end('tagged fresh');
      } else if (url.startsWith('/fresh')) {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
        res.end(`fresh ${url}`);
      } else if (url.startsWith('/private')) {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'private, max-age=60' });
        res.end('mine');
      } else if (url.startsWith('/vary')) {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60', vary: 'accept-language' });
        res.end(`lang ${req.headers['accept-language']}`);
      } else if (url.startsWith('/etag')) {
        if (req.headers['if-none-match'] === '"v1"') {
          res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=0' });
          res.end();
          return;
        }
        res.writeHead(200, { 'content-type': 'text/plain', etag: '"v1"', 'cache-control': 'max-age=0' });
        res.end('tagged');
      } else if (url.startsWith('/stale')) {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=1, stale-if-error=600' });
        res.end('old but gold');
      } else if (url.startsWith('/slow')) {
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
          res.end('slow');
        }, 300);
      } else if (url.startsWith('/auth')) {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
        res.end('secret');
      } else if (url.startsWith('/text')) {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', etag: '"strong"' });
        res.end(text);
      } else if (url.startsWith('/png')) {
        res.writeHead(200, { 'content-type': 'image/png' });
        res.end(Buffer.alloc(4000, 1));
      } else if (url.startsWith('/head-fresh')) {
        // GET: fresh for a second; HEAD: the same representation (ETag), fresh for a minute, a new field.
        const head = req.method === 'HEAD';
        res.writeHead(200, {
          'content-type': 'text/plain',
          etag: '"h1"',
          'cache-control': head ? 'max-age=60' : 'max-age=1',
          ...(head ? { 'x-from': 'head' } : {}),
        });
        res.end('body of h1');
      } else {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('other');
      }
    });
    p = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: origin, targets: [ { url: ${origin.url} } ] } ]
routes:
  - { name: compressed, match: { path: /z/* }, rewrite: { stripPrefix: /z }, compress: true, upstream: origin }
  - { name: cached, match: { path: /* }, cache: { ttl: 30s }, upstream: origin }
`);
  });

  after(async () => {
    await p?.stop();
    await origin?.close();
  });

  it('MISS then HIT for a fresh response, with Age', async () => {
    const first = await get(`${p.url()}/fresh/a`);
    assert.equal(first.headers['x-cache'], 'MISS');
    const second = await get(`${p.url()}/fresh/a`);
    assert.equal(second.headers['x-cache'], 'HIT');
    assert.equal(second.body.toString(), 'fresh /fresh/a');
    assert.ok(second.headers.age !== undefined);
    assert.equal(hits.get('/fresh/a'), 1);
  });

  it('serves HEAD from a GET entry and answers conditional requests with 304', async () => {
    await get(`${p.url()}/fresh/head`);
    const head = await get(`${p.url()}/fresh/head`, {}, 'HEAD');
    assert.equal(head.headers['x-cache'], 'HIT');
    assert.equal(head.body.length, 0);
    assert.equal(hits.get('/fresh/head'), 1);
    await get(`${p.url()}/tagged-fresh`);
    const conditional = await get(`${p.url()}/tagged-fresh`, { 'if-none-match': '"t1"' });
    assert.equal(conditional.status, 304);
    assert.equal(conditional.body.length, 0);
    assert.equal(hits.get('/tagged-fresh'), 1);
  });

  it('a HEAD answered upstream freshens the stale GET entry it matches (RFC 9111 §4.3.5)', async () => {
    assert.equal((await get(`${p.url()}/head-fresh`)).headers['x-cache'], 'MISS');
    await new Promise((r) => setTimeout(r, 1100));
    const head = await get(`${p.url()}/head-fresh`, {}, 'HEAD');
    assert.equal(head.headers['x-cache'], 'MISS', 'the stale entry sends the HEAD upstream');
    const after = await get(`${p.url()}/head-fresh`);
    assert.equal(after.headers['x-cache'], 'HIT');
    assert.equal(after.headers['x-from'], 'head');
    assert.equal(after.body.toString(), 'body of h1');
    assert.equal(hits.get('/head-fresh'), 2, 'one GET and one HEAD reached the origin');
  });

  it('never stores private responses or responses to requests with Authorization', async () => {
    await get(`${p.url()}/private/x`);
    const again = await get(`${p.url()}/private/x`);
    assert.notEqual(again.headers['x-cache'], 'HIT');
    assert.equal(hits.get('/private/x'), 2);
    await get(`${p.url()}/auth/x`, { authorization: 'Bearer a' });
    await get(`${p.url()}/auth/x`, { authorization: 'Bearer b' });
    assert.equal(hits.get('/auth/x'), 2, 'a response to an Authorization request is not shared');
  });

  it('keys variants by the headers Vary names', async () => {
    const en = await get(`${p.url()}/vary/x`, { 'accept-language': 'en' });
    const fr = await get(`${p.url()}/vary/x`, { 'accept-language': 'fr' });
    const en2 = await get(`${p.url()}/vary/x`, { 'accept-language': 'en' });
    assert.equal(en.body.toString(), 'lang en');
    assert.equal(fr.body.toString(), 'lang fr');
    assert.equal(en2.body.toString(), 'lang en');
    assert.equal(en2.headers['x-cache'], 'HIT');
  });

  it('revalidates with ETag: an upstream 304 refreshes the entry', async () => {
    await get(`${p.url()}/etag/x`);
    const second = await get(`${p.url()}/etag/x`);
    assert.equal(second.status, 200);
    assert.equal(second.body.toString(), 'tagged');
    assert.equal(second.headers['x-cache'], 'REVALIDATED');
  });

  it('serves stale-if-error when the upstream fails', async () => {
    await get(`${p.url()}/stale/x`);
    await new Promise((r) => setTimeout(r, 1200));
    originDown = true;
    try {
      const res = await get(`${p.url()}/stale/x`);
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), 'old but gold');
      assert.equal(res.headers['x-cache'], 'STALE');
    } finally {
      originDown = false;
    }
  });

  it('coalesces 50 concurrent misses into one upstream request', async () => {
    const results = await Promise.all(Array.from({ length: 50 }, () => get(`${p.url()}/slow/x`)));
    assert.ok(results.every((r) => r.status === 200 && r.body.toString() === 'slow'));
    assert.equal(hits.get('/slow/x'), 1);
  });

  it('BYPASS for requests that do not use the cache', async () => {
    const res = await get(`${p.url()}/fresh/b`, { 'cache-control': 'no-store' });
    assert.equal(res.headers['x-cache'], 'BYPASS');
  });

  it('compresses by Accept-Encoding q-values, weakens ETags and adds Vary', async () => {
    const gz = await get(`${p.url()}/z/text`, { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(gz.body).toString(), text);
    assert.equal(gz.headers.etag, 'W/"strong"');
    assert.match(String(gz.headers.vary), /accept-encoding/i);
    const br = await get(`${p.url()}/z/text`, { 'accept-encoding': 'gzip;q=0.5, br;q=1' });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(brotliDecompressSync(br.body).toString(), text);
    const zstd = await get(`${p.url()}/z/text`, { 'accept-encoding': 'zstd' });
    assert.equal(zstd.headers['content-encoding'], 'zstd');
    assert.equal(zstdDecompressSync(zstd.body).toString(), text);
    const none = await get(`${p.url()}/z/text`, { 'accept-encoding': 'identity' });
    assert.equal(none.headers['content-encoding'], undefined);
    assert.equal(none.body.toString(), text);
    const refused = await get(`${p.url()}/z/text`, { 'accept-encoding': 'gzip;q=0' });
    assert.equal(refused.headers['content-encoding'], undefined);
  });

  it('does not compress types outside the list', async () => {
    const png = await get(`${p.url()}/z/png`, { 'accept-encoding': 'gzip' });
    assert.equal(png.headers['content-encoding'], undefined);
    assert.equal(png.body.length, 4000);
  });
});
