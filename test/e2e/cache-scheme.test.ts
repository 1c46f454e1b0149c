/**
 * End to end: cache keys hold the scheme (RFC 9111 §2 keys on the target URI). One route serves an `http` and
 * an `https` listener; the upstream redirects plain-HTTP requests to HTTPS (it reads X-Forwarded-Proto), a
 * cacheable 301. Without the scheme in the key, HTTPS clients would be served that redirect: a loop.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { startUpstream, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { certDir, makeCert } from '../helpers/tls-certs.ts';

interface Answer {
  status: number;
  cache: string | undefined;
  body: string;
}

/** Both listeners are asked for one site, as a browser would after an HTTP → HTTPS redirect. */
function get(url: string, method = 'GET', body?: string): Promise<Answer> {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  const headers = { host: 'site.test' };
  return new Promise((resolve, reject) => {
    request(url, { method, headers, agent: false, rejectUnauthorized: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode!, cache: res.headers['x-cache'] as string, body: text }));
    })
      .on('error', reject)
      .end(body);
  });
}

describe('cache keys hold the scheme', () => {
  let origin: TestServer;
  let p: PorticoProcess;
  let plain: string;
  let secure: string;
  let admin: string;
  const seen: string[] = [];

  before(async () => {
    origin = await startUpstream((req, res) => {
      const proto = String(req.headers['x-forwarded-proto']);
      seen.push(`${req.method} ${proto}`);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(204);
        res.end();
      } else if (proto === 'http') {
        res.writeHead(301, { location: `https://${req.headers.host}${req.url}`, 'cache-control': 'max-age=60' });
        res.end();
      } else {
        res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
        res.end('secure page');
      }
    });
    const cert = makeCert(certDir(), ['DNS:localhost', 'IP:127.0.0.1']);
    p = await startPortico(`
listeners:
  - { name: plain, protocol: http, address: "127.0.0.1:0" }
  - name: secure
    protocol: https
    address: "127.0.0.1:0"
    tls: { certificates: [ { cert: ${cert.cert}, key: ${cert.key} } ] }
upstreams:
  - { name: app, targets: [ { url: ${origin.url} } ] }
routes:
  - { name: pages, match: { path: /* }, cache: { ttl: 30s }, upstream: app }
admin: { address: ":0" }
`);
    plain = `http://127.0.0.1:${p.ports.plain}`;
    secure = `https://127.0.0.1:${p.ports.secure}`;
    admin = `http://${p.lines.find((l) => l.msg === 'started')!.admin}`;
  });

  after(async () => {
    await p?.stop();
    await origin?.close();
  });

  it('keeps the http redirect and the https page apart, and a purge without a scheme takes both', async () => {
    assert.deepEqual(await get(`${plain}/page`), { status: 301, cache: 'MISS', body: '' });
    assert.deepEqual(await get(`${secure}/page`), { status: 200, cache: 'MISS', body: 'secure page' });
    assert.deepEqual(await get(`${plain}/page`), { status: 301, cache: 'HIT', body: '' });
    assert.deepEqual(await get(`${secure}/page`), { status: 200, cache: 'HIT', body: 'secure page' });
    assert.deepEqual(seen, ['GET http', 'GET https']);

    const purge = (body: object) => get(`${admin}/cache/purge`, 'POST', JSON.stringify(body));
    const exact = await purge({ key: 'https://site.test/page' });
    assert.deepEqual(JSON.parse(exact.body), { purged: 1 });
    assert.equal((await get(`${plain}/page`)).cache, 'HIT', 'a key with a scheme purges that scheme only');
    assert.equal((await get(`${secure}/page`)).cache, 'MISS');

    const both = await purge({ prefix: 'site.test/' });
    assert.deepEqual(JSON.parse(both.body), { purged: 2 });
    assert.equal((await get(`${plain}/page`)).cache, 'MISS');
  });

  it('an unsafe request over one scheme invalidates the entry under the other too', async () => {
    assert.equal((await get(`${secure}/doc`)).cache, 'MISS');
    assert.equal((await get(`${secure}/doc`)).cache, 'HIT');
    assert.equal((await get(`${plain}/doc`, 'POST', 'x')).status, 204);
    assert.equal((await get(`${secure}/doc`)).cache, 'MISS');
  });
});
