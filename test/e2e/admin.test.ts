/**
 * End to end: the admin API of the real process — metrics after traffic, upstreams, redacted config, cache
 * purge, reload (good and bad file) and health while serving and while draining.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { rawExchange, startUpstream, statusOf, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(url: string, method = 'GET', body?: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The value of one sample line of a Prometheus exposition, or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const API_KEY = 'sekret-key-0123456789';
const JWT_SECRET = 'jwt-secret-0123456789-0123456789-abcdef';

function config(origin: string, extraRoute = ''): string {
  return `
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams:
  - { name: api, targets: [ { url: ${origin} } ] }
consumers:
  - { name: acme, apiKeys: [ "${API_KEY}" ] }
policies:
  key: { type: api-key, header: x-api-key }
  jwt: { type: jwt-auth, secret: "${JWT_SECRET}" }
routes:${extraRoute}
  - { name: cached, match: { path: /cached/* }, cache: { ttl: 30s }, upstream: api }
  - { name: keyed, match: { path: /keyed/* }, policies: [key], upstream: api }
  - { name: all, match: { path: /* }, upstream: api }
admin: { address: ":0" }
`;
}

describe('admin API', () => {
  let origin: TestServer;
  let p: PorticoProcess;
  let admin: string;
  let web: string;
  let cachedHits = 0;
  /** Responses held back by the origin (the draining test releases them). */
  const held: Array<() => void> = [];

  before(async () => {
    origin = await startUpstream((req, res) => {
      if (req.url!.startsWith('/cached/')) cachedHits++;
      if (req.url === '/slow') {
        held.push(() => res.end('slow'));
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.flushHeaders();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
      res.end(`hello ${req.url}`);
    });
    p = await startPortico(config(origin.url));
    const started = p.lines.find((l) => l.msg === 'started')!;
    assert.match(String(started.admin), /^127\.0\.0\.1:\d+$/, 'an address without host binds loopback');
    admin = `http://${started.admin}`;
    web = p.url();
  });

  after(async () => {
    for (const release of held) release();
    await p?.stop();
    await origin?.close();
  });

  it('answers health and readiness while serving', async () => {
    const h = await call(`${admin}/healthz`);
    assert.equal(h.status, 200);
    assert.equal(h.body, 'ok\n');
    assert.equal((await call(`${admin}/ready`)).status, 200);
  });

  it('shows request counters, local replies by code and upstream attempts', async () => {
    assert.equal((await call(`${web}/a`)).status, 200);
    assert.equal((await call(`${web}/a`)).status, 200);
    const denied = await call(`${web}/keyed/x`);
    assert.equal(denied.status, 401);
    const m = await call(`${admin}/metrics`);
    assert.equal(m.status, 200);
    assert.match(String(m.headers['content-type']), /^text\/plain/);
    assert.equal(sample(m.body, 'portico_http_requests_total{route="all",status="200"}'), 2);
    assert.equal(sample(m.body, 'portico_http_requests_total{route="keyed",status="401",code="GW_AUTH_MISSING"}'), 1);
    assert.equal(sample(m.body, 'portico_http_local_replies_total{code="GW_AUTH_MISSING"}'), 1);
    assert.equal(sample(m.body, 'portico_upstream_attempts_total{upstream="api",outcome="response"}'), 2);
    assert.equal(sample(m.body, 'portico_http_request_duration_seconds_count{route="all"}'), 2);
    assert.equal(sample(m.body, 'portico_upstream_targets{upstream="api",state="healthy"}'), 1);
    assert.equal(sample(m.body, 'portico_websocket_connections'), 0);
    assert.match(m.body, /^process_resident_memory_bytes /m);
  });

  it('lists upstream targets with their state', async () => {
    const r = await call(`${admin}/upstreams`);
    assert.equal(r.status, 200);
    const { upstreams } = JSON.parse(r.body) as {
      upstreams: Array<{
        name: string;
        balance: string;
        targets: Array<{ key: string; state: string; active: number }>;
      }>;
    };
    assert.equal(upstreams.length, 1);
    assert.equal(upstreams[0]!.name, 'api');
    assert.equal(upstreams[0]!.balance, 'least-request');
    assert.deepEqual(
      upstreams[0]!.targets.map((t) => [t.key, t.state, t.active]),
      [[origin.url, 'healthy', 0]],
    );
  });

  it('shows the running config with secrets redacted', async () => {
    const r = await call(`${admin}/config`);
    assert.equal(r.status, 200);
    assert.ok(!r.body.includes(API_KEY), 'API key leaked');
    assert.ok(!r.body.includes(JWT_SECRET), 'JWT secret leaked');
    const cfg = JSON.parse(r.body) as {
      consumers: Array<{ apiKeys: string[] }>;
      policies: Record<string, { secret?: string }>;
      routes: Array<{ name: string }>;
    };
    assert.deepEqual(cfg.consumers[0]!.apiKeys, ['[redacted]']);
    assert.equal(cfg.policies.jwt!.secret, '[redacted]');
    assert.deepEqual(
      cfg.routes.map((r) => r.name),
      ['cached', 'keyed', 'all'],
    );
  });

  it('purges cached entries by key and by prefix', async () => {
    const host = new URL(web).host;
    assert.equal((await call(`${web}/cached/one`)).headers['x-cache'], 'MISS');
    assert.equal((await call(`${web}/cached/one`)).headers['x-cache'], 'HIT');
    assert.equal((await call(`${web}/cached/two`)).headers['x-cache'], 'MISS');
    assert.equal(cachedHits, 2);

    const byKey = await call(`${admin}/cache/purge`, 'POST', JSON.stringify({ key: `${host}/cached/one` }));
    assert.equal(byKey.status, 200);
    assert.deepEqual(JSON.parse(byKey.body), { purged: 1 });
    assert.equal((await call(`${web}/cached/one`)).headers['x-cache'], 'MISS');
    assert.equal((await call(`${web}/cached/two`)).headers['x-cache'], 'HIT');
    assert.equal(cachedHits, 3);

    const byPrefix = await call(`${admin}/cache/purge`, 'POST', JSON.stringify({ prefix: `${host}/cached/` }));
    assert.deepEqual(JSON.parse(byPrefix.body), { purged: 2 });
    assert.equal((await call(`${web}/cached/two`)).headers['x-cache'], 'MISS');
    assert.equal(cachedHits, 4);

    const m = (await call(`${admin}/metrics`)).body;
    assert.equal(sample(m, 'portico_cache_requests_total{route="cached",result="HIT"}'), 2);
    assert.equal(sample(m, 'portico_cache_requests_total{route="cached",result="MISS"}'), 4);

    const bad = await call(`${admin}/cache/purge`, 'POST', JSON.stringify({ key: 'a', prefix: 'b' }));
    assert.equal(bad.status, 400);
    assert.equal(bad.headers['content-type'], 'application/problem+json');
    assert.equal(JSON.parse(bad.body).code, 'GW_BAD_REQUEST');
    assert.equal((await call(`${admin}/cache/purge`, 'POST', 'not json')).status, 400);
  });

  it('answers unknown paths and methods with problem+json', async () => {
    const missing = await call(`${admin}/nope`);
    assert.equal(missing.status, 404);
    assert.equal(JSON.parse(missing.body).code, 'GW_ROUTE_NOT_FOUND');
    const wrong = await call(`${admin}/reload`);
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.allow, 'POST');
  });

  it('reloads a new config file, and reports every error of a bad one', async () => {
    const { writeFile } = await import('node:fs/promises');
    const extra = `
  - { name: extra, match: { path: /extra }, respond: { status: 200, body: "extra route" } }`;
    await writeFile(p.configPath, config(origin.url, extra));
    const ok = await call(`${admin}/reload`, 'POST');
    assert.equal(ok.status, 200, ok.body);
    await p.waitFor((l) => l.msg === 'reloaded');
    assert.equal((await call(`${web}/extra`)).body, 'extra route');

    await writeFile(p.configPath, config(origin.url).replace('upstream: api }', 'upstream: nowhere }'));
    const bad = await call(`${admin}/reload`, 'POST');
    assert.equal(bad.status, 400);
    const problem = JSON.parse(bad.body) as { code: string; errors: Array<{ path: string; line: number }> };
    assert.equal(problem.code, 'GW_BAD_REQUEST');
    assert.ok(problem.errors.length >= 1);
    assert.ok(problem.errors.some((e) => e.path.startsWith('routes[') && e.line > 0));
    // The running config is unchanged.
    assert.equal((await call(`${web}/extra`)).body, 'extra route');

    const m = (await call(`${admin}/metrics`)).body;
    assert.equal(sample(m, 'portico_config_reloads_total{result="ok"}'), 1);
    assert.equal(sample(m, 'portico_config_reloads_total{result="invalid"}'), 1);
  });

  it('counts refused WebSocket upgrades like other local replies', async () => {
    const series = {
      // Refused before routing (the handshake is checked first): route="".
      version: 'portico_http_requests_total{route="",status="426",code="GW_WEBSOCKET_VERSION_UNSUPPORTED"}',
      versionCode: 'portico_http_local_replies_total{code="GW_WEBSOCKET_VERSION_UNSUPPORTED"}',
      policy: 'portico_http_requests_total{route="keyed",status="401",code="GW_AUTH_MISSING"}',
      policyCode: 'portico_http_local_replies_total{code="GW_AUTH_MISSING"}',
    };
    const read = async () => {
      const body = (await call(`${admin}/metrics`)).body;
      return Object.fromEntries(Object.entries(series).map(([k, v]) => [k, sample(body, v) ?? 0]));
    };
    const before = await read();
    const upgrade = (path: string, version: string) =>
      rawExchange(
        p.port(),
        `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: ${version}\r\n\r\n`,
      );
    assert.equal(statusOf(await upgrade('/ws', '8')), 426);
    assert.equal(statusOf(await upgrade('/keyed/ws', '13')), 401);
    const after = await read();
    assert.deepEqual(Object.fromEntries(Object.keys(series).map((k) => [k, after[k]! - before[k]!])), {
      version: 1,
      versionCode: 1,
      policy: 1,
      policyCode: 1,
    });
  });

  it('reports draining on /healthz while shutting down (last: stops the process)', async () => {
    // A response held open by the origin keeps the drain going.
    const slow = call(`${web}/slow`);
    for (let i = 0; i < 200 && held.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(held.length, 1);
    p.child.kill('SIGTERM');
    await p.waitFor((l) => l.msg === 'shutting down');
    const h = await call(`${admin}/healthz`);
    assert.equal(h.status, 503);
    assert.equal(h.body, 'draining\n');
    assert.equal((await call(`${admin}/ready`)).status, 503);
    held.shift()!();
    assert.equal((await slow).body, 'slow');
    assert.equal(await p.exited(), 0);
  });
});
