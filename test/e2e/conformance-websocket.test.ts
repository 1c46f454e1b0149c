/**
 * Conformance: WebSocket proxying against RFC 6455 (§4 opening handshake, §5 framing, §7 closing), RFC 9110
 * §7.8 (Upgrade), RFC 9112 §9.6 (tear-down) and RFC 8441 (not offered), with real `ws` clients and servers and
 * raw sockets as hostile clients and backends. One portico process; the tunnel gauge on the admin API must
 * come back to 0 after every test.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket, WebSocketServer } from 'ws';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { freePort } from '../helpers/ports.ts';
import {
  ACCEPT,
  acceptFor,
  clientFrame,
  eventually,
  KEY,
  opened,
  raw,
  upgradeRequest,
} from '../helpers/websocket-raw.ts';

/** An unmasked server frame with a short payload. */
function serverFrame(opcode: number, payload: string): Buffer {
  const data = Buffer.from(payload);
  return Buffer.concat([Buffer.from([0x80 | opcode, data.length]), data]);
}

/** Server frames (unmasked, payloads under 126 bytes) in `buf`. */
function parseFrames(buf: Buffer): Array<{ opcode: number; payload: Buffer }> {
  const out: Array<{ opcode: number; payload: Buffer }> = [];
  let at = 0;
  while (at + 2 <= buf.length) {
    const len = buf[at + 1]! & 0x7f;
    if (len >= 126 || at + 2 + len > buf.length) break;
    out.push({ opcode: buf[at]! & 0x0f, payload: buf.subarray(at + 2, at + 2 + len) });
    at += 2 + len;
  }
  return out;
}

function openWs(url: string, protocols?: string | string[], options: ConstructorParameters<typeof WebSocket>[2] = {}) {
  const ws = new WebSocket(url, protocols, options);
  ws.on('error', () => {});
  return ws;
}

/** The answer to a refused handshake as a `ws` client sees it. */
async function refused(ws: WebSocket): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
  let body = '';
  res.setEncoding('utf8');
  for await (const chunk of res) body += chunk;
  ws.terminate();
  return { status: res.statusCode!, headers: res.headers, body };
}

describe('conformance: WebSockets (RFC 6455)', () => {
  let backend: Server;
  let wss: WebSocketServer;
  let p: PorticoProcess;
  let port: number;
  let metricsUrl: string;
  /** Upgrade requests the backend received. */
  const upgrades: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
  /** Plain (not upgrade) requests the backend received. */
  const plain: Array<{ url: string; httpVersion: string; headers: IncomingHttpHeaders }> = [];
  /** Server side of the latest `ws` connection per path. */
  const serverSide = new Map<string, WebSocket>();
  /** Raw backend sockets that saw the client's FIN. */
  const backendSawEnd: string[] = [];
  /** Raw backend sockets still open (for the half-open backend). */
  const rawBackendSockets = new Set<Duplex>();

  const seenReached = (): number => upgrades.length + plain.length;

  async function openTunnels(): Promise<number> {
    const text = await (await fetch(metricsUrl)).text();
    const line = text.split('\n').find((l) => l.startsWith('portico_websocket_connections '));
    return Number(line?.split(' ')[1]);
  }

  async function noTunnelLeft(): Promise<void> {
    await eventually(async () => (await openTunnels()) === 0, 'the open tunnel gauge back to 0');
  }

  function rawSwitch(socket: Duplex, req: IncomingMessage, extra = '', accept?: string): void {
    const value = accept ?? acceptFor(String(req.headers['sec-websocket-key']));
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${value}\r\n${extra}\r\n`,
    );
  }

  before(async () => {
    backend = createServer((req, res) => {
      plain.push({ url: req.url!, httpVersion: req.httpVersion, headers: req.headers });
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('plain answer');
    });
    wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: true,
      handleProtocols: (offered) => (offered.has('chat') ? 'chat' : false),
    });
    backend.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      upgrades.push({ url: req.url!, headers: req.headers });
      socket.on('error', () => {});
      const path = req.url!.split('?')[0]!;
      switch (path) {
        case '/refuse-403':
          socket.end('HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 11\r\n\r\nnot for you');
          return;
        case '/refuse-200':
          // A keep-alive answer: the backend leaves its connection open.
          socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 12\r\n\r\nno websocket');
          return;
        case '/refuse-chunked':
          socket.end(
            'HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n5\r\nnot h\r\n4\r\nere!\r\n0\r\n\r\n',
          );
          return;
        case '/bad-accept':
          rawSwitch(socket, req, '', 'bm90IHRoZSByaWdodCBhY2NlcHQ=');
          return;
        case '/no-accept':
          socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
          return;
        case '/wrong-protocol':
          socket.write(
            `HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(String(req.headers['sec-websocket-key']))}\r\n\r\n`,
          );
          return;
        case '/eager':
          // The 101 and a first frame in one write (one TCP segment on loopback).
          socket.write(
            Buffer.concat([
              Buffer.from(
                `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(String(req.headers['sec-websocket-key']))}\r\n\r\n`,
              ),
              serverFrame(0x1, 'first'),
            ]),
          );
          return;
        case '/hop-headers':
          rawSwitch(
            socket,
            req,
            'Keep-Alive: timeout=5\r\nConnection: X-Backend-Hop\r\nX-Backend-Hop: 1\r\nX-End-To-End: yes\r\nServer: secret-backend/1.0\r\n',
          );
          return;
        case '/silent':
          return;
        case '/half-open':
          // Never closes by itself, not even after the client's FIN (http.Server sockets allow half-open).
          rawSwitch(socket, req);
          rawBackendSockets.add(socket);
          socket.on('end', () => backendSawEnd.push(path));
          socket.on('close', () => rawBackendSockets.delete(socket));
          socket.resume();
          return;
        default:
          wss.handleUpgrade(req, socket, head, (ws) => {
            serverSide.set(path, ws);
            ws.on('message', (data, binary) => {
              if (!binary && data.toString() === 'close-me') ws.close(4002, 'server bye');
              else if (!binary && data.toString() === 'vanish') ws.terminate();
              else if (path !== '/slow') ws.send(data, { binary });
            });
          });
      }
    });
    backend.listen(0, '127.0.0.1');
    await once(backend, 'listening');
    port = (backend.address() as AddressInfo).port;
    const down = await freePort();
    p = await startPortico(`
admin: { address: 127.0.0.1:0 }
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:0 }
  - { name: h2c, protocol: http, address: 127.0.0.1:0, h2c: true }
upstreams:
  - { name: main, targets: [ { url: "http://127.0.0.1:${port}" } ], timeouts: { response: 500ms } }
  - { name: down, targets: [ { url: "http://127.0.0.1:${down}" } ] }
consumers: [ { name: acme, apiKeys: [ ws-conformance-key-0001 ] } ]
policies:
  key: { type: api-key, header: x-api-key }
  once: { type: rate-limit, limit: 1, per: 1h, key: client-ip }
routes:
  - { name: no-ws, match: { path: /no-ws }, websocket: false, upstream: main }
  - { name: keyed, match: { path: /keyed }, policies: [key], upstream: main }
  - { name: limited, match: { path: /limited }, policies: [once], upstream: main }
  - { name: idle, match: { path: /idle }, websocket: { idleTimeout: 300ms }, upstream: main }
  - { name: down, match: { path: /down }, upstream: down }
  - { name: all, match: { path: /* }, upstream: main }
`);
    metricsUrl = `http://${(p.lines.find((l) => l.msg === 'started') as { admin: string }).admin}/metrics`;
  });

  after(async () => {
    await p?.stop();
    for (const c of wss?.clients ?? []) c.terminate();
    for (const s of rawBackendSockets) s.destroy();
    wss?.close();
    backend?.closeAllConnections();
    backend?.close();
  });

  const url = (path: string): string => `ws://127.0.0.1:${p.port('web')}${path}`;

  describe('opening handshake checked at the edge (§4.2.1, §4.4)', () => {
    it('passes a valid handshake, with the 101 carrying Upgrade, Connection and the backend Accept', async () => {
      const c = await raw(
        p.port('web'),
        upgradeRequest('/echo', { connection: 'keep-alive, Upgrade', upgrade: 'WebSocket' }),
      );
      const h = await c.readHead();
      assert.equal(h.status, 101);
      assert.equal(h.headers.upgrade!.toLowerCase(), 'websocket');
      assert.match(h.headers.connection!, /upgrade/i);
      assert.equal(h.headers['sec-websocket-accept'], ACCEPT);
      assert.ok(h.headers['x-request-id']);
      c.socket.write(clientFrame(0x1, 'over raw'));
      await c.until(() => parseFrames(c.head()!.rest).length > 0, 'the echo frame');
      assert.deepEqual(parseFrames(c.head()!.rest)[0], { opcode: 0x1, payload: Buffer.from('over raw') });
      c.socket.write(clientFrame(0x8, Buffer.from([0x03, 0xe8])));
      await c.until(() => c.closed || c.ended, 'close');
      c.destroy();
      await noTunnelLeft();
    });

    const refusedHandshakes: Array<[string, string, number, string]> = [
      ['a POST', upgradeRequest('/echo', {}, 'POST /echo HTTP/1.1'), 400, 'GW_WEBSOCKET_BAD_HANDSHAKE'],
      ['a PUT', upgradeRequest('/echo', {}, 'PUT /echo HTTP/1.1'), 400, 'GW_WEBSOCKET_BAD_HANDSHAKE'],
      [
        'no Sec-WebSocket-Key',
        upgradeRequest('/echo', { 'sec-websocket-key': undefined }),
        400,
        'GW_WEBSOCKET_BAD_HANDSHAKE',
      ],
      ['a short key', upgradeRequest('/echo', { 'sec-websocket-key': 'c2hvcnQ=' }), 400, 'GW_WEBSOCKET_BAD_HANDSHAKE'],
      [
        'a key that is not base64',
        upgradeRequest('/echo', { 'sec-websocket-key': 'not base64 at all!!!!!==' }),
        400,
        'GW_WEBSOCKET_BAD_HANDSHAKE',
      ],
      [
        'a 20-byte key',
        upgradeRequest('/echo', { 'sec-websocket-key': randomBytes(20).toString('base64') }),
        400,
        'GW_WEBSOCKET_BAD_HANDSHAKE',
      ],
      [
        'two keys',
        upgradeRequest('/echo', { 'sec-websocket-key': `${KEY}, ${KEY}` }),
        400,
        'GW_WEBSOCKET_BAD_HANDSHAKE',
      ],
      [
        'no Sec-WebSocket-Version',
        upgradeRequest('/echo', { 'sec-websocket-version': undefined }),
        426,
        'GW_WEBSOCKET_VERSION_UNSUPPORTED',
      ],
      ['version 8', upgradeRequest('/echo', { 'sec-websocket-version': '8' }), 426, 'GW_WEBSOCKET_VERSION_UNSUPPORTED'],
      [
        'version 14',
        upgradeRequest('/echo', { 'sec-websocket-version': '14' }),
        426,
        'GW_WEBSOCKET_VERSION_UNSUPPORTED',
      ],
      [
        'version "13, 8"',
        upgradeRequest('/echo', { 'sec-websocket-version': '13, 8' }),
        426,
        'GW_WEBSOCKET_VERSION_UNSUPPORTED',
      ],
    ];
    for (const [name, request, status, code] of refusedHandshakes) {
      it(`refuses ${name} with ${status} ${code}, closes, and never reaches the backend`, async () => {
        const before = seenReached();
        const c = await raw(p.port('web'), request);
        const h = await c.readUntilClosed();
        assert.equal(h.status, status);
        assert.equal(h.headers['content-type'], 'application/problem+json');
        assert.match(h.headers.connection!, /close/i);
        const body = JSON.parse(h.rest.toString()) as { code: string; status: number };
        assert.equal(body.code, code);
        assert.equal(body.status, status);
        if (status === 426) {
          // §4.4 / §4.2.2: the versions the server speaks; RFC 9110 §15.5.22: the protocol to upgrade to.
          assert.equal(h.headers['sec-websocket-version'], '13');
          assert.equal(h.headers.upgrade, 'websocket');
          assert.match(h.headers.connection!, /upgrade/i);
        }
        assert.equal(seenReached(), before);
        c.destroy();
      });
    }

    it('a ws client with an unsupported version gets 426 and Sec-WebSocket-Version: 13', async () => {
      const r = await refused(openWs(url('/echo'), undefined, { protocolVersion: 8 }));
      assert.equal(r.status, 426);
      assert.equal(r.headers['sec-websocket-version'], '13');
    });

    it('ignores Upgrade in an HTTP/1.0 request (RFC 9110 §7.8): a plain request, no 101', async () => {
      const c = await raw(p.port('web'), upgradeRequest('/plain-10', {}, 'GET /plain-10 HTTP/1.0'));
      const h = await c.readUntilClosed();
      assert.equal(h.status, 200);
      assert.equal(h.rest.toString(), 'plain answer');
      const seen = plain.at(-1)!;
      assert.equal(seen.url, '/plain-10');
      assert.equal(seen.headers.upgrade, undefined);
      c.destroy();
    });

    it('serves Upgrade without "Connection: upgrade" as a plain request (the option is hop-by-hop)', async () => {
      const c = await raw(p.port('web'), upgradeRequest('/plain-no-conn', { connection: undefined }));
      const h = await c.readHead();
      assert.equal(h.status, 200);
      const seen = plain.at(-1)!;
      assert.equal(seen.url, '/plain-no-conn');
      assert.equal(seen.headers.upgrade, undefined);
      c.destroy();
    });

    it('over HTTP/2 (RFC 8441 not offered): no ENABLE_CONNECT_PROTOCOL, and an extended CONNECT is reset', async () => {
      const c = await raw(p.port('h2c'), 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
      const frame = (type: number, flags: number, stream: number, payload: Buffer): Buffer => {
        const h = Buffer.alloc(9);
        h.writeUIntBE(payload.length, 0, 3);
        h[3] = type;
        h[4] = flags;
        h.writeUInt32BE(stream, 5);
        return Buffer.concat([h, payload]);
      };
      // HPACK literal header fields without indexing, new names, no Huffman coding.
      const field = (name: string, value: string): Buffer =>
        Buffer.concat([
          Buffer.from([0, name.length]),
          Buffer.from(name),
          Buffer.from([value.length]),
          Buffer.from(value),
        ]);
      const block = Buffer.concat([
        field(':method', 'CONNECT'),
        field(':protocol', 'websocket'),
        field(':scheme', 'http'),
        field(':path', '/echo'),
        field(':authority', 'ws.test'),
        field('sec-websocket-version', '13'),
      ]);
      c.socket.write(Buffer.concat([frame(0x4, 0, 0, Buffer.alloc(0)), frame(0x1, 0x4, 1, block)]));
      const frames = (): Array<{ type: number; stream: number; payload: Buffer }> => {
        const out = [];
        let at = 0;
        while (at + 9 <= c.data.length) {
          const len = c.data.readUIntBE(at, 3);
          if (at + 9 + len > c.data.length) break;
          out.push({
            type: c.data[at + 3]!,
            stream: c.data.readUInt32BE(at + 5) & 0x7fffffff,
            payload: c.data.subarray(at + 9, at + 9 + len),
          });
          at += 9 + len;
        }
        return out;
      };
      await c.until(() => frames().some((f) => f.type === 0x3 || f.type === 0x7), 'RST_STREAM or GOAWAY');
      const settings = frames().find((f) => f.type === 0x4 && f.payload.length > 0);
      for (let i = 0; settings !== undefined && i < settings.payload.length; i += 6) {
        const id = settings.payload.readUInt16BE(i);
        if (id === 0x8) assert.equal(settings.payload.readUInt32BE(i + 2), 0, 'ENABLE_CONNECT_PROTOCOL must not be 1');
      }
      const rst = frames().find((f) => f.type === 0x3 && f.stream === 1);
      assert.ok(rst, 'stream 1 reset');
      assert.equal(rst.payload.readUInt32BE(0), 0x1, 'PROTOCOL_ERROR');
      c.destroy();
    });
  });

  describe('routes and policies', () => {
    it('refuses upgrades on a websocket: false route with 403 problem+json, backend untouched', async () => {
      const before = seenReached();
      const c = await raw(p.port('web'), upgradeRequest('/no-ws'));
      const h = await c.readUntilClosed();
      assert.equal(h.status, 403);
      assert.equal((JSON.parse(h.rest.toString()) as { code: string }).code, 'GW_FORBIDDEN');
      assert.equal(seenReached(), before);
      c.destroy();
    });

    it('runs api-key authentication on the upgrade request', async () => {
      const before = seenReached();
      const r = await refused(openWs(url('/keyed')));
      assert.equal(r.status, 401);
      assert.equal((JSON.parse(r.body) as { code: string }).code, 'GW_AUTH_MISSING');
      assert.equal(seenReached(), before);
      const ws = await opened(
        openWs(url('/keyed'), undefined, { headers: { 'x-api-key': 'ws-conformance-key-0001' } }),
      );
      assert.equal(upgrades.at(-1)!.headers['x-consumer'], 'acme');
      assert.equal(upgrades.at(-1)!.headers['x-api-key'], undefined, 'the credential is not forwarded');
      ws.close();
      await once(ws, 'close');
    });

    it('applies rate limits to upgrade requests (429 with Retry-After)', async () => {
      const ws = await opened(openWs(url('/limited')));
      const r = await refused(openWs(url('/limited')));
      assert.equal(r.status, 429);
      assert.ok(r.headers['retry-after']);
      ws.close();
      await once(ws, 'close');
      await noTunnelLeft();
    });

    it('sets forwarding headers and drops hop-by-hop ones, keeping Upgrade and Connection: upgrade', async () => {
      const c = await raw(
        p.port('web'),
        upgradeRequest('/fwd', {
          connection: 'Upgrade, X-Client-Hop',
          'x-client-hop': 'secret',
          'keep-alive': 'timeout=5',
          te: 'trailers',
          'proxy-authorization': 'Basic eDp5',
          'x-forwarded-for': '203.0.113.9',
          origin: 'http://ws.test',
        }),
      );
      assert.equal((await c.readHead()).status, 101);
      const seen = upgrades.at(-1)!;
      assert.equal(seen.url, '/fwd');
      assert.equal(seen.headers.upgrade, 'websocket');
      assert.match(String(seen.headers.connection), /^upgrade$/i);
      for (const hop of ['x-client-hop', 'keep-alive', 'te', 'proxy-authorization']) {
        assert.equal(seen.headers[hop], undefined, `${hop} must not be forwarded`);
      }
      assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'an untrusted client cannot inject X-Forwarded-For');
      assert.equal(seen.headers['x-forwarded-proto'], 'http');
      assert.equal(seen.headers['x-forwarded-host'], 'ws.test');
      assert.match(String(seen.headers.forwarded), /for=127\.0\.0\.1;proto=http/);
      assert.ok(seen.headers['x-request-id']);
      assert.equal(seen.headers['sec-websocket-key'], KEY);
      assert.equal(seen.headers['sec-websocket-version'], '13');
      assert.equal(seen.headers.origin, 'http://ws.test');
      c.destroy();
      await noTunnelLeft();
    });

    it("drops the backend 101's hop-by-hop headers and Server, keeps its end-to-end ones", async () => {
      const c = await raw(p.port('web'), upgradeRequest('/hop-headers'));
      const h = await c.readHead();
      assert.equal(h.status, 101);
      assert.equal(h.headers['x-end-to-end'], 'yes');
      assert.equal(h.headers['x-backend-hop'], undefined);
      assert.equal(h.headers['keep-alive'], undefined);
      assert.notEqual(h.headers.server, 'secret-backend/1.0');
      assert.equal(h.headers.upgrade, 'websocket');
      assert.equal(h.headers.connection, 'upgrade');
      assert.equal(h.headers['sec-websocket-accept'], ACCEPT);
      c.destroy();
      await noTunnelLeft();
    });
  });

  describe('backend answers', () => {
    for (const [path, status, body] of [
      ['/refuse-403', 403, 'not for you'],
      ['/refuse-200', 200, 'no websocket'],
      ['/refuse-chunked', 404, 'not here!'],
    ] as const) {
      it(`relays a backend ${status} as a normal response and closes the connection (${path})`, async () => {
        const c = await raw(p.port('web'), upgradeRequest(path));
        const h = await c.readUntilClosed();
        assert.equal(h.status, status);
        assert.equal(h.rest.toString(), body);
        assert.match(h.headers.connection!, /close/i);
        assert.equal(h.headers.upgrade, undefined);
        c.destroy();
        const r = await refused(openWs(url(path)));
        assert.equal(r.status, status);
        assert.equal(r.body, body);
        await noTunnelLeft();
      });
    }

    for (const [path, why] of [
      ['/bad-accept', 'a wrong Sec-WebSocket-Accept'],
      ['/no-accept', 'no Sec-WebSocket-Accept'],
      ['/wrong-protocol', 'Upgrade: h2c'],
    ] as const) {
      it(`answers 502 to a backend 101 with ${why} (§4.1: the client would fail it)`, async () => {
        const c = await raw(p.port('web'), upgradeRequest(path));
        const h = await c.readUntilClosed();
        assert.equal(h.status, 502);
        assert.equal((JSON.parse(h.rest.toString()) as { code: string }).code, 'GW_UPSTREAM_BAD_RESPONSE');
        c.destroy();
        const ws = openWs(url(path));
        const [err] = (await once(ws, 'error')) as [Error];
        assert.match(err.message, /502/);
        await noTunnelLeft();
      });
    }

    it('answers 502 problem+json when the backend is down', async () => {
      const r = await refused(openWs(url('/down')));
      assert.equal(r.status, 502);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      assert.equal((JSON.parse(r.body) as { code: string }).code, 'GW_UPSTREAM_CONNECT_FAILED');
      assert.doesNotMatch(r.body, /127\.0\.0\.1/);
    });

    it('answers 504 problem+json when the backend never answers the handshake', async () => {
      const r = await refused(openWs(url('/silent')));
      assert.equal(r.status, 504);
      assert.equal((JSON.parse(r.body) as { code: string }).code, 'GW_UPSTREAM_TIMEOUT');
    });
  });

  describe('negotiation and data (§4.2.2, §5, §9)', () => {
    it('passes subprotocol and permessage-deflate negotiation through unchanged', async () => {
      const ws = await opened(openWs(url('/negotiate'), ['superchat', 'chat'], { perMessageDeflate: true }));
      assert.equal(ws.protocol, 'chat');
      assert.match(ws.extensions, /permessage-deflate/);
      const seen = upgrades.at(-1)!.headers;
      assert.equal(seen['sec-websocket-protocol'], 'superchat,chat');
      assert.match(String(seen['sec-websocket-extensions']), /^permessage-deflate; client_max_window_bits/);
      const text = 'compressible '.repeat(10_000);
      const reply = once(ws, 'message');
      ws.send(text);
      assert.equal(String(((await reply) as [Buffer])[0]), text);
      ws.close();
      await once(ws, 'close');
    });

    it('keeps the bytes a client sends right after its request, before the 101', async () => {
      const request = Buffer.concat([
        Buffer.from(upgradeRequest('/early')),
        clientFrame(0x1, 'early one'),
        clientFrame(0x1, 'early two'),
      ]);
      const c = await raw(p.port('web'), request);
      await c.until(() => (c.head() ? parseFrames(c.head()!.rest).length >= 2 : false), 'two echo frames');
      assert.equal(c.head()!.status, 101);
      assert.deepEqual(
        parseFrames(c.head()!.rest).map((f) => f.payload.toString()),
        ['early one', 'early two'],
      );
      c.destroy();
      await noTunnelLeft();
    });

    it('keeps the frame a backend sends in the same packet as its 101', async () => {
      const ws = openWs(url('/eager'));
      const [data] = (await once(ws, 'message')) as [Buffer];
      assert.equal(data.toString(), 'first');
      ws.terminate();
      await noTunnelLeft();
    });

    it('carries 8 MiB messages both ways and 2000 small ones in order', async () => {
      const ws = await opened(openWs(url('/bulk'), undefined, { perMessageDeflate: false, maxPayload: 0 }));
      const big = randomBytes(8 * 1024 * 1024);
      const bigReply = once(ws, 'message');
      ws.send(big);
      const [echo] = (await bigReply) as [Buffer];
      assert.equal(echo.length, big.length);
      assert.ok(echo.equals(big));
      const received: string[] = [];
      const all = new Promise<void>((resolve) => {
        ws.on('message', (d: Buffer) => {
          received.push(d.toString());
          if (received.length === 2000) resolve();
        });
      });
      for (let i = 0; i < 2000; i++) ws.send(`m${i}`);
      await all;
      assert.deepEqual(
        received,
        Array.from({ length: 2000 }, (_, i) => `m${i}`),
      );
      ws.close();
      await once(ws, 'close');
    });

    it('applies backpressure: a backend that stops reading stops Portico reading the client', async () => {
      const ws = await opened(openWs(url('/slow'), undefined, { perMessageDeflate: false }));
      const server = serverSide.get('/slow')!;
      server.pause();
      const chunk = Buffer.alloc(1024 * 1024, 7);
      const count = 32;
      for (let i = 0; i < count; i++) ws.send(chunk);
      // Wait until the client's send buffer stops draining; what is left is what nobody between the two
      // ends took: Portico holds its socket buffers' worth, not the whole stream.
      let last = -1;
      let stable = 0;
      for (let i = 0; i < 300 && stable < 10; i++) {
        await sleep(20);
        stable = ws.bufferedAmount === last ? stable + 1 : 0;
        last = ws.bufferedAmount;
      }
      assert.ok(ws.bufferedAmount > 0, 'the client still holds data: the proxy did not absorb the stream');
      let got = 0;
      const done = new Promise<void>((resolve) => {
        server.on('message', () => {
          if (++got === count) resolve();
        });
      });
      server.resume();
      await done;
      ws.close();
      await once(ws, 'close');
      await noTunnelLeft();
    });
  });

  describe('control frames and closing (§5.5, §7)', () => {
    it('passes pings and pongs both ways', async () => {
      const ws = await opened(openWs(url('/ping')));
      const pong = once(ws, 'pong');
      ws.ping('client-ping');
      assert.equal(String(((await pong) as [Buffer])[0]), 'client-ping');
      const server = serverSide.get('/ping')!;
      const serverPong = once(server, 'pong');
      const clientSawPing = once(ws, 'ping');
      server.ping('server-ping');
      assert.equal(String(((await clientSawPing) as [Buffer])[0]), 'server-ping');
      assert.equal(String(((await serverPong) as [Buffer])[0]), 'server-ping');
      ws.close();
      await once(ws, 'close');
    });

    it('passes a client close code and reason, and the echoed close', async () => {
      const ws = await opened(openWs(url('/close-client')));
      const server = serverSide.get('/close-client')!;
      const serverClosed = once(server, 'close');
      const clientClosed = once(ws, 'close');
      ws.close(4001, 'client bye');
      const [code, reason] = (await serverClosed) as [number, Buffer];
      assert.equal(code, 4001);
      assert.equal(reason.toString(), 'client bye');
      assert.equal(((await clientClosed) as [number])[0], 4001);
      await noTunnelLeft();
    });

    it('passes a server close code and reason', async () => {
      const ws = await opened(openWs(url('/close-server')));
      const closed = once(ws, 'close');
      ws.send('close-me');
      const [code, reason] = (await closed) as [number, Buffer];
      assert.equal(code, 4002);
      assert.equal(reason.toString(), 'server bye');
      await noTunnelLeft();
    });

    it('delivers the backend close frame to a client that sent Close and then FIN', async () => {
      const c = await raw(p.port('web'), upgradeRequest('/close-fin'));
      assert.equal((await c.readHead()).status, 101);
      c.socket.end(clientFrame(0x8, Buffer.concat([Buffer.from([0x0f, 0xa1]), Buffer.from('done')])));
      await c.until(() => c.closed || c.ended, 'the connection to close');
      const frames = parseFrames(c.head()!.rest);
      const close = frames.find((f) => f.opcode === 0x8);
      assert.ok(close, 'the backend close frame reached the client');
      assert.equal(close.payload.readUInt16BE(0), 4001);
      c.destroy();
      await noTunnelLeft();
    });

    it('closes the backend when the client vanishes', async () => {
      const ws = await opened(openWs(url('/vanish-client')));
      const server = serverSide.get('/vanish-client')!;
      const closed = once(server, 'close');
      ws.terminate();
      const [code] = (await closed) as [number];
      assert.equal(code, 1006);
      await noTunnelLeft();
    });

    it('closes the client when the backend vanishes', async () => {
      const ws = await opened(openWs(url('/vanish-backend')));
      const closed = once(ws, 'close');
      ws.send('vanish');
      const [code] = (await closed) as [number];
      assert.equal(code, 1006);
      await noTunnelLeft();
    });

    it('passes a client FIN on and closes both sides when the backend closes in turn', async () => {
      const c = await raw(p.port('web'), upgradeRequest('/fin-client'));
      assert.equal((await c.readHead()).status, 101);
      const server = serverSide.get('/fin-client')!;
      const serverClosed = once(server, 'close');
      c.socket.end();
      await serverClosed;
      await c.until(() => c.closed, 'the client connection to close');
      await noTunnelLeft();
    });

    it('cuts a half-closed tunnel whose backend never closes (no leaked sockets)', async () => {
      const c = await raw(p.port('web'), upgradeRequest('/half-open'));
      assert.equal((await c.readHead()).status, 101);
      c.socket.end();
      await eventually(() => backendSawEnd.includes('/half-open'), 'the backend to see the FIN');
      await c.until(() => c.closed, 'Portico to close the client connection');
      // Portico closed its end: the backend's writes fail (RST, then EPIPE) and its socket closes.
      await eventually(() => {
        for (const s of rawBackendSockets) s.write('x');
        return rawBackendSockets.size === 0;
      }, 'the backend connection to be closed by Portico');
      await noTunnelLeft();
    });

    it('closes a tunnel idle longer than the route idleTimeout', async () => {
      const ws = await opened(openWs(url('/idle')));
      const [code] = (await once(ws, 'close')) as [number];
      assert.equal(code, 1006);
      await noTunnelLeft();
    });
  });
});
