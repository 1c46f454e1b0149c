/**
 * End to end: the real `portico` process proxying to real upstreams — routing, normalisation, rewrites,
 * header rules, RFC 9110 proxy headers, request ids, shielding and the access log.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fetchRaw, rawExchange, startEchoUpstream, startUpstream, statusOf, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';

interface Echo {
  name: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

describe('proxy basics', () => {
  let users: TestServer;
  let admin: TestServer;
  let plain: TestServer;
  let p: PorticoProcess;

  before(async () => {
    users = await startEchoUpstream('users');
    admin = await startEchoUpstream('admin');
    plain = await startUpstream((req, res) => {
      if (req.url === '/no-content') {
        res.writeHead(204, { server: 'backend/1.0', 'x-powered-by': 'php' });
        res.end();
        return;
      }
      if (req.url === '/not-modified') {
        res.writeHead(304, { etag: '"v1"' });
        res.end();
        return;
      }
      if (req.url === '/hints') {
        res.writeEarlyHints({ link: '</app.css>; rel=preload; as=style' });
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('hinted');
        return;
      }
      if (req.url === '/hop') {
        res.writeHead(200, { connection: 'x-secret', 'x-secret': 'no', 'keep-alive': 'timeout=5', 'x-kept': 'yes' });
        res.end('hop');
        return;
      }
      res.writeHead(200, {
        server: 'backend/1.0',
        'x-powered-by': 'php',
        'content-type': 'text/plain',
        'content-length': '5',
      });
      res.end('plain');
    });
    p = await startPortico(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:0, trustedProxies: [10.0.0.0/8] }
upstreams:
  - { name: users, targets: [ { url: ${users.url} } ] }
  - { name: admin, targets: [ { url: ${admin.url} } ] }
  - { name: plain, targets: [ { url: ${plain.url} } ] }
routes:
  - { name: admin, match: { path: /admin/* }, upstream: admin }
  - { name: user-by-id, match: { path: /users/:id, methods: [GET] }, upstream: users }
  - name: users-v2
    match: { path: /api/users/*, host: api.example.com }
    rewrite: { stripPrefix: /api, addPrefix: /v2 }
    headers:
      request: { set: { x-route: users-v2 }, remove: [x-drop-me] }
      response: { set: { x-served-by: portico }, add: { x-extra: one } }
    upstream: users
  - name: regex
    match: { path: /r/* }
    rewrite: { regex: { pattern: "^/r/(\\\\w+)/(\\\\w+)$", replacement: "/swapped/$2/$1" } }
    upstream: users
  - { name: wildcard-host, match: { host: "*.example.org", path: /* }, upstream: admin }
  - { name: beta, match: { path: /*, headers: { x-beta: "1" } }, upstream: admin }
  - { name: preserve, match: { path: /keep/* }, preserveHost: true, upstream: users }
  - { name: plain, match: { path: /p/* }, rewrite: { stripPrefix: /p }, upstream: plain }
  - { name: all, match: { path: /* }, upstream: users }
proxy: { serverHeader: portico }
`);
  });

  after(async () => {
    await p?.stop();
    await Promise.all([users?.close(), admin?.close(), plain?.close()]);
  });

  it('forwards method, path, query and body, and streams the answer back', async () => {
    const res = await fetch(`${p.url()}/hello/world?x=1&y=%20`, { method: 'POST', body: 'payload' });
    assert.equal(res.status, 200);
    const echo = (await res.json()) as Echo;
    assert.equal(echo.name, 'users');
    assert.equal(echo.method, 'POST');
    assert.equal(echo.url, '/hello/world?x=1&y=%20');
    assert.equal(echo.body, 'payload');
  });

  it('routes by path parameter and method, most specific first', async () => {
    const byId = (await (await fetch(`${p.url()}/users/42`)).json()) as Echo;
    assert.equal(byId.name, 'users');
    const adminEcho = (await (await fetch(`${p.url()}/admin/panel`)).json()) as Echo;
    assert.equal(adminEcho.name, 'admin');
    const beta = (await (await fetch(`${p.url()}/users/42`, { headers: { 'x-beta': '1' } })).json()) as Echo;
    assert.equal(beta.name, 'users', 'a path-specific route beats a header-only catch-all');
    const betaAny = (await (await fetch(`${p.url()}/other`, { headers: { 'x-beta': '1' } })).json()) as Echo;
    assert.equal(betaAny.name, 'admin', 'header condition wins among catch-alls');
  });

  it('matches hosts exactly and by wildcard', async () => {
    const res = await fetchRaw(`${p.url()}/anything`, { headers: { host: 'shop.example.org' } });
    assert.equal((JSON.parse(res.body) as Echo).name, 'admin');
    const bare = await fetchRaw(`${p.url()}/anything`, { headers: { host: 'example.org' } });
    assert.equal((JSON.parse(bare.body) as Echo).name, 'users', '*.example.org does not match example.org');
  });

  it('normalises paths so encodings and dot-segments cannot dodge a route', async () => {
    for (const path of ['/%61dmin/x', '/a/../admin/x', '/admin/./x', '//admin/x', '/users/../admin/x']) {
      const raw = await rawExchange(p.port(), `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
      assert.equal(statusOf(raw), 200, path);
      const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Echo;
      assert.equal(body.name, 'admin', path);
      assert.equal(body.url, '/admin/x', `${path} reaches the upstream normalised`);
    }
  });

  it('rejects encoded slashes, NUL and bad escapes with 400 problem+json', async () => {
    for (const path of ['/admin%2Fx', '/a%00b', '/bad%zz', '/a%5c..%5cadmin']) {
      const raw = await rawExchange(p.port(), `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`);
      assert.equal(statusOf(raw), 400, path);
      assert.match(raw, /content-type: application\/problem\+json/i);
      assert.match(raw, /"code":"GW_BAD_PATH"/);
    }
    assert.equal(users.seen.filter((r) => r.url?.includes('%2F')).length, 0);
  });

  it('answers 404 problem+json with a request id when no route matches', async () => {
    const lone = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: users, targets: [ { url: ${users.url} } ] } ]
routes: [ { name: only, match: { path: /only }, upstream: users } ]
`);
    try {
      const res = await fetch(`${lone.url()}/nope`);
      assert.equal(res.status, 404);
      assert.equal(res.headers.get('content-type'), 'application/problem+json');
      const body = (await res.json()) as Record<string, unknown>;
      assert.equal(body.status, 404);
      assert.equal(body.code, 'GW_ROUTE_NOT_FOUND');
      assert.equal(typeof body.title, 'string');
      assert.equal(body.requestId, res.headers.get('x-request-id'));
    } finally {
      await lone.stop();
    }
  });

  it('rewrites paths with stripPrefix, addPrefix and regex, and applies header rules', async () => {
    const res = await fetchRaw(`${p.url()}/api/users/7?q=1`, {
      headers: { host: 'api.example.com', 'x-drop-me': 'secret' },
    });
    const echo = JSON.parse(res.body) as Echo;
    assert.equal(echo.url, '/v2/users/7?q=1');
    assert.equal(echo.headers['x-route'], 'users-v2');
    assert.equal(echo.headers['x-drop-me'], undefined);
    assert.equal(res.headers['x-served-by'], 'portico');
    assert.equal(res.headers['x-extra'], 'one');
    const swapped = (await (await fetch(`${p.url()}/r/first/second`)).json()) as Echo;
    assert.equal(swapped.url, '/swapped/second/first');
  });

  it("sends the target's host by default and the client's with preserveHost", async () => {
    const def = (await (await fetch(`${p.url()}/x`)).json()) as Echo;
    assert.equal(def.headers.host, `127.0.0.1:${users.port}`);
    const kept = await fetchRaw(`${p.url()}/keep/x`, { headers: { host: 'public.example.com' } });
    assert.equal((JSON.parse(kept.body) as Echo).headers.host, 'public.example.com');
  });

  it('removes hop-by-hop headers and those named in Connection, both ways', async () => {
    const res = await fetchRaw(`${p.url()}/x`, {
      headers: {
        connection: 'keep-alive, x-private',
        'x-private': 'secret',
        'keep-alive': '300',
        te: 'gzip',
        'proxy-authorization': 'Basic eA==',
      },
    });
    const echo = JSON.parse(res.body) as Echo;
    assert.equal(echo.headers['x-private'], undefined);
    assert.equal(echo.headers['keep-alive'], undefined);
    assert.equal(echo.headers.te, undefined);
    assert.equal(echo.headers['proxy-authorization'], undefined);
    const hop = await fetchRaw(`${p.url()}/p/hop`);
    assert.equal(hop.headers['x-secret'], undefined);
    assert.equal(hop.headers['x-kept'], 'yes');
    assert.notEqual(hop.headers['keep-alive'], 'timeout=5');
  });

  it('replaces forwarding headers from untrusted clients', async () => {
    const res = await fetchRaw(`${p.url()}/x`, {
      headers: {
        'x-forwarded-for': '6.6.6.6',
        'x-forwarded-proto': 'https',
        forwarded: 'for=6.6.6.6',
        host: 'site.test',
      },
    });
    const echo = JSON.parse(res.body) as Echo;
    assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(echo.headers['x-forwarded-proto'], 'http');
    assert.equal(echo.headers['x-forwarded-host'], 'site.test');
    assert.equal(echo.headers.forwarded, 'for=127.0.0.1;proto=http;host="site.test"');
  });

  it('drops the upstream Server and X-Powered-By headers', async () => {
    const res = await fetch(`${p.url()}/p/plain`);
    assert.equal(await res.text(), 'plain');
    assert.equal(res.headers.get('server'), 'portico', 'the configured Server, not the upstream one');
    assert.equal(res.headers.get('x-powered-by'), null);
  });

  it('handles HEAD, 204 and 304 without bodies', async () => {
    const head = await rawExchange(p.port(), 'HEAD /p/plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(head), 200);
    assert.match(head, /content-length: 5/i);
    assert.ok(head.endsWith('\r\n\r\n'), 'no body after a HEAD response');
    const noContent = await rawExchange(p.port(), 'GET /p/no-content HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(noContent), 204);
    assert.ok(noContent.endsWith('\r\n\r\n'));
    assert.doesNotMatch(noContent, /server: backend/i);
    const notModified = await rawExchange(
      p.port(),
      'GET /p/not-modified HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    assert.equal(statusOf(notModified), 304);
    assert.match(notModified, /etag: "v1"/i);
    assert.ok(notModified.endsWith('\r\n\r\n'));
  });

  it('forwards 103 Early Hints before the final response', async () => {
    const { request } = await import('node:http');
    const informational: Array<{ status: number; link: unknown }> = [];
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(`${p.url()}/p/hints`, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve(text));
      });
      req.on('information', (info) => informational.push({ status: info.statusCode, link: info.headers.link }));
      req.on('error', reject);
      req.end();
    });
    assert.equal(body, 'hinted');
    assert.deepEqual(informational, [{ status: 103, link: '</app.css>; rel=preload; as=style' }]);
  });

  it('keeps a well-formed request id, replaces a bad one, and sends it both ways', async () => {
    const kept = await fetch(`${p.url()}/x`, { headers: { 'x-request-id': 'abc-123' } });
    assert.equal(kept.headers.get('x-request-id'), 'abc-123');
    assert.equal(((await kept.json()) as Echo).headers['x-request-id'], 'abc-123');
    const replaced = await fetch(`${p.url()}/x`, { headers: { 'x-request-id': 'bad id with spaces' } });
    const id = replaced.headers.get('x-request-id')!;
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(((await replaced.json()) as Echo).headers['x-request-id'], id);
  });

  it('refuses TRACE, duplicate Host headers and CONNECT', async () => {
    const trace = await rawExchange(p.port(), 'TRACE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(trace), 405);
    assert.match(
      trace,
      /\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n/i,
      'RFC 9110 §15.5.6: a 405 lists what is allowed',
    );
    const dup = await rawExchange(p.port(), 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(dup), 400);
    const connect = await rawExchange(p.port(), 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    assert.equal(statusOf(connect), 405);
    assert.match(connect, /\r\nallow: GET/i);
  });

  it('answers OPTIONS * and Max-Forwards: 0 itself, and decrements a positive Max-Forwards', async () => {
    const star = await rawExchange(p.port(), 'OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(star), 200);
    assert.match(star, /allow: GET/i);
    // Like every local reply: the configured Server header and the request id.
    assert.match(star, /\r\nserver: portico\r\n/i);
    assert.match(star, /\r\nx-request-id: [^\r]+\r\n/i);
    const zero = await rawExchange(
      p.port(),
      'OPTIONS /x HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\nConnection: close\r\n\r\n',
    );
    assert.equal(statusOf(zero), 200);
    assert.match(zero, /\r\nserver: portico\r\n/i);
    assert.match(zero, /\r\nx-request-id: [^\r]+\r\n/i);
    assert.equal(users.seen.filter((r) => r.method === 'OPTIONS' && r.url === '/x').length, 0);
    const two = await rawExchange(
      p.port(),
      'OPTIONS /mf HTTP/1.1\r\nHost: x\r\nMax-Forwards: 2\r\nConnection: close\r\n\r\n',
    );
    const echo = JSON.parse(two.slice(two.indexOf('\r\n\r\n') + 4)) as Echo;
    assert.equal(echo.headers['max-forwards'], '1');
  });

  it('answers 414 to a request line longer than the head allows, 431 to oversized header fields', async () => {
    const longUri = await rawExchange(p.port(), `GET /${'a'.repeat(40000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal(statusOf(longUri), 414);
    const bigHeader = await rawExchange(p.port(), `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40000)}\r\n\r\n`);
    assert.equal(statusOf(bigHeader), 431);
  });

  it('serves Upgrade: h2c as a plain request, never a tunnel', async () => {
    const raw = await rawExchange(
      p.port(),
      'GET /x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n',
      1500,
    );
    assert.equal(statusOf(raw), 200);
    const echo = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as Echo;
    assert.equal(echo.headers.upgrade, undefined);
    assert.equal(echo.headers['http2-settings'], undefined);
  });

  it('writes one JSON access-log line per request with the documented fields', async () => {
    const res = await fetch(`${p.url()}/logged?x=1`, { headers: { 'x-request-id': 'log-check-1' } });
    await res.text();
    const line = await p.waitFor((l) => l.msg === 'request' && l.requestId === 'log-check-1');
    assert.equal(line.method, 'GET');
    assert.equal(line.path, '/logged?x=1');
    assert.equal(line.route, 'all');
    assert.equal(line.target, users.url);
    assert.equal(line.status, 200);
    assert.equal(line.client, '127.0.0.1');
    assert.equal(typeof line.durationMs, 'number');
    assert.equal(typeof line.upstreamMs, 'number');
    assert.equal(typeof line.bytesOut, 'number');
    assert.equal(typeof line.bytesIn, 'number');
    assert.equal(typeof line.time, 'string');
  });
});
