/**
 * Conformance, second audit: WebSocket proxying against RFC 6455, RFC 9110 §7.8 and RFC 9112 §9.3 with hostile
 * clients and broken backends, where the first audit (conformance-websocket.test.ts) does not reach: bodies on
 * the handshake, pipelined upgrades, HTTPS redirects, subprotocols and extensions the client never offered,
 * retries and sticky sessions, HTTP/2 backends, interim answers, many tunnels at once, a client that never
 * reads, reloads and draining. The tunnel gauge must come back to 0 after every test.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket, WebSocketServer } from 'ws';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { freePort } from '../helpers/ports.ts';
import { certDir, makeCert } from '../helpers/tls-certs.ts';
import { acceptFor, clientFrame, eventually, KEY, opened, raw, upgradeRequest } from '../helpers/websocket-raw.ts';

function openWs(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): WebSocket {
  const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
  ws.on('error', () => {});
  return ws;
}

/** Opens `ws` and returns the 101 it got. */
async function upgraded(ws: WebSocket): Promise<IncomingMessage> {
  let response: IncomingMessage | undefined;
  ws.once('upgrade', (res: IncomingMessage) => {
    response = res;
  });
  await opened(ws);
  return response!;
}

async function roundTrip(ws: WebSocket, text: string): Promise<string> {
  const reply = once(ws, 'message');
  ws.send(text);
  return String(((await reply) as [Buffer])[0]);
}

/** A backend that names itself in its 101 (`x-backend`) and echoes; some paths misbehave on purpose. */
function wsBackend(name: string, log: string[]): { server: Server; wss: WebSocketServer } {
  const server = createServer((req, res) => {
    log.push(`${name} plain ${req.url}`);
    if (req.url === '/plain-101') {
      // A 101 to a request that asked for no upgrade.
      req.socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      return;
    }
    setTimeout(() => res.end(`plain ${req.url}`), req.url === '/slow' ? 200 : 0);
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  wss.on('headers', (headers) => headers.push(`x-backend: ${name}`));
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    log.push(`${name} upgrade ${req.url}`);
    socket.on('error', () => {});
    const accept = acceptFor(String(req.headers['sec-websocket-key']));
    const switching = (extra: string): string =>
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${extra}\r\n`;
    switch (req.url) {
      case '/protocol-not-offered':
        socket.write(switching('Sec-WebSocket-Protocol: evil\r\n'));
        return;
      case '/extension-not-offered':
        socket.write(switching('Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n'));
        return;
      case '/two-protocols':
        socket.write(switching('Sec-WebSocket-Protocol: chat, superchat\r\n'));
        return;
      case '/interim':
        socket.write(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n${switching('')}`);
        return;
      case '/close-after-101':
        socket.end(switching(''));
        return;
      case '/reset':
        socket.destroy();
        return;
      default:
        wss.handleUpgrade(req, socket, head, (ws) => {
          ws.on('message', (data, binary) => {
            if (!binary && data.toString() === 'vanish') ws.terminate();
            else ws.send(data, { binary });
          });
          if (req.url === '/flood') flood(ws);
        });
    }
  });
  return { server, wss };
}

/** Sends 1 MiB messages while the socket keeps up, up to 64 MiB queued in the backend. */
function flood(ws: WebSocket): void {
  const chunk = Buffer.alloc(1 << 20, 1);
  let sent = 0;
  const tick = (): void => {
    if (ws.readyState !== WebSocket.OPEN || sent >= 200) return;
    if (ws.bufferedAmount < 64 << 20) {
      ws.send(chunk);
      sent++;
    }
    setTimeout(tick, 2);
  };
  tick();
}

async function listen(server: Server | Http2SecureServer): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

describe('conformance: WebSockets, second audit (RFC 6455, RFC 9110 §7.8)', () => {
  const log: string[] = [];
  const a = wsBackend('a', log);
  const b = wsBackend('b', log);
  let h2: Http2SecureServer;
  let p: PorticoProcess;
  let metricsUrl: string;
  let adminUrl: string;

  const reached = (path: string): boolean => log.some((l) => l.endsWith(` ${path}`));

  async function openTunnels(): Promise<number> {
    const text = await (await fetch(metricsUrl)).text();
    const line = text.split('\n').find((l) => l.startsWith('portico_websocket_connections '));
    return Number(line?.split(' ')[1]);
  }

  async function noTunnelLeft(): Promise<void> {
    await eventually(async () => (await openTunnels()) === 0, 'the open tunnel gauge back to 0');
  }

  before(async () => {
    const certs = certDir();
    const cert = makeCert(certs, ['DNS:localhost', 'IP:127.0.0.1']);
    // An HTTP/2 backend (h2 by ALPN) without RFC 8441 extended CONNECT.
    h2 = createSecureServer({ allowHTTP1: true, cert: readFileSync(cert.cert), key: readFileSync(cert.key) }, (_q, r) =>
      r.end('h2 answer'),
    );
    const [portA, portB, portH2, down] = await Promise.all([
      listen(a.server),
      listen(b.server),
      listen(h2),
      freePort(),
    ]);
    p = await startPortico(`
admin: { address: 127.0.0.1:0 }
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:0 }
  - { name: redirect, protocol: http, address: 127.0.0.1:0, redirectToHttps: { port: 8443 } }
upstreams:
  - { name: a, targets: [ { url: "http://127.0.0.1:${portA}" } ], timeouts: { response: 1s } }
  - name: flaky
    balance: round-robin
    targets: [ { url: "http://127.0.0.1:${down}" }, { url: "http://127.0.0.1:${portA}" } ]
  - name: sticky
    sticky: { cookie: ws_pin }
    targets: [ { url: "http://127.0.0.1:${portA}" }, { url: "http://127.0.0.1:${portB}" } ]
  - name: h2
    http2: true
    targets: [ { url: "https://127.0.0.1:${portH2}" } ]
    tls: { ca: ${cert.cert}, serverName: localhost }
routes:
  - { name: flaky, match: { path: /flaky }, upstream: flaky }
  - { name: sticky, match: { path: /sticky }, upstream: sticky }
  - { name: h2, match: { path: /h2 }, upstream: h2 }
  - { name: all, match: { path: /* }, upstream: a }
`);
    adminUrl = `http://${(p.lines.find((l) => l.msg === 'started') as { admin: string }).admin}`;
    metricsUrl = `${adminUrl}/metrics`;
  });

  after(async () => {
    await p?.stop();
    for (const side of [a, b]) {
      for (const c of side.wss.clients) c.terminate();
      side.wss.close();
      side.server.closeAllConnections();
      side.server.close();
    }
    h2?.close();
  });

  const url = (path: string): string => `ws://127.0.0.1:${p.port('web')}${path}`;

  describe('the client handshake', () => {
    for (const [name, framing] of [
      ['Content-Length: 5', 'content-length: 5\r\n\r\nXXXXX'],
      ['Transfer-Encoding: chunked', 'transfer-encoding: chunked\r\n\r\n5\r\nXXXXX\r\n0\r\n\r\n'],
    ] as const) {
      it(`refuses an upgrade with a body (${name}) with 400: the body would reach the backend as frames`, async () => {
        const path = `/body-${name.split(':')[0]!.toLowerCase()}`;
        const request = upgradeRequest(path).replace(/\r\n\r\n$/, `\r\n${framing}`);
        const c = await raw(p.port('web'), Buffer.concat([Buffer.from(request), clientFrame(0x1, 'after')]));
        await c.until(() => c.gone, 'the connection to close');
        assert.deepEqual(c.statuses(), [400]);
        assert.equal((JSON.parse(c.body()) as { code: string }).code, 'GW_WEBSOCKET_BAD_HANDSHAKE');
        assert.equal(reached(path), false, 'the backend never saw it');
      });
    }

    it('accepts Content-Length: 0 on an upgrade (no body)', async () => {
      const c = await raw(p.port('web'), upgradeRequest('/empty-body', { 'content-length': '0' }));
      await c.until(() => c.statuses().length > 0, 'an answer');
      assert.deepEqual(c.statuses(), [101]);
      c.destroy();
      await noTunnelLeft();
    });

    it('answers a request pipelined before an upgrade first, then the 101 (RFC 9112 §9.3)', async () => {
      const c = await raw(p.port('web'), `GET /slow HTTP/1.1\r\nhost: ws.test\r\n\r\n${upgradeRequest('/after-slow')}`);
      await c.until(() => c.statuses().length === 2, 'two answers');
      assert.deepEqual(c.statuses(), [200, 101]);
      assert.ok(c.text().indexOf('plain /slow') < c.text().indexOf('HTTP/1.1 101'), 'the 200 body before the 101');
      // The tunnel carries frames only: an echo comes back right after the 101.
      const before = c.data.length;
      c.socket.write(clientFrame(0x1, 'ping-through'));
      await c.until(() => c.data.length > before, 'the echo');
      assert.equal(c.data.subarray(before).subarray(2).toString(), 'ping-through');
      c.destroy();
      await noTunnelLeft();
    });

    it('redirects an upgrade on a redirectToHttps listener instead of tunnelling it in clear text', async () => {
      const c = await raw(p.port('redirect'), upgradeRequest('/chat?room=1'));
      await c.until(() => c.gone, 'the connection to close');
      assert.deepEqual(c.statuses(), [308]);
      assert.equal(c.header('location'), 'https://ws.test:8443/chat?room=1');
      assert.equal(reached('/chat?room=1'), false);
    });
  });

  describe("the backend's 101 checked as a client would (§4.1)", () => {
    for (const [path, why] of [
      ['/protocol-not-offered', 'a subprotocol the client did not offer'],
      ['/two-protocols', 'two subprotocols'],
      ['/extension-not-offered', 'an extension the client did not offer'],
    ] as const) {
      it(`answers 502 to a 101 with ${why}`, async () => {
        // A ws client offers nothing here: any subprotocol or extension in the 101 is one it did not offer.
        const ws = openWs(url(path));
        const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
        let body = '';
        for await (const chunk of res) body += chunk;
        ws.terminate();
        assert.equal(res.statusCode, 502);
        assert.equal((JSON.parse(body) as { code: string }).code, 'GW_UPSTREAM_BAD_RESPONSE');
        await noTunnelLeft();
      });
    }

    it('answers 502 to a subprotocol outside the offer, also when the client offered others', async () => {
      const c = await raw(p.port('web'), upgradeRequest('/protocol-not-offered', { 'sec-websocket-protocol': 'chat' }));
      await c.until(() => c.gone, 'the connection to close');
      assert.deepEqual(c.statuses(), [502]);
      assert.match(c.body(), /GW_UPSTREAM_BAD_RESPONSE/);
      const ok = await raw(
        p.port('web'),
        upgradeRequest('/two-protocols', { 'sec-websocket-protocol': 'chat, superchat' }),
      );
      await ok.until(() => ok.gone, 'the connection to close');
      assert.deepEqual(ok.statuses(), [502], 'one subprotocol at most, even among offered ones');
    });

    it('drops interim answers (100, 103) before the 101 and opens the tunnel', async () => {
      const c = await raw(p.port('web'), upgradeRequest('/interim'));
      await c.until(() => c.statuses().length > 0, 'an answer');
      assert.deepEqual(c.statuses(), [101]);
      assert.equal(c.header('sec-websocket-accept'), acceptFor(KEY));
      c.destroy();
      await noTunnelLeft();
    });

    it('passes a 101 followed at once by the backend closing, then closes the client', async () => {
      const c = await raw(p.port('web'), upgradeRequest('/close-after-101'));
      await c.until(() => c.gone, 'the connection to close');
      assert.deepEqual(c.statuses(), [101]);
      await noTunnelLeft();
    });

    it('answers 502 when the backend resets the handshake', async () => {
      const c = await raw(p.port('web'), upgradeRequest('/reset'));
      await c.until(() => c.gone, 'the connection to close');
      assert.deepEqual(c.statuses(), [502]);
      assert.doesNotMatch(c.body(), /127\.0\.0\.1/);
    });

    it('answers 502 to a 101 sent for a plain request (no upgrade asked)', async () => {
      const res = await fetch(`http://127.0.0.1:${p.port('web')}/plain-101`);
      assert.equal(res.status, 502);
      await res.body?.cancel();
    });
  });

  describe('targets', () => {
    it('retries an upgrade whose target refuses the connection on another target', async () => {
      for (let i = 0; i < 4; i++) {
        const ws = await opened(openWs(url('/flaky')));
        assert.equal(await roundTrip(ws, `try ${i}`), `try ${i}`);
        ws.close();
        await once(ws, 'close');
      }
      await noTunnelLeft();
    });

    it('keeps sticky sessions: the 101 sets the cookie, and the cookie pins later upgrades', async () => {
      const first = openWs(url('/sticky'));
      const res = await upgraded(first);
      const setCookie = res.headers['set-cookie']?.[0];
      assert.ok(setCookie?.startsWith('ws_pin='), `a sticky cookie on the 101: ${setCookie}`);
      const backend = res.headers['x-backend'];
      first.close();
      for (let i = 0; i < 4; i++) {
        const ws = openWs(url('/sticky'), { headers: { cookie: setCookie!.split(';')[0]! } });
        const r = await upgraded(ws);
        assert.equal(r.headers['x-backend'], backend, 'the pinned target');
        assert.equal(r.headers['set-cookie'], undefined, 'a valid pin is not set again');
        ws.close();
        await once(ws, 'close');
      }
      await noTunnelLeft();
    });

    it('answers 502 when an http2 target has no extended CONNECT, without counting it as a reset', async () => {
      const c = await raw(p.port('web'), upgradeRequest('/h2'));
      await c.until(() => c.gone, 'the connection to close');
      assert.deepEqual(c.statuses(), [502]);
      assert.equal((JSON.parse(c.body()) as { code: string }).code, 'GW_UPSTREAM_BAD_RESPONSE');
      const line = await p.waitFor((l) => l.msg === 'websocket' && l.route === 'h2');
      assert.equal(line.details, 'websocket_h2_without_extended_connect');
      const plain = await fetch(`http://127.0.0.1:${p.port('web')}/h2`);
      assert.equal(await plain.text(), 'h2 answer', 'the target still serves requests');
    });
  });

  describe('tunnels', () => {
    it('opens, uses and closes 200 WebSockets at once; the gauge follows', async () => {
      const all = await Promise.all(Array.from({ length: 200 }, () => opened(openWs(url('/many')))));
      assert.equal(await openTunnels(), 200);
      const replies = await Promise.all(all.map((ws, i) => roundTrip(ws, `m${i}`)));
      assert.deepEqual(
        replies,
        all.map((_, i) => `m${i}`),
      );
      for (const ws of all) ws.close();
      await Promise.all(all.map((ws) => once(ws, 'close')));
      await noTunnelLeft();
    });

    it('does not absorb a backend flood for a client that never reads (backpressure to the backend)', async () => {
      const ws = await opened(openWs(url('/flood')));
      (ws as unknown as { _socket: Socket })._socket.pause();
      const server = [...a.wss.clients].at(-1)!;
      // Wait until the backend's queue stops shrinking: what it still holds is what nobody took.
      await eventually(() => server.bufferedAmount > 16 << 20, 'the backend to hold what the client does not read');
      ws.terminate();
      await eventually(() => server.readyState === WebSocket.CLOSED, 'the backend side to be closed');
      await noTunnelLeft();
    });

    it('closes the backend when the client vanishes in the middle of a frame', async () => {
      const c = await raw(p.port('web'), upgradeRequest('/mid-frame'));
      await c.until(() => c.statuses().length > 0, 'the 101');
      await eventually(() => a.wss.clients.size > 0, 'the backend side');
      const server = [...a.wss.clients].at(-1)!;
      const closed = once(server, 'close');
      // A 100-byte frame header and 10 of its bytes, then the client is gone.
      c.socket.write(Buffer.concat([Buffer.from([0x81, 0x80 | 100]), randomBytes(4), Buffer.alloc(10)]));
      await sleep(20);
      c.destroy();
      assert.equal(((await closed) as [number])[0], 1006);
      await noTunnelLeft();
    });

    it('keeps open tunnels across an admin reload', async () => {
      const ws = await opened(openWs(url('/reload')));
      const res = await fetch(`${adminUrl}/reload`, { method: 'POST' });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      assert.equal(await roundTrip(ws, 'after reload'), 'after reload');
      ws.close();
      await once(ws, 'close');
      await noTunnelLeft();
    });
  });

  it('on SIGTERM keeps tunnels working until the drain deadline, then cuts them and exits', async () => {
    const drained = await startPortico(`
proxy: { drainTimeout: 800ms }
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: a, targets: [ { url: "http://127.0.0.1:${(a.server.address() as AddressInfo).port}" } ] } ]
routes: [ { name: all, match: { path: /* }, upstream: a } ]
`);
    try {
      const ws = await opened(openWs(`ws://127.0.0.1:${drained.port('web')}/drain`));
      const closed = once(ws, 'close');
      drained.child.kill('SIGTERM');
      await drained.waitFor((l) => l.msg === 'shutting down', 5000);
      assert.equal(await roundTrip(ws, 'still open'), 'still open');
      assert.equal(((await closed) as [number])[0], 1006, 'cut at the deadline');
      assert.equal(await drained.exited(), 0);
    } finally {
      await drained.stop('SIGKILL');
    }
  });
});
