/**
 * End to end: forwarding headers from a trusted proxy are extended, not replaced; Via both ways when enabled;
 * a configured Server header on responses and local replies.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fetchRaw, rawExchange, startEchoUpstream } from '../helpers/http.ts';
import { startPortico } from '../helpers/portico.ts';

interface Echo {
  headers: Record<string, string>;
}

describe('forwarding headers from trusted proxies', () => {
  it('extends X-Forwarded-For and Forwarded from a trusted peer, keeps its proto and host, adds Via', async (t) => {
    const echo = await startEchoUpstream();
    const p = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0, trustedProxies: [127.0.0.0/8] } ]
upstreams: [ { name: echo, targets: [ { url: ${echo.url} } ] } ]
routes: [ { name: all, match: { path: /* }, upstream: echo } ]
proxy: { via: true, serverHeader: portico }
`);
    t.after(async () => {
      await p.stop();
      await echo.close();
    });
    const res = await fetchRaw(`${p.url()}/x`, {
      headers: {
        'x-forwarded-for': '203.0.113.7',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'shop.example.com',
        forwarded: 'for=203.0.113.7;proto=https',
        via: '1.1 edge-lb',
      },
    });
    const echoed = (JSON.parse(res.body) as Echo).headers;
    assert.equal(echoed['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
    assert.equal(echoed['x-forwarded-proto'], 'https');
    assert.equal(echoed['x-forwarded-host'], 'shop.example.com');
    assert.match(echoed.forwarded!, /^for=203\.0\.113\.7;proto=https, for=127\.0\.0\.1;proto=http/);
    assert.equal(echoed.via, '1.1 edge-lb, 1.1 portico');
    assert.equal(res.headers.via, '1.1 portico');
    assert.equal(res.headers.server, 'portico');
    const missing = await fetch(`${p.url()}/%zz`);
    assert.equal(missing.headers.get('server'), 'portico');
    const line = await p.waitFor((l) => l.msg === 'request' && l.path === '/x');
    assert.equal(line.client, '203.0.113.7', 'the access log names the real client behind a trusted proxy');
  });

  it('adds Via to requests only by default (RFC 9110 §7.6.3), with the protocol each request came in with', async (t) => {
    const echo = await startEchoUpstream();
    const p = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: echo, targets: [ { url: ${echo.url} } ] } ]
routes: [ { name: all, match: { path: /* }, upstream: echo } ]
`);
    t.after(async () => {
      await p.stop();
      await echo.close();
    });
    const res = await fetchRaw(`${p.url()}/x`, { headers: { via: '2 cdn' } });
    assert.equal((JSON.parse(res.body) as Echo).headers.via, '2 cdn, 1.1 portico');
    assert.equal(res.headers.via, undefined, 'responses carry no Via unless `via: both`');
    const http10 = await rawExchange(p.port(), 'GET /x HTTP/1.0\r\nHost: a\r\n\r\n');
    assert.match(http10, /"via":"1\.0 portico"/);
  });
});
