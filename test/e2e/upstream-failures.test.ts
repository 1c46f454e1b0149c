/**
 * End to end: every way an upstream can fail maps to the right local reply (or an aborted client connection
 * once the response started), and a client that goes away aborts the upstream request.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Server as TcpServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { blackhole } from '../helpers/blackhole.ts';
import { startUpstream, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { freePort } from '../helpers/ports.ts';

describe('upstream failures', () => {
  let flaky: TestServer;
  let resetBeforeHeaders: TcpServer;
  let garbage: TcpServer;
  let hole: { port: number; close(): void };
  let refusedPort: number;
  let p: PorticoProcess;
  let upstreamAborted: Promise<void>;
  let markAborted: () => void;
  /** What the upstream saw of an upload whose client went away: bytes received and whether it ended. */
  let uploadSeen: Promise<{ bytes: number; complete: boolean }>;
  let markUploadSeen: (seen: { bytes: number; complete: boolean }) => void;

  before(async () => {
    upstreamAborted = new Promise((resolve) => {
      markAborted = resolve;
    });
    uploadSeen = new Promise((resolve) => {
      markUploadSeen = resolve;
    });
    flaky = await startUpstream((req, res) => {
      if (req.url === '/slow') {
        setTimeout(() => res.end('late'), 5000).unref();
        return;
      }
      if (req.url === '/reset-mid-body') {
        res.writeHead(200, { 'content-length': '100000' });
        res.write(Buffer.alloc(1000, 'x'));
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      if (req.url === '/chunked-reset') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      if (req.url === '/hang-for-client') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('started');
        res.on('close', () => markAborted());
        return;
      }
      if (req.url === '/upload') {
        let bytes = 0;
        req.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
        });
        req.on('close', () => markUploadSeen({ bytes, complete: req.complete }));
        return;
      }
      if (req.url === '/stall-body') {
        res.writeHead(200, { 'content-length': '10' });
        res.write('12345');
        return;
      }
      res.end('ok');
    });
    resetBeforeHeaders = createTcpServer((s) => {
      s.once('data', () => s.resetAndDestroy());
    });
    resetBeforeHeaders.listen(0, '127.0.0.1');
    await once(resetBeforeHeaders, 'listening');
    garbage = createTcpServer((s) => {
      s.once('data', () => s.end('THIS IS NOT HTTP\r\n\r\n'));
    });
    garbage.listen(0, '127.0.0.1');
    await once(garbage, 'listening');
    hole = await blackhole();
    refusedPort = await freePort();
    const port = (s: TcpServer) => (s.address() as AddressInfo).port;
    p = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams:
  - { name: flaky, targets: [ { url: ${flaky.url} } ], timeouts: { response: 500ms, idle: 500ms } }
  - { name: refused, targets: [ { url: "http://127.0.0.1:${refusedPort}" } ] }
  - { name: reset, targets: [ { url: "http://127.0.0.1:${port(resetBeforeHeaders)}" } ] }
  - { name: garbage, targets: [ { url: "http://127.0.0.1:${port(garbage)}" } ] }
  - { name: hole, targets: [ { url: "http://127.0.0.1:${hole.port}" } ], timeouts: { connect: 300ms } }
routes:
  - { name: refused, match: { path: /refused }, upstream: refused }
  - { name: reset, match: { path: /reset }, upstream: reset }
  - { name: garbage, match: { path: /garbage }, upstream: garbage }
  - { name: hole, match: { path: /hole }, upstream: hole }
  - { name: flaky, match: { path: /* }, upstream: flaky }
`);
  });

  after(async () => {
    await p?.stop();
    hole?.close();
    resetBeforeHeaders?.close();
    garbage?.close();
    await flaky?.close();
  });

  async function problem(path: string): Promise<{ status: number; body: Record<string, unknown>; text: string }> {
    const res = await fetch(`${p.url()}${path}`);
    const text = await res.text();
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown>, text };
  }

  it('connection refused → 502 GW_UPSTREAM_CONNECT_FAILED, no address leaked', async () => {
    const r = await problem('/refused');
    assert.equal(r.status, 502);
    assert.equal(r.body.code, 'GW_UPSTREAM_CONNECT_FAILED');
    assert.doesNotMatch(r.text, /127\.0\.0\.1|ECONNREFUSED|at /);
  });

  it('reset before headers → 502 GW_UPSTREAM_RESET', async () => {
    const r = await problem('/reset');
    assert.equal(r.status, 502);
    assert.equal(r.body.code, 'GW_UPSTREAM_RESET');
  });

  it('an invalid response → 502 GW_UPSTREAM_BAD_RESPONSE', async () => {
    const r = await problem('/garbage');
    assert.equal(r.status, 502);
    assert.equal(r.body.code, 'GW_UPSTREAM_BAD_RESPONSE');
  });

  it('connect timeout → 504 GW_UPSTREAM_CONNECT_TIMEOUT', async () => {
    const r = await problem('/hole');
    assert.equal(r.status, 504);
    assert.equal(r.body.code, 'GW_UPSTREAM_CONNECT_TIMEOUT');
  });

  it('response-header timeout → 504 GW_UPSTREAM_TIMEOUT', async () => {
    const r = await problem('/slow');
    assert.equal(r.status, 504);
    assert.equal(r.body.code, 'GW_UPSTREAM_TIMEOUT');
  });

  it('a reset after the response started aborts the client connection (fixed length)', async () => {
    await assert.rejects(async () => {
      const res = await fetch(`${p.url()}/reset-mid-body`);
      await res.arrayBuffer();
    });
  });

  it('a reset after the response started aborts the client connection (chunked)', async () => {
    await assert.rejects(async () => {
      const res = await fetch(`${p.url()}/chunked-reset`);
      await res.arrayBuffer();
    });
  });

  it('an upstream that stalls mid-body is cut after the idle timeout', async () => {
    await assert.rejects(async () => {
      const res = await fetch(`${p.url()}/stall-body`);
      await res.arrayBuffer();
    });
  });

  it('a client that goes away aborts the upstream request', async () => {
    const req = request(`${p.url()}/hang-for-client`);
    req.end();
    const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
    await once(res, 'data');
    req.destroy();
    await upstreamAborted;
    const line = await p.waitFor((l) => l.msg === 'request' && l.path === '/hang-for-client');
    assert.equal(line.aborted, true);
    assert.equal(line.status, 200, 'left mid-response: the status it was being sent');
  });

  it('a client that goes away mid-upload aborts the upstream request: the upstream never sees a complete body', async () => {
    const req = request(`${p.url()}/upload`, { method: 'POST', headers: { 'content-length': String(1024 * 1024) } });
    req.on('error', () => {});
    req.write(Buffer.alloc(64 * 1024, 'a'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    req.destroy();
    const seen = await uploadSeen;
    assert.equal(seen.complete, false);
    assert.ok(seen.bytes < 1024 * 1024, `upstream got ${seen.bytes} bytes`);
    const line = await p.waitFor((l) => l.msg === 'request' && l.path === '/upload');
    assert.equal(line.aborted, true);
    assert.equal(line.status, 499, 'left before any response: "client closed request"');
  });

  it('logs the failure details for operators, not for clients', async () => {
    await fetch(`${p.url()}/refused`).then((r) => r.text());
    const line = await p.waitFor((l) => l.msg === 'request' && l.code === 'GW_UPSTREAM_CONNECT_FAILED');
    assert.match(String(line.details), /connect_failed/);
  });
});
