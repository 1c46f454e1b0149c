/**
 * End to end: two Portico processes share one real Redis as their cache store — what one stored, the other
 * serves as a hit — and a purge through one admin API empties it for both.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fetchRaw, startUpstream } from '../helpers/http.ts';
import { startPortico } from '../helpers/portico.ts';
import { startRedisServer } from '../helpers/redis-server.ts';

describe('shared Redis cache', () => {
  it('a response stored by one instance is a hit on the other, until purged', async (t) => {
    const redis = await startRedisServer();
    let hits = 0;
    const origin = await startUpstream((_req, res) => {
      hits++;
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
      res.end(`answer ${hits}`);
    });
    const yaml = `
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: origin, targets: [ { url: ${origin.url} } ] } ]
routes: [ { name: cached, match: { path: /* }, cache: { ttl: 30s }, upstream: origin } ]
cache: { store: redis, url: "${redis.url}" }
admin: { address: "127.0.0.1:0" }
`;
    const a = await startPortico(yaml);
    const b = await startPortico(yaml);
    t.after(async () => {
      await a.stop();
      await b.stop();
      await origin.close();
      await redis.stop();
    });
    // Both instances are asked for the same site (fetch() cannot set Host, so node:http it is).
    const get = (base: string) => fetchRaw(`${base}/shared`, { headers: { host: 'site.test' } });
    const first = await get(a.url());
    assert.equal(first.headers['x-cache'], 'MISS');
    assert.equal(first.body, 'answer 1');
    // The store write is asynchronous: wait (bounded) until the first instance itself hits, which proves the
    // entry is in Redis, then ask the other instance once.
    for (let i = 0; i < 40; i++) {
      const again = await get(a.url());
      if (again.headers['x-cache'] === 'HIT') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(hits, 1);
    const second = await get(b.url());
    assert.equal(second.headers['x-cache'], 'HIT');
    assert.equal(second.body, 'answer 1');
    assert.equal(hits, 1, 'the second instance did not go upstream');

    const started = await a.waitFor((l) => l.msg === 'started');
    const admin = `http://${String(started.admin)}`;
    const purge = await fetch(`${admin}/cache/purge`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prefix: 'site.test/' }),
    });
    assert.equal(purge.status, 200);
    const after = await get(b.url());
    assert.equal(after.headers['x-cache'], 'MISS');
    assert.equal(after.body, 'answer 2');
  });
});
