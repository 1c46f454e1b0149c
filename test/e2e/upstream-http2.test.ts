/**
 * End to end: an upstream with `http2: true` behind TLS (an HTTP/2-only node:http2 server verified against its
 * CA). Requests from HTTP/1.1 and HTTP/2 clients reach it over HTTP/2, request bodies stream to it whole (the
 * streamed form of the body undici pipes into its HTTP/2 stream), the route's body limit holds for chunked
 * uploads, and response trailers (gRPC's `grpc-status`) reach HTTP/2 clients. A target that only offers HTTP/1.1
 * by ALPN is still reached (undici falls back), and its unsolicited `100 Continue` is skipped
 * (src/proxy/undici-continue.ts: undici alone would fail the request).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import {
  constants,
  createSecureServer,
  type Http2SecureServer,
  connect as http2Connect,
  type IncomingHttpHeaders,
} from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { fetchRaw } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { certDir, makeCa, makeCert } from '../helpers/tls-certs.ts';

/** One POST over HTTP/1.1 with `body` (chunked when `chunked`); resolves with status and text. */
function post(port: number, path: string, body: Buffer, chunked = false): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        headers: chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(body.length) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
        });
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      },
    );
    // A refused upload may meet a closed connection after the answer was read: the answer decides.
    let answered = false;
    req.on('response', () => {
      answered = true;
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    // Several writes, so a chunked upload is several chunks.
    for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.subarray(i, i + 64 * 1024));
    req.end();
  });
}

describe('upstream over HTTP/2 (http2: true)', () => {
  const dir = certDir();
  const upstreamCa = makeCa(dir, 'h2-upstream-ca');
  const upstreamCert = makeCert(dir, ['DNS:h2.backend.test', 'IP:127.0.0.1'], { ca: upstreamCa, file: 'h2-backend' });
  const edge = makeCert(dir, ['DNS:edge.test']);
  let backend: Http2SecureServer;
  /** HTTP/1.1 only (ALPN), answering every request with an unsolicited 100 Continue before its 200. */
  let h1Only: TlsServer;
  let p: PorticoProcess;
  /** What the backend saw of an upload its client abandoned: bytes, and whether the stream was reset. */
  let abandoned: Promise<{ bytes: number; aborted: boolean; rstCode: number }>;
  let markAbandoned: (seen: { bytes: number; aborted: boolean; rstCode: number }) => void;

  before(async () => {
    abandoned = new Promise((resolve) => {
      markAbandoned = resolve;
    });
    backend = createSecureServer(
      { cert: readFileSync(upstreamCert.cert), key: readFileSync(upstreamCert.key), allowHTTP1: false },
      (req, res) => {
        if (req.url === '/trailers') {
          res.writeHead(200, { 'content-type': 'application/grpc' });
          res.addTrailers({ 'grpc-status': '0', 'grpc-message': 'done' });
          res.end('payload');
          return;
        }
        if (req.url === '/abandoned') {
          let bytes = 0;
          let aborted = false;
          req.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
          });
          // Node's compat request also emits 'end' after a reset: 'aborted' and the RST code tell them apart.
          req.on('aborted', () => {
            aborted = true;
          });
          req.on('close', () => markAbandoned({ bytes, aborted, rstCode: req.stream.rstCode ?? 0 }));
          return;
        }
        const hash = createHash('sha256');
        let bytes = 0;
        req.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          hash.update(chunk);
        });
        req.on('end', () => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              version: req.httpVersion,
              method: req.method,
              path: req.url,
              bytes,
              sha256: hash.digest('hex'),
            }),
          );
        });
      },
    );
    backend.listen(0, '127.0.0.1');
    await once(backend, 'listening');
    const port = (backend.address() as AddressInfo).port;
    h1Only = createTlsServer(
      { cert: readFileSync(upstreamCert.cert), key: readFileSync(upstreamCert.key), ALPNProtocols: ['http/1.1'] },
      (socket: Socket) => {
        let head = '';
        socket.on('error', () => {});
        socket.on('data', (chunk: Buffer) => {
          head += chunk.toString('latin1');
          if (!head.includes('\r\n\r\n')) return;
          head = '';
          socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\nh1 only');
        });
      },
    );
    h1Only.listen(0, '127.0.0.1');
    await once(h1Only, 'listening');
    p = await startPortico(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:0 }
  - name: secure
    protocol: https
    address: 127.0.0.1:0
    tls: { certificates: [ { cert: ${edge.cert}, key: ${edge.key} } ] }
upstreams:
  - name: h2
    http2: true
    tls: { ca: ${upstreamCa.cert}, serverName: h2.backend.test }
    targets: [ { url: https://127.0.0.1:${port} } ]
  - name: h1only
    http2: true
    tls: { ca: ${upstreamCa.cert}, serverName: h2.backend.test }
    targets: [ { url: https://127.0.0.1:${(h1Only.address() as AddressInfo).port} } ]
routes:
  - { name: h1only, match: { path: /h1only/* }, upstream: h1only }
  - { name: small, match: { path: /small/* }, limits: { maxBodySize: 64KiB }, upstream: h2 }
  - { name: all, match: { path: /* }, upstream: h2 }
`);
  });

  after(async () => {
    await p?.stop();
    backend?.close();
    h1Only?.close();
  });

  it('a target that offers only HTTP/1.1 is reached over it, its unsolicited 100 Continue skipped', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await fetchRaw(`http://127.0.0.1:${p.port('web')}/h1only/x`);
      assert.equal(res.status, 200);
      assert.equal(res.body, 'h1 only');
    }
  });

  it('a request from an HTTP/1.1 client reaches the upstream over HTTP/2', async () => {
    const res = await fetchRaw(`http://127.0.0.1:${p.port('web')}/hello?x=1`);
    assert.equal(res.status, 200);
    const seen = JSON.parse(res.body) as { version: string; method: string; path: string };
    assert.equal(seen.version, '2.0');
    assert.equal(seen.method, 'GET');
    assert.equal(seen.path, '/hello?x=1');
  });

  it('streams a 3 MiB upload to the upstream whole, with Content-Length and chunked', async () => {
    const body = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff;
    const sha256 = createHash('sha256').update(body).digest('hex');
    for (const chunked of [false, true]) {
      const res = await post(p.port('web'), '/upload', body, chunked);
      assert.equal(res.status, 200, res.body);
      const seen = JSON.parse(res.body) as { version: string; bytes: number; sha256: string };
      assert.equal(seen.version, '2.0');
      assert.equal(seen.bytes, body.length);
      assert.equal(seen.sha256, sha256);
    }
  });

  it("a chunked upload over the route's limit is refused with 413", async () => {
    const res = await post(p.port('web'), '/small/upload', Buffer.alloc(256 * 1024, 'x'), true);
    assert.equal(res.status, 413);
    assert.match(res.body, /GW_BODY_TOO_LARGE/);
    // The cut-short stream is reset, not closed with its bytes queued (which made Node spin for good).
    const next = await fetchRaw(`http://127.0.0.1:${p.port('web')}/after-413`);
    assert.equal(next.status, 200);
  });

  it('an upload whose client goes away is reset upstream (CANCEL), never ended as if complete', async () => {
    const req = request({
      host: '127.0.0.1',
      port: p.port('web'),
      path: '/abandoned',
      method: 'POST',
      headers: { 'content-length': String(4 * 1024 * 1024) },
    });
    req.on('error', () => {});
    for (let i = 0; i < 8; i++) req.write(Buffer.alloc(64 * 1024, 'z'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    req.destroy();
    const seen = await abandoned;
    assert.equal(seen.aborted, true, `backend saw a complete body of ${seen.bytes} bytes`);
    assert.equal(seen.rstCode, constants.NGHTTP2_CANCEL);
    assert.ok(seen.bytes < 4 * 1024 * 1024);
    const next = await fetchRaw(`http://127.0.0.1:${p.port('web')}/after-abandon`);
    assert.equal(next.status, 200);
  });

  it("passes the upstream's trailers on to an HTTP/2 client", async () => {
    const session = http2Connect(`https://127.0.0.1:${p.port('secure')}`, { rejectUnauthorized: false });
    try {
      const stream = session.request({ ':path': '/trailers' }, { endStream: true });
      const trailers = new Promise<IncomingHttpHeaders>((resolve) => stream.once('trailers', resolve));
      const [headers] = (await once(stream, 'response')) as [IncomingHttpHeaders];
      let text = '';
      stream.setEncoding('utf8');
      stream.on('data', (c: string) => {
        text += c;
      });
      await once(stream, 'end');
      assert.equal(headers[':status'], 200);
      assert.equal(text, 'payload');
      const t = await trailers;
      assert.equal(t['grpc-status'], '0');
      assert.equal(t['grpc-message'], 'done');
    } finally {
      session.close();
    }
  });
});
