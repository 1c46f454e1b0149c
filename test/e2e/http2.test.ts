/**
 * End to end: HTTP/2 — h2 and http/1.1 on one https port chosen by ALPN, request bodies without
 * Content-Length, h2c with prior knowledge on an `http` listener, and `Upgrade: h2c` served as plain
 * HTTP/1.1 (never a tunnel).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { connect as http2Connect, sensitiveHeaders } from 'node:http2';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startEchoUpstream, statusOf, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { certDir, makeCert } from '../helpers/tls-certs.ts';

const run = promisify(execFile);

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** One request on an HTTP/2 session; resolves with status, headers and body. */
function h2Request(
  authority: string,
  headers: Record<string, string>,
  body?: string[],
  tls = false,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(authority, tls ? { rejectUnauthorized: false } : {});
    session.on('error', reject);
    const stream = session.request(headers, { endStream: body === undefined });
    let out = '';
    let head: Record<string, unknown> = {};
    stream.setEncoding('utf8');
    stream.on('response', (h) => {
      head = h;
    });
    stream.on('data', (c: string) => {
      out += c;
    });
    stream.on('end', () => {
      session.close();
      resolve({ status: Number(head[':status']), headers: head, body: out });
    });
    stream.on('error', reject);
    if (body !== undefined) {
      for (const chunk of body) stream.write(chunk);
      stream.end();
    }
  });
}

describe('http/2', () => {
  const dir = certDir();
  const cert = makeCert(dir, ['DNS:h2.test']);
  let echo: TestServer;
  let p: PorticoProcess;

  before(async () => {
    echo = await startEchoUpstream('echo');
    p = await startPortico(`
listeners:
  - name: secure
    protocol: https
    address: 127.0.0.1:0
    tls: { certificates: [ { cert: ${cert.cert}, key: ${cert.key} } ] }
  - { name: h2c, protocol: http, address: 127.0.0.2:0, h2c: true }
  - { name: web, protocol: http, address: 127.0.0.3:0 }
  - name: h1only
    protocol: https
    address: 127.0.0.4:0
    http2: false
    tls: { certificates: [ { cert: ${cert.cert}, key: ${cert.key} } ] }
upstreams:
  - { name: echo, targets: [ { url: ${echo.url} } ] }
routes:
  - { name: host, match: { host: h2.test, path: /by-host/* }, headers: { request: { set: { x-route: host } } }, upstream: echo }
  - { name: all, match: { path: /* }, upstream: echo }
`);
  });

  after(async () => {
    await p?.stop();
    await echo?.close();
  });

  it('serves h2 and http/1.1 on one https port by ALPN (curl)', async () => {
    const port = p.port('secure');
    const h2 = await run('curl', [
      '-sk',
      '-o',
      '/dev/null',
      '-w',
      '%{http_version} %{http_code}',
      '--http2',
      `https://127.0.0.1:${port}/v`,
    ]);
    assert.equal(h2.stdout, '2 200');
    const h1 = await run('curl', [
      '-sk',
      '-o',
      '/dev/null',
      '-w',
      '%{http_version} %{http_code}',
      '--http1.1',
      `https://127.0.0.1:${port}/v`,
    ]);
    assert.equal(h1.stdout, '1.1 200');
    const only = await run('curl', [
      '-sk',
      '-o',
      '/dev/null',
      '-w',
      '%{http_version} %{http_code}',
      '--http2',
      `https://127.0.0.4:${p.port('h1only')}/v`,
    ]);
    assert.equal(only.stdout, '1.1 200');
  });

  it('routes h2 by :authority and forwards no pseudo-headers', async () => {
    const res = await h2Request(
      `https://127.0.0.1:${p.port('secure')}`,
      { ':path': '/by-host/a?b=c', ':authority': 'h2.test' },
      undefined,
      true,
    );
    assert.equal(res.status, 200);
    const seen = JSON.parse(res.body) as Echo;
    assert.equal(seen.url, '/by-host/a?b=c');
    assert.equal(seen.headers['x-route'], 'host');
    assert.equal(seen.headers['x-forwarded-host'], 'h2.test');
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.ok(Object.keys(seen.headers).every((k) => !k.startsWith(':')));
  });

  it('forwards an h2 request body sent without content-length', async () => {
    const res = await h2Request(
      `https://127.0.0.1:${p.port('secure')}`,
      { ':method': 'POST', ':path': '/upload' },
      ['part one, ', 'part two'],
      true,
    );
    assert.equal(res.status, 200);
    const seen = JSON.parse(res.body) as Echo;
    assert.equal(seen.method, 'POST');
    assert.equal(seen.body, 'part one, part two');
  });

  it("logs an h2 request's own bytes in: its header list and its body, not the session's", async () => {
    const authority = `https://127.0.0.1:${p.port('secure')}`;
    const body = 'x'.repeat(5000);
    const headers = { ':method': 'POST', ':path': '/counted', 'x-request-id': 'h2-bytes-in' };
    const res = await h2Request(authority, headers, [body], true);
    assert.equal(res.status, 200);
    const line = await p.waitFor((l) => l.msg === 'request' && l.requestId === 'h2-bytes-in');
    // RFC 9113 §6.5.2: each field's name and value plus 32 (Node adds its own pseudo-header for the scheme).
    const fields = Object.entries({ ...headers, ':scheme': 'https', ':authority': authority.slice(8) });
    const headBytes = fields.reduce((n, [name, value]) => n + name.length + value.length + 32, 0);
    assert.equal(line.bytesIn, headBytes + body.length);
    const get = await h2Request(authority, { ':path': '/counted', 'x-request-id': 'h2-bytes-in-get' }, undefined, true);
    assert.equal(get.status, 200);
    const getLine = await p.waitFor((l) => l.msg === 'request' && l.requestId === 'h2-bytes-in-get');
    assert.ok((getLine.bytesIn as number) > 0 && (getLine.bytesIn as number) < 300, String(getLine.bytesIn));
  });

  it('sends the request id never indexed, so HPACK does not fill its table with one-off values', async () => {
    const res = await h2Request(`https://127.0.0.1:${p.port('secure')}`, { ':path': '/hpack' }, undefined, true);
    assert.equal(res.status, 200);
    assert.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    // Node's client lists the fields it received as "never indexed" (RFC 7541 §6.2.3) here.
    const neverIndexed = (res.headers as Record<symbol, unknown>)[sensitiveHeaders];
    assert.deepEqual(neverIndexed, ['x-request-id']);
  });

  it('accepts h2c with prior knowledge, and HTTP/1.1 on the same port', async () => {
    const port = p.port('h2c');
    const res = await h2Request(`http://127.0.0.2:${port}`, { ':path': '/prior' });
    assert.equal(res.status, 200);
    assert.equal((JSON.parse(res.body) as Echo).headers['x-forwarded-proto'], 'http');
    const curl = await run('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_version} %{http_code}',
      '--http2-prior-knowledge',
      `http://127.0.0.2:${port}/c`,
    ]);
    assert.equal(curl.stdout, '2 200');
    const h1 = await run('curl', [
      '-s',
      '-o',
      '/dev/null',
      '-w',
      '%{http_version} %{http_code}',
      `http://127.0.0.2:${port}/c`,
    ]);
    assert.equal(h1.stdout, '1.1 200');
  });

  it('never turns Upgrade: h2c into a tunnel', async () => {
    for (const listener of ['h2c', 'web']) {
      const port = p.port(listener);
      const address = listener === 'h2c' ? '127.0.0.2' : '127.0.0.3';
      const curl = await run('curl', [
        '-s',
        '-w',
        '\n%{http_version} %{http_code}',
        '--http2',
        `http://${address}:${port}/up`,
      ]);
      const [body, status] = curl.stdout.split('\n');
      assert.equal(status, '1.1 200');
      const seen = JSON.parse(body!) as Echo;
      assert.equal(seen.headers.upgrade, undefined);
      assert.equal(seen.headers['http2-settings'], undefined);
    }
    // Without h2c enabled, the preface is a bad HTTP/1 request.
    const socket = connect(p.port('web'), '127.0.0.3');
    socket.end('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
    socket.setEncoding('latin1');
    let raw = '';
    socket.on('data', (c: string) => {
      raw += c;
    });
    await once(socket, 'close');
    assert.ok(raw === '' || statusOf(raw) >= 400);
  });
});
