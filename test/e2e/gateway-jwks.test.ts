/**
 * @module End to end: `jwt-auth` with a real JWKS server on loopback, through the real process — key rotation
 * (a new `kid` is fetched on first sight), a retired or unknown `kid` is 401, and while the JWKS server is down
 * known keys still pass and tokens for unknown keys get 503 `GW_AUTH_UNAVAILABLE` (not 401).
 */

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { startEchoUpstream, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { freePort } from '../helpers/ports.ts';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

interface SigningKey {
  readonly kid: string;
  readonly privateKey: PrivateKey;
  readonly jwk: JWK;
}

async function signingKey(kid: string): Promise<SigningKey> {
  const pair = await generateKeyPair('ES256');
  return {
    kid,
    privateKey: pair.privateKey,
    jwk: { ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256', use: 'sig' },
  };
}

const ISSUER = 'https://issuer.test';

function token(key: SigningKey): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: key.kid })
    .setIssuer(ISSUER)
    .setAudience('orders')
    .setSubject('user-1')
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key.privateKey);
}

/** A JWKS endpoint whose key set the test changes, and that it can take down and bring back on its port. */
class JwksServer {
  keys: JWK[] = [];
  fetches = 0;
  port = 0;
  #server: Server | undefined;

  async start(port = 0): Promise<void> {
    const server = createServer((_req, res) => {
      this.fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: this.keys }));
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    this.#server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  }
}

describe('jwt-auth with a real JWKS server', () => {
  let echo: TestServer;
  let p: PorticoProcess;
  const jwks = new JwksServer();
  let k1: SigningKey;
  let k2: SigningKey;
  let k3: SigningKey;
  let stranger: SigningKey;

  before(async () => {
    [k1, k2, k3, stranger] = await Promise.all([
      signingKey('k1'),
      signingKey('k2'),
      signingKey('k3'),
      signingKey('k9'),
    ]);
    echo = await startEchoUpstream('api');
    jwks.keys = [k1.jwk];
    await jwks.start();
    const dead = await freePort();
    // jwksCooldown 0: every unknown kid refetches, so the test never depends on how much time has passed.
    p = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: api, targets: [ { url: ${echo.url} } ] } ]
policies:
  jwt: { type: jwt-auth, jwksUrl: "http://127.0.0.1:${jwks.port}/jwks.json", issuer: "${ISSUER}", audience: orders, jwksCooldown: 0, jwksTimeout: 2s }
  never-up: { type: jwt-auth, jwksUrl: "http://127.0.0.1:${dead}/jwks.json", issuer: "${ISSUER}", audience: orders, jwksTimeout: 2s }
routes:
  - { name: jwt, match: { path: /jwt/* }, policies: [jwt], upstream: api }
  - { name: never-up, match: { path: /never-up/* }, policies: [never-up], upstream: api }
`);
  });

  after(async () => {
    await p?.stop();
    await jwks.stop();
    await echo?.close();
  });

  async function call(path: string, key: SigningKey): Promise<{ status: number; code?: string; auth: string | null }> {
    const res = await fetch(`${p.url()}${path}`, {
      headers: { authorization: `Bearer ${await token(key)}` },
      signal: AbortSignal.timeout(5000),
    });
    const text = await res.text();
    const code = res.status === 200 ? undefined : (JSON.parse(text) as { code: string }).code;
    return { status: res.status, code, auth: res.headers.get('www-authenticate') };
  }

  it('fetches the keys on first use and accepts a token they verify', async () => {
    assert.equal((await call('/jwt/x', k1)).status, 200);
    assert.equal(jwks.fetches, 1);
    assert.equal((await call('/jwt/x', k1)).status, 200);
    assert.equal(jwks.fetches, 1, 'a known kid needs no fetch');
  });

  it('rotation: a token with the new kid passes after one refetch; the retired kid is then 401', async () => {
    jwks.keys = [k2.jwk];
    assert.equal((await call('/jwt/x', k2)).status, 200);
    assert.equal(jwks.fetches, 2);
    const retired = await call('/jwt/x', k1);
    assert.equal(retired.status, 401);
    assert.equal(retired.code, 'GW_AUTH_INVALID');
  });

  it('an unknown kid is 401 with WWW-Authenticate while the JWKS answers', async () => {
    const before = jwks.fetches;
    const r = await call('/jwt/x', stranger);
    assert.equal(r.status, 401);
    assert.equal(r.code, 'GW_AUTH_INVALID');
    assert.match(r.auth ?? '', /^Bearer .*error="invalid_token"/);
    assert.equal(jwks.fetches, before + 1, 'it looked the kid up before refusing');
  });

  it('while the JWKS server is down: known keys pass, unknown keys are 503 GW_AUTH_UNAVAILABLE', async () => {
    const port = jwks.port;
    await jwks.stop();
    assert.equal((await call('/jwt/x', k2)).status, 200, 'the cached key still verifies');
    const unknown = await call('/jwt/x', k3);
    assert.equal(unknown.status, 503);
    assert.equal(unknown.code, 'GW_AUTH_UNAVAILABLE');
    assert.equal((await call('/jwt/x', k2)).status, 200, 'a failed refetch keeps the last keys');
    await p.waitFor((l) => l.msg === 'jwks: fetch failed; keeping the last keys' && l.stale === true, 5000);

    // Back up with the next key published: it is fetched and accepted.
    jwks.keys = [k2.jwk, k3.jwk];
    await jwks.start(port);
    assert.equal((await call('/jwt/x', k3)).status, 200);
    assert.equal((await call('/jwt/x', k2)).status, 200);
  });

  it('a JWKS endpoint that never answered: 503 GW_AUTH_UNAVAILABLE, not 401', async () => {
    const r = await call('/never-up/x', k1);
    assert.equal(r.status, 503);
    assert.equal(r.code, 'GW_AUTH_UNAVAILABLE');
    assert.equal(p.child.exitCode, null);
  });
});
