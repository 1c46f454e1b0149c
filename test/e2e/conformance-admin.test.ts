/**
 * End to end, the admin API against hostile and unusual requests, as a security reviewer (and an Envoy or Kong
 * operator) would probe it: browser-borne cross-site requests (CSRF, DNS rebinding) must not reload or purge,
 * state-changing endpoints refuse GET with 405 + `Allow`, malformed, huge and odd bodies and paths get a 4xx
 * problem+json (never a crash, a stack trace or a file path), `/config` leaks no secret of any kind, client
 * input cannot add metric series or exposition lines, and the API keeps answering while the data plane is
 * saturated by a hanging upstream. Real portico process, real node:http upstreams, raw sockets.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fetchRaw, rawExchange, startUpstream, statusOf, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { makeCert } from '../helpers/tls-certs.ts';

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One request on a fresh connection, bounded in time. */
function call(
  url: string,
  method = 'GET',
  body?: string | Buffer,
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<Reply> {
  return fetchRaw(url, { method, body, headers, timeoutMs });
}

/** A problem+json reply with this status and code, with nothing internal in it. */
function assertProblem(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, r.body);
  assert.equal(r.headers['content-type'], 'application/problem+json', r.body);
  const p = JSON.parse(r.body) as { status: number; code: string; requestId: string };
  assert.equal(p.status, status);
  assert.equal(p.code, code);
  assertClean(r.body);
}

/** No stack trace and no file path of this machine in a body. */
function assertClean(body: string): void {
  assert.doesNotMatch(body, /\n\s+at |at .*\.(ts|js|mjs):\d+/, `stack trace in ${body}`);
  assert.doesNotMatch(body, /\/(work|tmp|home|usr|etc)\//, `file path in ${body}`);
}

/** The value of one sample line of a Prometheus exposition, or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Secrets, each given through `${ENV}` (or `file:`), that must never appear in /config. */
const SECRETS = {
  API_KEY: 'apikey-7f3c9a1e5b',
  BASIC_PW: 'basicpw-2d8e4f6a0c',
  JWT_SECRET: 'jwtsecret-0123456789-0123456789-abcdef',
  CLIENT_SECRET: 'clientsecret-9b1d3f5e7a',
  STICKY_SECRET: 'stickysecret-4c6e8a0b2d',
  REDIS_PW: 'redispw-1a3c5e7b9d',
  BEARER: 'bearertoken-8e0a2c4f6b',
  JWK_K: 'c3ltbWV0cmljLWp3ay1zZWNyZXQtdmFsdWU',
} as const;

function config(originUrl: string, hangUrl: string, tlsDir: string, extra = ''): string {
  return `
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:0 }
  - name: secure
    protocol: https
    address: 127.0.0.1:0
    tls: { certificates: [ { cert: "file:${tlsDir}/server.pem", key: "file:${tlsDir}/server.key" } ] }
upstreams:
  - { name: api, targets: [ { url: ${originUrl} } ], sticky: { secret: "\${STICKY_SECRET}" } }
  - name: hang
    targets: [ { url: ${hangUrl} } ]
    timeouts: { response: 60s }
  - name: mtls
    targets: [ { url: "https://127.0.0.1:9" } ]
    tls: { cert: "file:${tlsDir}/client.pem", key: "file:${tlsDir}/client.key" }
consumers:
  - name: acme
    apiKeys: [ "\${API_KEY}" ]
    basicAuth: [ { username: ops, password: "\${BASIC_PW}" } ]
policies:
  key: { type: api-key, header: x-api-key }
  jwt: { type: jwt-auth, secret: "\${JWT_SECRET}" }
  jwk: { type: jwt-auth, jwks: { keys: [ { kty: oct, kid: a, alg: HS256, k: "\${JWK_K}" } ] } }
  intro: { type: oauth2-introspection, url: "https://idp.invalid/introspect", clientId: portico, clientSecret: "\${CLIENT_SECRET}" }
state: { store: redis, url: "redis://:\${REDIS_PW}@127.0.0.1:9/0" }
routes:${extra}
  - { name: cached, match: { path: /cached/* }, cache: { ttl: 30s }, upstream: api }
  - { name: hang, match: { path: /hang/* }, upstream: hang }
  - name: signed
    match: { path: /signed/* }
    upstream: api
    headers: { request: { set: { authorization: "Bearer \${BEARER}" } } }
  - { name: all, match: { path: /* }, upstream: api }
admin: { address: ":0" }
`;
}

describe('admin API conformance', () => {
  let origin: TestServer;
  let hang: TestServer;
  let p: PorticoProcess;
  let admin: string;
  let adminPort: number;
  let tlsDir: string;
  /** Responses held by the hanging upstream (released in `after`). */
  const held: Array<() => void> = [];

  before(async () => {
    origin = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
      res.end(`hello ${req.url}`);
    });
    hang = await startUpstream((_req, res) => {
      held.push(() => res.end('late'));
    });
    tlsDir = await mkdtemp(join(tmpdir(), 'portico-admin-tls-'));
    makeCert(tlsDir, ['DNS:localhost'], { file: 'server' });
    makeCert(tlsDir, ['DNS:client'], { file: 'client' });
    p = await startPortico(config(origin.url, hang.url, tlsDir), { env: { ...SECRETS } });
    const started = p.lines.find((l) => l.msg === 'started')!;
    admin = `http://${started.admin}`;
    adminPort = Number(new URL(admin).port);
  });

  after(async () => {
    for (const release of held) release();
    await p?.stop();
    await origin?.close();
    await hang?.close();
  });

  async function reloadsOk(): Promise<number> {
    const m = await call(`${admin}/metrics`);
    return sample(m.body, 'portico_config_reloads_total{result="ok"}') ?? 0;
  }

  // --- 1, 2. access control and methods ---

  it('refuses cross-site browser requests to reload and purge (CSRF, DNS rebinding)', async () => {
    const before = await reloadsOk();
    const browser: Array<Record<string, string>> = [
      // A form or fetch() "simple request" from another site: no preflight, Origin sent.
      { origin: 'http://evil.example', 'content-type': 'text/plain' },
      { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      { origin: 'null', 'content-type': 'multipart/form-data; boundary=x' },
      // DNS rebinding: the page's origin is the admin address under the attacker's name.
      { origin: `http://rebind.example:${adminPort}`, 'sec-fetch-site': 'same-origin' },
      // No Origin (some embedded browsers), but Fetch metadata says cross-site.
      { 'sec-fetch-site': 'cross-site', 'content-type': 'text/plain' },
    ];
    for (const headers of browser) {
      const r = await call(`${admin}/reload`, 'POST', '{}', headers);
      assertProblem(r, 403, 'GW_FORBIDDEN');
      const purge = await call(`${admin}/cache/purge`, 'POST', JSON.stringify({ prefix: '127.0.0.1' }), headers);
      assertProblem(purge, 403, 'GW_FORBIDDEN');
    }
    assert.equal(await reloadsOk(), before, 'a cross-site request reloaded the config');
    // Operators' tools (curl, scripts) send no Origin: they still work, with any content type.
    const curl = await call(`${admin}/reload`, 'POST', '', { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(curl.status, 200, curl.body);
    assert.equal(await reloadsOk(), before + 1);
    const tool = await call(`${admin}/cache/purge`, 'POST', '{"prefix":"x"}', { 'sec-fetch-site': 'none' });
    assert.equal(tool.status, 200, tool.body);
  });

  it('state-changing endpoints refuse GET, HEAD and others with 405 and Allow', async () => {
    const before = await reloadsOk();
    for (const path of ['/reload', '/cache/purge']) {
      for (const method of ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) {
        const r = await call(`${admin}${path}?prefix=x`, method);
        assert.equal(r.status, 405, `${method} ${path}`);
        assert.equal(r.headers.allow, 'POST', `${method} ${path}`);
        if (method !== 'HEAD') assertProblem(r, 405, 'GW_METHOD_NOT_ALLOWED');
      }
    }
    assert.equal(await reloadsOk(), before, 'a GET reloaded the config');
    // Read-only endpoints refuse writes.
    const post = await call(`${admin}/config`, 'POST', '{}');
    assertProblem(post, 405, 'GW_METHOD_NOT_ALLOWED');
    assert.match(String(post.headers.allow), /^GET\b/);
  });

  it('answers HEAD like GET on read-only endpoints (RFC 9110 §9.3.2)', async () => {
    for (const path of ['/healthz', '/ready', '/metrics', '/config', '/upstreams']) {
      const get = await call(`${admin}${path}`);
      const head = await call(`${admin}${path}`, 'HEAD');
      assert.equal(head.status, get.status, path);
      assert.equal(head.body, '', path);
      assert.equal(head.headers['content-type'], get.headers['content-type'], path);
    }
  });

  it('takes no credentials from the query string or headers (there is no auth; nothing changes)', async () => {
    // The API has no authentication (docs/admin.md): tokens anywhere are ignored, never echoed or logged.
    const r = await call(`${admin}/healthz?token=abc&access_token=def`, 'GET', undefined, {
      authorization: 'Bearer x',
    });
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ok\n');
    assert.ok(!JSON.stringify(p.lines).includes('access_token=def'), 'query token logged');
  });

  // --- 3. malformed input ---

  it('answers odd paths with 404 problem+json, never another endpoint', async () => {
    const odd = [
      '/healthz/',
      '//healthz',
      '/HEALTHZ',
      '/healthz/../config',
      '/%2e%2e/config',
      '/cache/purge/../../reload',
      '/cache%2fpurge',
      '/__proto__',
      '/constructor',
      '/healthz%00',
      `/${'a'.repeat(4000)}`,
    ];
    // Raw bytes: a URL-parsing client would resolve the dot segments itself.
    for (const path of odd) {
      for (const method of ['GET', 'POST']) {
        const raw = await rawExchange(
          adminPort,
          `${method} ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
        );
        assert.equal(statusOf(raw), 404, `${method} ${path}: ${raw}`);
        const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
        assert.match(raw, /content-type: application\/problem\+json/i);
        assert.equal(JSON.parse(body).code, 'GW_ROUTE_NOT_FOUND');
        assertClean(body);
      }
    }
    const raw = await rawExchange(adminPort, 'GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(raw), 404);
  });

  it('answers malformed purge bodies with 400 problem+json', async () => {
    const bodies = [
      '',
      'not json',
      '{"key":',
      '[]',
      'null',
      '"api.example.com/"',
      '42',
      '{}',
      '{"key":1}',
      '{"key":""}',
      '{"prefix":""}',
      '{"prefix":null}',
      '{"key":["a"]}',
      '{"key":"a","prefix":"b"}',
      '{"__proto__":{"key":"a"}}',
      '\uFEFF{"key":"a"}',
      '['.repeat(30_000),
      `{"key":"${'\\ud800'}"`,
      Buffer.from([0x7b, 0x22, 0x6b, 0xff, 0xfe, 0x22, 0x7d]).toString('latin1'),
    ];
    for (const body of bodies) {
      const r = await call(`${admin}/cache/purge`, 'POST', body, { 'content-type': 'application/json' });
      assertProblem(r, 400, 'GW_BAD_REQUEST');
    }
    // Keys are opaque strings: traversal-looking or binary ones purge nothing and break nothing.
    for (const key of ['../../etc/passwd', '\u0000', '*', '.*', '%2e%2e/']) {
      const r = await call(`${admin}/cache/purge`, 'POST', JSON.stringify({ key }));
      assert.equal(r.status, 200, r.body);
      assert.deepEqual(JSON.parse(r.body), { purged: 0 });
    }
    const prefix = await call(`${admin}/cache/purge`, 'POST', JSON.stringify({ prefix: '../' }));
    assert.deepEqual(JSON.parse(prefix.body), { purged: 0 });
  });

  it('bounds bodies: 413 delivered for a declared or streamed body over 64 KiB, and the API lives on', async () => {
    const big = Buffer.alloc(1024 * 1024, 0x61);
    const declared = await call(`${admin}/cache/purge`, 'POST', big, { 'content-type': 'application/json' });
    assertProblem(declared, 413, 'GW_BODY_TOO_LARGE');
    // Chunked, with no length: refused once the limit is crossed.
    const chunked = await new Promise<Reply>((resolve, reject) => {
      const req = request(`${admin}/cache/purge`, { method: 'POST', agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
      });
      req.setTimeout(10_000, () => req.destroy(new Error('no answer')));
      req.on('error', reject);
      for (let i = 0; i < 16; i++) req.write(Buffer.alloc(16 * 1024, 0x20));
      req.end();
    });
    assertProblem(chunked, 413, 'GW_BODY_TOO_LARGE');
    // /reload takes no body: one is drained and ignored, and the connection stays usable.
    assert.equal((await call(`${admin}/healthz`)).status, 200);
  });

  it('reports a broken config on reload as 400 problem+json without file paths or stacks', async () => {
    const text = await readFile(p.configPath, 'utf8');
    await writeFile(p.configPath, 'listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]\nroutes: [ oops');
    try {
      const bad = await call(`${admin}/reload`, 'POST');
      assertProblem(bad, 400, 'GW_BAD_REQUEST');
    } finally {
      await writeFile(p.configPath, text);
    }
    assert.equal((await call(`${admin}/healthz`)).status, 200);
  });

  // --- 4. secrets ---

  it('shows /config with every secret-bearing field redacted', async () => {
    const r = await call(`${admin}/config`);
    assert.equal(r.status, 200);
    for (const [name, value] of Object.entries(SECRETS)) {
      assert.ok(!r.body.includes(value), `${name} leaked in /config`);
    }
    assert.doesNotMatch(r.body, /PRIVATE KEY/, 'a TLS private key leaked');
    for (const file of ['server.key', 'client.key']) {
      const pem = (await readFile(join(tlsDir, file), 'utf8')).split('\n')[1]!;
      assert.ok(!r.body.includes(pem), `${file} leaked`);
    }
    // biome-ignore lint/suspicious/noExplicitAny: the redacted tree is read by known paths
    const cfg = JSON.parse(r.body) as Record<string, any>;
    assert.equal(cfg.consumers[0].basicAuth[0].username, 'ops', 'non-secrets stay readable');
    assert.equal(cfg.state.url, 'redis://[redacted]@127.0.0.1:9/0');
  });

  // --- 5. metrics ---

  it('keeps metric series bounded and well-formed whatever paths, hosts and methods clients send', async () => {
    const count = (text: string) => text.split('\n').filter((l) => l.startsWith('portico_')).length;
    const before = (await call(`${admin}/metrics`)).body;
    const port = p.port();
    const evil = ['"', '\\', '}', '{', '\n', '\r', ',', '='];
    const rnd = () => Math.random().toString(36).slice(2, 10);
    let next = 0;
    const N = 2000;
    const worker = async () => {
      while (next < N) {
        const i = next++;
        const junk = evil[i % evil.length]!;
        const method = i % 4 === 0 ? `X${rnd().toUpperCase()}` : 'GET';
        // Quotes, braces and CR/LF travel percent-encoded in the path and raw (where parsers allow) in Host.
        const path = `/p${i}-${rnd()}/${encodeURIComponent(`${junk}"} evil{x="1"}\n# TYPE x counter`)}`;
        const host = i % 3 === 0 ? `h${i}-${rnd()}.example` : `h"}${i}.example`;
        const raw = `${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;
        const reply = await rawExchange(port, raw, 5000);
        assert.ok(statusOf(reply) > 0, `no reply to ${JSON.stringify(raw)}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const after = (await call(`${admin}/metrics`)).body;
    assert.ok(count(after) - count(before) < 60, `series grew from ${count(before)} to ${count(after)}`);
    for (const line of after.split('\n')) {
      if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
      assert.match(
        line,
        /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\["\\n])*",?)*\})? \S+$/,
        line,
      );
    }
    assert.ok(!after.includes('evil'), 'client input in a label value');
    assert.ok(!after.includes('.example'), 'a client host in a label value');
  });

  // --- 6. isolation from the data plane ---

  /** Requests held at once (under the default per-target connection limit, so none queue). */
  const HANGING = 100;

  it('keeps answering /healthz, /metrics and /upstreams while 100 requests hang on an upstream', async () => {
    const sockets = Array.from({ length: HANGING }, (_, i) =>
      rawExchange(p.port(), `GET /hang/${i} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`, 20_000),
    );
    // Wait (bounded) until the upstream holds them all.
    for (let i = 0; i < 200 && held.length < HANGING; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(held.length, HANGING, 'the hanging upstream did not receive every request');
    const h = await call(`${admin}/healthz`, 'GET', undefined, {}, 5000);
    assert.equal(h.status, 200);
    assert.equal((await call(`${admin}/ready`, 'GET', undefined, {}, 5000)).status, 200);
    const m = await call(`${admin}/metrics`, 'GET', undefined, {}, 5000);
    assert.equal(sample(m.body, 'portico_upstream_active_requests{upstream="hang"}'), HANGING);
    const u = JSON.parse((await call(`${admin}/upstreams`, 'GET', undefined, {}, 5000)).body) as {
      upstreams: Array<{ name: string; active: number }>;
    };
    assert.equal(u.upstreams.find((x) => x.name === 'hang')!.active, HANGING);
    for (const release of held.splice(0)) release();
    const replies = await Promise.all(sockets);
    assert.ok(replies.every((r) => statusOf(r) === 200));
  });
});
