/**
 * End to end: a WebSocket upgrade on a route with policies runs the request phase first — no key, no
 * tunnel; with a key, the tunnel opens and the identified consumer reaches the upstream.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { WebSocket, WebSocketServer } from 'ws';
import { startPortico } from '../helpers/portico.ts';

describe('websockets through policies', () => {
  it('authenticates the upgrade before opening the tunnel', async (t) => {
    const upstream = createServer();
    const wss = new WebSocketServer({ server: upstream });
    const consumers: unknown[] = [];
    wss.on('connection', (ws, req) => {
      consumers.push(req.headers['x-consumer']);
      ws.on('message', (m) => ws.send(`echo:${m.toString()}`));
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const port = (upstream.address() as AddressInfo).port;
    const p = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: ws, targets: [ { url: "http://127.0.0.1:${port}" } ] } ]
consumers: [ { name: acme, apiKeys: [ ws-key-0000000000001 ] } ]
policies: { key: { type: api-key, header: x-api-key } }
routes: [ { name: live, match: { path: /live }, policies: [key], upstream: ws } ]
`);
    t.after(async () => {
      await p.stop();
      wss.close();
      upstream.close();
    });
    const url = `ws://127.0.0.1:${p.port()}/live`;

    const refused = new WebSocket(url);
    refused.on('error', () => {});
    const [, res] = (await once(refused, 'unexpected-response')) as [unknown, { statusCode: number; resume(): void }];
    res.resume();
    refused.terminate();
    assert.equal(res.statusCode, 401);
    assert.equal(consumers.length, 0, 'no tunnel without credentials');

    const ws = new WebSocket(url, { headers: { 'x-api-key': 'ws-key-0000000000001', 'x-consumer': 'spoofed' } });
    await once(ws, 'open');
    const reply = once(ws, 'message');
    ws.send('hi');
    assert.equal(String(((await reply) as [Buffer])[0]), 'echo:hi');
    assert.deepEqual(consumers, ['acme']);
    ws.close();
  });
});
