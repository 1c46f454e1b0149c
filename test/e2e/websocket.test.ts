/**
 * End to end: WebSockets through Portico — echo both ways, an open WebSocket surviving a SIGHUP reload,
 * `websocket: false` refused, a non-101 answer relayed, and wss through an https listener.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { certDir, makeCert } from '../helpers/tls-certs.ts';

/** Sends `text` and resolves with the next message. */
async function roundTrip(ws: WebSocket, text: string): Promise<string> {
  const reply = once(ws, 'message');
  ws.send(text);
  const [data] = (await reply) as [Buffer];
  return data.toString();
}

async function open(url: string, options: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, options);
  await once(ws, 'open');
  return ws;
}

/** Resolves with the status of a refused handshake. */
async function refusedStatus(url: string): Promise<number> {
  const ws = new WebSocket(url);
  ws.on('error', () => {});
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number; resume(): void }];
  res.resume();
  ws.terminate();
  return res.statusCode;
}

describe('websockets', () => {
  const dir = certDir();
  const cert = makeCert(dir, ['DNS:ws.test']);
  let upstream: Server;
  let wss: WebSocketServer;
  let port: number;
  let p: PorticoProcess;
  const seenHeaders: Record<string, string | string[] | undefined>[] = [];

  const config = (extraRoute = ''): string => `
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:0 }
  - name: secure
    protocol: https
    address: 127.0.0.2:0
    tls: { certificates: [ { cert: ${cert.cert}, key: ${cert.key} } ] }
upstreams:
  - { name: echo, targets: [ { url: http://127.0.0.1:${port} } ] }
routes:
  - { name: no-ws, match: { path: /no-ws/* }, websocket: false, upstream: echo }
  - { name: idle, match: { path: /idle/* }, websocket: { idleTimeout: 5m }, upstream: echo }
  ${extraRoute}
  - { name: all, match: { path: /* }, upstream: echo }
`;

  before(async () => {
    upstream = createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('no websocket here');
    });
    wss = new WebSocketServer({ noServer: true });
    upstream.on('upgrade', (req, socket, head) => {
      if (req.url?.startsWith('/refuse')) {
        socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 4\r\nconnection: close\r\n\r\nnope');
        return;
      }
      seenHeaders.push(req.headers);
      wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on('message', (data, binary) => ws.send(binary ? data : `echo:${data.toString()}`, { binary }));
      });
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    port = (upstream.address() as AddressInfo).port;
    p = await startPortico(config());
  });

  after(async () => {
    await p?.stop();
    for (const c of wss?.clients ?? []) c.terminate();
    wss?.close();
    upstream?.closeAllConnections();
    upstream?.close();
  });

  it('echoes text and binary frames both ways with forwarding headers', async () => {
    const ws = await open(`ws://127.0.0.1:${p.port('web')}/chat?room=1`);
    assert.equal(await roundTrip(ws, 'hello'), 'echo:hello');
    const big = 'x'.repeat(256 * 1024);
    assert.equal(await roundTrip(ws, big), `echo:${big}`);
    ws.close();
    await once(ws, 'close');
    const h = seenHeaders.at(-1)!;
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.ok(h['x-request-id']);
    assert.equal(String(h.upgrade).toLowerCase(), 'websocket');
  });

  it('keeps an open WebSocket across a config reload', async () => {
    const ws = await open(`ws://127.0.0.1:${p.port('web')}/live`);
    assert.equal(await roundTrip(ws, 'one'), 'echo:one');
    const line = await p.reload(config('- { name: extra, match: { path: /extra/* }, upstream: echo }'));
    assert.equal(line.msg, 'reloaded');
    assert.equal(await roundTrip(ws, 'two'), 'echo:two');
    // A new WebSocket after the reload works too.
    const ws2 = await open(`ws://127.0.0.1:${p.port('web')}/extra/x`);
    assert.equal(await roundTrip(ws2, 'three'), 'echo:three');
    ws.close();
    ws2.close();
    await Promise.all([once(ws, 'close'), once(ws2, 'close')]);
  });

  it('refuses upgrades on a route with websocket: false', async () => {
    assert.equal(await refusedStatus(`ws://127.0.0.1:${p.port('web')}/no-ws/x`), 403);
  });

  it('relays an upstream answer that is not 101', async () => {
    assert.equal(await refusedStatus(`ws://127.0.0.1:${p.port('web')}/refuse`), 403);
  });

  it('works over TLS (wss) with x-forwarded-proto https', async () => {
    const ws = await open(`wss://127.0.0.2:${p.port('secure')}/idle/x`, { rejectUnauthorized: false });
    assert.equal(await roundTrip(ws, 'secure'), 'echo:secure');
    assert.equal(seenHeaders.at(-1)!['x-forwarded-proto'], 'https');
    ws.close();
    await once(ws, 'close');
  });
});
