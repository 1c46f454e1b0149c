/**
 * End to end: allow / deny lists per listener and per route, connections per client address, HTML or
 * problem+json error bodies by Accept, and routes that answer themselves (respond, redirect).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fetchRaw, rawExchange, startEchoUpstream, statusOf, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';

describe('shielding', () => {
  let echo: TestServer;
  let p: PorticoProcess;

  before(async () => {
    echo = await startEchoUpstream();
    p = await startPortico(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:0 }
  - { name: few, protocol: http, address: 127.0.0.1:0, limits: { maxConnectionsPerClient: 2 } }
  - { name: closed, protocol: http, address: 127.0.0.1:0, deny: [127.0.0.0/8] }
upstreams: [ { name: echo, targets: [ { url: ${echo.url} } ] } ]
routes:
  - { name: internal, match: { path: /internal/* }, allow: [10.0.0.0/8], upstream: echo }
  - { name: health, match: { path: /healthz }, respond: { status: 200, body: "ok", headers: { x-static: "1" } } }
  - { name: moved, match: { path: /old/* }, redirect: { to: "https://new.example.com{path}{query}", status: 301 } }
  - { name: all, match: { path: /* }, upstream: echo }
`);
  });

  after(async () => {
    await p?.stop();
    await echo?.close();
  });

  it('refuses a denied address on a listener with 403', async () => {
    const res = await fetch(`${p.url('closed')}/x`);
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { code: string }).code, 'GW_ADDRESS_DENIED');
  });

  it('refuses an address outside a route allow list, leaving other routes open', async () => {
    const res = await fetch(`${p.url()}/internal/x`);
    assert.equal(res.status, 403);
    assert.equal((await fetch(`${p.url()}/public`)).status, 200);
    assert.equal(echo.seen.filter((r) => r.url?.startsWith('/internal')).length, 0);
  });

  it('limits connections per client address', async () => {
    const port = p.port('few');
    // Two keep-alive connections, each proven admitted by a full exchange, then held open.
    const held = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')];
    // Listen for both connects at once: the second may complete while the first exchange runs.
    await Promise.all(held.map((socket) => once(socket, 'connect')));
    try {
      for (const socket of held) {
        socket.write('GET /held HTTP/1.1\r\nHost: x\r\n\r\n');
        const [data] = (await once(socket, 'data')) as [Buffer];
        assert.equal(statusOf(data.toString()), 200);
      }
      const raw = await rawExchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal(statusOf(raw), 429);
      assert.match(raw, /GW_TOO_MANY_CONNECTIONS/);
    } finally {
      for (const socket of held) socket.destroy();
    }
    // Once they are closed, the client may connect again (bounded wait for the server to see the closes).
    let status = 0;
    for (let i = 0; i < 20 && status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = statusOf(await rawExchange(port, 'GET /again HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    }
    assert.equal(status, 200);
  });

  it('sends an HTML error page to browsers and problem+json to API clients', async () => {
    const browser = await fetchRaw(`${p.url()}/%zz`, {
      headers: { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' },
    });
    assert.equal(browser.status, 400);
    assert.match(String(browser.headers['content-type']), /^text\/html/);
    assert.match(browser.body, /<h1>400 /);
    const api = await fetchRaw(`${p.url()}/%zz`, { headers: { accept: 'application/json' } });
    assert.equal(api.headers['content-type'], 'application/problem+json');
  });

  it('answers fixed responses and redirects without an upstream', async () => {
    const health = await fetch(`${p.url()}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(await health.text(), 'ok');
    assert.equal(health.headers.get('x-static'), '1');
    assert.ok(health.headers.get('x-request-id'));
    const moved = await fetch(`${p.url()}/old/page?a=1`, { redirect: 'manual' });
    assert.equal(moved.status, 301);
    assert.equal(moved.headers.get('location'), 'https://new.example.com/old/page?a=1');
  });
});
