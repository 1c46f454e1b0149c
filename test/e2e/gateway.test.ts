/**
 * End to end: gateway policies through the real process — API keys, JWT (with a real JWKS server), basic
 * auth, ACL, rate limits, CORS preflights, JSON transforms, validation, and identity headers that clients
 * cannot spoof.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { startEchoUpstream, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';

interface Echo {
  url: string;
  headers: Record<string, string>;
  body: string;
}

describe('gateway policies', () => {
  let echo: TestServer;
  let jwks: import('node:http').Server;
  let p: PorticoProcess;
  let privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  const issuer = 'https://issuer.test';

  before(async () => {
    echo = await startEchoUpstream('api');
    const pair = await generateKeyPair('ES256');
    privateKey = pair.privateKey;
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    jwks = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    jwks.listen(0, '127.0.0.1');
    await once(jwks, 'listening');
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`;
    p = await startPortico(
      `
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: api, targets: [ { url: ${echo.url} } ] } ]
consumers:
  - { name: acme, apiKeys: [ "\${ACME_KEY}" ], groups: [gold] }
  - { name: bob, apiKeys: [ bob-key-000000000000 ], groups: [free] }
  - { name: carol, jwt: { claim: sub, value: carol-1 }, groups: [gold] }
policies:
  key: { type: api-key, header: x-api-key }
  jwt: { type: jwt-auth, jwksUrl: "${jwksUrl}", issuer: "${issuer}", audience: orders, forwardClaims: { sub: x-user-id } }
  gold-only: { type: acl, allow: [gold] }
  limit: { type: rate-limit, limit: 3, per: 1m, key: consumer }
  cors: { type: cors, origins: [ "https://app.example.com" ], methods: [GET, POST], credentials: true }
  shape:
    type: transform
    request: { body: { drop: [internal], set: { caller: "{{consumer.name}}" } } }
    response: { body: { wrap: data } }
  shape-small: { type: transform, maxBodySize: 64B, response: { body: { wrap: data } } }
  check:
    type: validate
    body: { type: object, required: [name], properties: { name: { type: string }, qty: { type: integer, minimum: 1 } } }
routes:
  - { name: keyed, match: { path: /keyed/* }, policies: [key], upstream: api }
  - { name: either, match: { path: /either/* }, policies: [key, jwt], upstream: api }
  - { name: gold, match: { path: /gold/* }, policies: [key, gold-only], upstream: api }
  - { name: limited, match: { path: /limited/* }, policies: [key, limit], upstream: api }
  - { name: cors, match: { path: /cors/* }, policies: [cors, key], upstream: api }
  - { name: shaped, match: { path: /shaped/* }, policies: [key, shape], upstream: api }
  - { name: shaped-small, match: { path: /shaped-small/* }, policies: [shape-small], upstream: api }
  - { name: checked, match: { path: /checked/* }, policies: [check], upstream: api }
`,
      { env: { ACME_KEY: 'acme-secret-key-123456' } },
    );
  });

  after(async () => {
    await p?.stop();
    jwks?.close();
    await echo?.close();
  });

  const token = (sub: string, audience = 'orders') =>
    new SignJWT({ scope: 'read' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(privateKey);

  it('api-key: 401 with WWW-Authenticate without a key, 401 for a wrong one, 200 and identity for a right one', async () => {
    const none = await fetch(`${p.url()}/keyed/x`);
    assert.equal(none.status, 401);
    assert.ok(none.headers.get('www-authenticate'));
    assert.equal(((await none.json()) as { code: string }).code, 'GW_AUTH_MISSING');
    const wrong = await fetch(`${p.url()}/keyed/x`, { headers: { 'x-api-key': 'nope' } });
    assert.equal(wrong.status, 401);
    assert.equal(((await wrong.json()) as { code: string }).code, 'GW_AUTH_INVALID');
    const ok = await fetch(`${p.url()}/keyed/x`, { headers: { 'x-api-key': 'acme-secret-key-123456' } });
    assert.equal(ok.status, 200);
    const body = (await ok.json()) as Echo;
    assert.equal(body.headers['x-consumer'], 'acme');
    assert.equal(body.headers['x-consumer-groups'], 'gold');
    assert.equal(body.headers['x-api-key'], undefined, 'the key is not forwarded');
  });

  it('strips identity headers a client sends', async () => {
    const res = await fetch(`${p.url()}/keyed/x`, {
      headers: { 'x-api-key': 'bob-key-000000000000', 'x-consumer': 'acme', 'x-consumer-groups': 'admin' },
    });
    const body = (await res.json()) as Echo;
    assert.equal(body.headers['x-consumer'], 'bob');
    assert.equal(body.headers['x-consumer-groups'], 'free');
  });

  it('jwt-auth with a real JWKS: a valid token passes, a wrong audience fails; any one method suffices', async () => {
    const good = await fetch(`${p.url()}/either/x`, { headers: { authorization: `Bearer ${await token('carol-1')}` } });
    assert.equal(good.status, 200);
    const body = (await good.json()) as Echo;
    assert.equal(body.headers['x-user-id'], 'carol-1');
    assert.equal(body.headers['x-consumer'], 'carol');
    const badAud = await fetch(`${p.url()}/either/x`, {
      headers: { authorization: `Bearer ${await token('carol-1', 'billing')}` },
    });
    assert.equal(badAud.status, 401);
    const byKey = await fetch(`${p.url()}/either/x`, { headers: { 'x-api-key': 'acme-secret-key-123456' } });
    assert.equal(byKey.status, 200);
    const spoofed = await fetch(`${p.url()}/either/x`, {
      headers: { 'x-api-key': 'acme-secret-key-123456', 'x-user-id': 'root' },
    });
    assert.equal(((await spoofed.json()) as Echo).headers['x-user-id'], undefined);
  });

  it('acl: 403 for a consumer outside the allowed groups', async () => {
    const bob = await fetch(`${p.url()}/gold/x`, { headers: { 'x-api-key': 'bob-key-000000000000' } });
    assert.equal(bob.status, 403);
    assert.equal(((await bob.json()) as { code: string }).code, 'GW_FORBIDDEN');
    const acme = await fetch(`${p.url()}/gold/x`, { headers: { 'x-api-key': 'acme-secret-key-123456' } });
    assert.equal(acme.status, 200);
  });

  it('rate-limit: admits the limit, then 429 with Retry-After and RateLimit headers', async () => {
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 5; i++) {
      last = await fetch(`${p.url()}/limited/x`, { headers: { 'x-api-key': 'bob-key-000000000000' } });
      statuses.push(last.status);
      await last.text();
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    assert.ok(last!.headers.get('retry-after'));
    assert.ok(last!.headers.get('ratelimit-policy'));
    const other = await fetch(`${p.url()}/limited/x`, { headers: { 'x-api-key': 'acme-secret-key-123456' } });
    assert.equal(other.status, 200, 'limits are per consumer');
  });

  it('cors: answers an allowed preflight itself and refuses a foreign origin', async () => {
    const pre = await fetch(`${p.url()}/cors/x`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example.com');
    assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
    const foreign = await fetch(`${p.url()}/cors/x`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(foreign.status, 403);
    const simple = await fetch(`${p.url()}/cors/x`, {
      headers: { origin: 'https://app.example.com', 'x-api-key': 'acme-secret-key-123456' },
    });
    assert.equal(simple.status, 200);
    assert.equal(simple.headers.get('access-control-allow-origin'), 'https://app.example.com');
    const denied = await fetch(`${p.url()}/cors/x`, { headers: { origin: 'https://app.example.com' } });
    assert.equal(denied.status, 401);
    assert.equal(denied.headers.get('access-control-allow-origin'), 'https://app.example.com', 'errors stay readable');
  });

  it('transform: rewrites the JSON request body and wraps the response', async () => {
    const res = await fetch(`${p.url()}/shaped/x`, {
      method: 'POST',
      headers: { 'x-api-key': 'acme-secret-key-123456', 'content-type': 'application/json' },
      body: JSON.stringify({ item: 'book', internal: 'secret' }),
    });
    assert.equal(res.status, 200);
    const wrapped = (await res.json()) as { data: Echo };
    const sent = JSON.parse(wrapped.data.body) as Record<string, unknown>;
    assert.deepEqual(sent, { item: 'book', caller: 'acme' });
    assert.equal(res.headers.get('content-length'), String(JSON.stringify(wrapped).length));
  });

  it('transform: a response body over the policy limit is a 502, never a cut or unshaped body', async () => {
    const res = await fetch(`${p.url()}/shaped-small/a-path-long-enough-for-the-echo-to-pass-64-bytes`);
    assert.equal(res.status, 502);
    assert.equal(((await res.json()) as { code: string }).code, 'GW_UPSTREAM_BODY_TOO_LARGE');
  });

  it('validate: 400 listing every violation with its JSON pointer; valid bodies pass', async () => {
    const bad = await fetch(`${p.url()}/checked/x`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ qty: 0 }),
    });
    assert.equal(bad.status, 400);
    const problem = (await bad.json()) as { code: string; errors: Array<{ pointer: string }> };
    assert.equal(problem.code, 'GW_VALIDATION_FAILED');
    const pointers = problem.errors.map((e) => e.pointer).sort();
    assert.deepEqual(pointers, ['/body/name', '/body/qty']);
    const good = await fetch(`${p.url()}/checked/x`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'x', qty: 2 }),
    });
    assert.equal(good.status, 200);
  });

  it('logs the consumer in the access log', async () => {
    await (await fetch(`${p.url()}/keyed/logme`, { headers: { 'x-api-key': 'acme-secret-key-123456' } })).text();
    const line = await p.waitFor((l) => l.msg === 'request' && l.path === '/keyed/logme');
    assert.equal(line.status, 200);
  });
});
