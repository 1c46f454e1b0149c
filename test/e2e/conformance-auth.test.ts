/**
 * End to end, the authentication policies against hostile input, as an Envoy or Kong user (and a security
 * reviewer) would probe them: JWT per RFC 7519 / 7515 / 8725 (`alg: none`, algorithm confusion, unknown `kid`
 * without a fetch storm, `exp` / `nbf` leeway, `iss` / `aud`, malformed tokens, `crit`), a JWKS endpoint that is
 * down, slow, garbled or huge, API keys, Basic credentials (RFC 7617) and token introspection (RFC 7662).
 * Every refusal must be a 401 problem+json with the scheme's challenge (RFC 6750 §3, RFC 7617 §2) and must
 * never reach the upstream. Real portico process, real node:http upstream, JWKS and introspection servers.
 */
import assert from 'node:assert/strict';
import { createHmac, createSecretKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportJWK, SignJWT } from 'jose';
import { fetchRaw, rawExchange, startEchoUpstream, statusOf, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, runPortico, startPortico } from '../helpers/portico.ts';

const ISSUER = 'https://issuer.test';
const SECRET = 'conformance-hmac-secret-0123456789abcdef';
const API_KEY = 'Acme-Key-0123456789';

// --- client ---

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One request on a fresh connection; `headers` as a flat list may repeat a field. */
function call(
  base: string,
  path: string,
  headers: Record<string, string> | string[] = {},
  timeoutMs = 15_000,
): Promise<Reply> {
  return fetchRaw(`${base}${path}`, { headers, timeoutMs });
}

function codeOf(r: Reply): string | undefined {
  if (r.status === 200) return undefined;
  return (JSON.parse(r.body) as { code?: string }).code;
}

// --- tokens ---

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** A token signed by hand with HMAC-SHA256 under `secret` (any bytes), whatever its header says. */
function hs256(header: object, payload: object, secret: string | Buffer): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

const now = () => Math.floor(Date.now() / 1000);

function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { iss: ISSUER, aud: 'orders', sub: 'user-1', iat: now(), exp: now() + 300, ...extra };
}

function sign(
  key: KeyObject,
  alg: string,
  payload: Record<string, unknown> = claims(),
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg, ...header }).sign(key);
}

// --- servers ---

/** A node:http server on 127.0.0.1:0 whose held (never answered) responses are released when it stops. */
class TestEndpoint {
  url = '';
  #server: Server | undefined;
  protected readonly held: ServerResponse[] = [];

  protected async listen(server: Server, path: string): Promise<void> {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    this.#server = server;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`;
  }

  async stop(): Promise<void> {
    for (const res of this.held) res.destroy();
    const server = this.#server;
    if (server === undefined) return;
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  }
}

/** A JWKS endpoint whose behaviour the test switches, counting every request. */
class JwksServer extends TestEndpoint {
  mode: 'ok' | 'slow' | 'garbage' | 'huge' | 'error' = 'ok';
  keys: object[] = [];
  fetches = 0;

  async start(): Promise<void> {
    const server = createServer((_req, res) => {
      this.fetches++;
      switch (this.mode) {
        case 'slow':
          this.held.push(res); // never answers; released on close
          return;
        case 'garbage':
          res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys": [ <html>');
          return;
        case 'huge': {
          // A valid JWK set padded with 4 MiB of whitespace: the size, not the syntax, must stop it.
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write(' '.repeat(4 * 1024 * 1024));
          res.end(JSON.stringify({ keys: this.keys }));
          res.on('error', () => {});
          return;
        }
        case 'error':
          res.writeHead(500).end();
          return;
        default:
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.keys }));
      }
    });
    await this.listen(server, '/jwks.json');
  }
}

/** An RFC 7662 endpoint: answers per token from `answers`, or fails as `mode` says. */
class IntrospectionServer extends TestEndpoint {
  mode: 'ok' | 'error' | 'slow' | 'garbage' | 'huge' = 'ok';
  answers = new Map<string, Record<string, unknown>>();
  calls: string[] = [];

  async start(): Promise<void> {
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const token = new URLSearchParams(Buffer.concat(chunks).toString()).get('token') ?? '';
        this.calls.push(token);
        if (this.mode === 'slow') {
          this.held.push(res);
          return;
        }
        if (this.mode === 'error') {
          res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"server_error"}');
          return;
        }
        if (this.mode === 'garbage') {
          res.writeHead(200, { 'content-type': 'application/json' }).end('<html>not json');
          return;
        }
        if (this.mode === 'huge') {
          // A valid, active answer padded past the 1 MiB cap: refused, never buffered whole.
          const pad = 'x'.repeat(2 * 1024 * 1024);
          res.writeHead(200, { 'content-type': 'application/json' }).end(`{"active":true,"sub":"u","pad":"${pad}"}`);
          return;
        }
        const answer = this.answers.get(token) ?? { active: false };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
      });
    });
    await this.listen(server, '/introspect');
  }
}

describe('authentication policies against hostile input', () => {
  let echo: TestServer;
  let p: PorticoProcess;
  let dir: string;
  let pemPath: string;
  const jwks = new JwksServer();
  const flaky = new JwksServer();
  const introspection = new IntrospectionServer();
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ecOther = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const hmacKey = createSecretKey(Buffer.from(SECRET));
  let rsaPem: string;
  let ecJwk: Record<string, unknown>;

  before(async () => {
    rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' }).toString();
    ecJwk = { ...(await exportJWK(ec.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    dir = await mkdtemp(join(tmpdir(), 'portico-auth-'));
    pemPath = join(dir, 'rsa.pem');
    await writeFile(pemPath, rsaPem);
    echo = await startEchoUpstream('api');
    jwks.keys = [ecJwk];
    flaky.keys = [ecJwk];
    await Promise.all([jwks.start(), flaky.start(), introspection.start()]);
    p = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: api, targets: [ { url: ${echo.url} } ] } ]
consumers:
  - { name: acme, apiKeys: [ "${API_KEY}" ], basicAuth: [ { username: alice, password: "correct horse" } ] }
policies:
  rsa: { type: jwt-auth, publicKey: "file:${pemPath}", issuer: "${ISSUER}", audience: orders, token: { bearer: true, cookie: session } }
  hs: { type: jwt-auth, secret: "${SECRET}", algorithms: [HS256], issuer: [ "${ISSUER}", "https://other.test" ], audience: [orders, billing] }
  strict: { type: jwt-auth, secret: "${SECRET}", clockSkew: 0 }
  jwks: { type: jwt-auth, jwksUrl: "${jwks.url}", issuer: "${ISSUER}", audience: orders, jwksTimeout: 1s }
  flaky: { type: jwt-auth, jwksUrl: "${flaky.url}", issuer: "${ISSUER}", audience: orders, jwksCooldown: 0, jwksTimeout: 500ms }
  key: { type: api-key }
  key-q: { type: api-key, query: api_key }
  key-hq: { type: api-key, header: x-api-key, query: api_key }
  basic: { type: basic-auth, realm: admin }
  introspect: { type: oauth2-introspection, url: "${introspection.url}", clientId: portico, clientSecret: s3cret, cacheTtl: 2s, inactiveTtl: 0, timeout: 500ms }
routes:
  - { name: rsa, match: { path: /rsa/* }, policies: [rsa], upstream: api }
  - { name: hs, match: { path: /hs/* }, policies: [hs], upstream: api }
  - { name: strict, match: { path: /strict/* }, policies: [strict], upstream: api }
  - { name: jwks, match: { path: /jwks/* }, policies: [jwks], upstream: api }
  - { name: flaky, match: { path: /flaky/* }, policies: [flaky], upstream: api }
  - { name: key, match: { path: /key/* }, policies: [key], upstream: api }
  - { name: key-q, match: { path: /key-q/* }, policies: [key-q], upstream: api }
  - { name: key-hq, match: { path: /key-hq/* }, policies: [key-hq], upstream: api }
  - { name: basic, match: { path: /basic/* }, policies: [basic], upstream: api }
  - { name: introspect, match: { path: /introspect/* }, policies: [introspect], upstream: api }
`);
  });

  after(async () => {
    await p?.stop();
    await Promise.all([jwks.stop(), flaky.stop(), introspection.stop()]);
    await echo?.close();
  });

  /** Asserts a refusal: 401 problem+json, the challenge, and nothing sent upstream. */
  async function refused(
    path: string,
    headers: Record<string, string> | string[],
    challenge: RegExp,
    what: string,
  ): Promise<Reply> {
    const before = echo.seen.length;
    const r = await call(p.url(), path, headers);
    assert.equal(r.status, 401, `${what}: status (body ${r.body.slice(0, 200)})`);
    assert.match(String(r.headers['content-type']), /^application\/problem\+json/, `${what}: content-type`);
    assert.match(String(r.headers['www-authenticate']), challenge, `${what}: WWW-Authenticate`);
    assert.match(codeOf(r) ?? '', /^GW_AUTH_(INVALID|MISSING)$/, `${what}: code`);
    assert.equal(echo.seen.length, before, `${what}: must not reach the upstream`);
    return r;
  }

  const bearerInvalid = /^Bearer realm="portico", error="invalid_token"$/;
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

  describe('JWT (RFC 7519, RFC 7515, RFC 8725)', () => {
    it('control: a well-formed token passes on every JWT route', async () => {
      assert.equal((await call(p.url(), '/rsa/x', bearer(await sign(rsa.privateKey, 'RS256')))).status, 200);
      assert.equal((await call(p.url(), '/hs/x', bearer(await sign(hmacKey, 'HS256')))).status, 200);
      assert.equal(
        (await call(p.url(), '/jwks/x', bearer(await sign(ec.privateKey, 'ES256', claims(), { kid: 'k1' })))).status,
        200,
      );
    });

    it('alg "none" (any spelling, with or without a signature) is refused', async () => {
      for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
        const unsigned = `${b64({ alg, typ: 'JWT' })}.${b64(claims())}.`;
        const signed = `${unsigned}${createHmac('sha256', SECRET).update(unsigned.slice(0, -1)).digest('base64url')}`;
        for (const route of ['/rsa/x', '/hs/x', '/jwks/x']) {
          await refused(route, bearer(unsigned), bearerInvalid, `${alg} unsigned on ${route}`);
          await refused(route, bearer(signed), bearerInvalid, `${alg} signed on ${route}`);
        }
      }
    });

    it('algorithm confusion: HS256 signed with the public key as HMAC secret is refused', async () => {
      // The PEM text, its DER bytes, and the JWK JSON: every form a naive library might use as the secret.
      const der = rsa.publicKey.export({ type: 'spki', format: 'der' });
      for (const secret of [rsaPem, rsaPem.trim(), der]) {
        await refused(
          '/rsa/x',
          bearer(hs256({ alg: 'HS256', typ: 'JWT' }, claims(), secret)),
          bearerInvalid,
          'rsa pem',
        );
      }
      const jwkText = JSON.stringify(ecJwk);
      for (const secret of [jwkText, ec.publicKey.export({ type: 'spki', format: 'pem' }) as string]) {
        await refused('/jwks/x', bearer(hs256({ alg: 'HS256', kid: 'k1' }, claims(), secret)), bearerInvalid, 'jwks');
      }
    });

    it('an algorithm outside the configured list is refused even with the right key', async () => {
      // `hs` allows HS256 only; HS512 and HS384 with the very same secret are refused.
      for (const alg of ['HS384', 'HS512']) {
        await refused('/hs/x', bearer(await sign(hmacKey, alg)), bearerInvalid, alg);
      }
      // Without `algorithms`, a publicKey allows only what it can verify: an ES256 token is refused on an RSA key.
      await refused('/rsa/x', bearer(await sign(ec.privateKey, 'ES256')), bearerInvalid, 'ES256 on RSA');
    });

    it('an unknown kid is 401 and causes at most one JWKS refetch over 50 tokens (no fetch storm)', async () => {
      // Warm the cache with a good token, then 50 tokens naming kids the JWKS does not have.
      assert.equal(
        (await call(p.url(), '/jwks/x', bearer(await sign(ec.privateKey, 'ES256', claims(), { kid: 'k1' })))).status,
        200,
      );
      const before = jwks.fetches;
      for (let i = 0; i < 50; i++) {
        const t = await sign(ecOther.privateKey, 'ES256', claims(), { kid: `unknown-${i}` });
        await refused('/jwks/x', bearer(t), bearerInvalid, `kid ${i}`);
      }
      // Concurrent ones too.
      const burst = await Promise.all(
        Array.from({ length: 20 }, async (_, i) =>
          call(p.url(), '/jwks/x', bearer(await sign(ecOther.privateKey, 'ES256', claims(), { kid: `burst-${i}` }))),
        ),
      );
      assert.deepEqual([...new Set(burst.map((r) => r.status))], [401]);
      assert.ok(jwks.fetches - before <= 1, `JWKS fetched ${jwks.fetches - before} times for 70 unknown kids`);
      // A known kid with a signature by another key is a bad signature, and causes no fetch either.
      await refused(
        '/jwks/x',
        bearer(await sign(ecOther.privateKey, 'ES256', claims(), { kid: 'k1' })),
        bearerInvalid,
        'forged k1',
      );
      assert.ok(jwks.fetches - before <= 1);
    });

    it('exp and nbf: honoured with the documented 30s default leeway, and exactly with clockSkew: 0', async () => {
      const rs = (c: Record<string, unknown>) => sign(rsa.privateKey, 'RS256', claims(c));
      const hs = (c: Record<string, unknown>) => sign(hmacKey, 'HS256', claims(c));
      // Within the 30s default skew: accepted.
      assert.equal((await call(p.url(), '/rsa/x', bearer(await rs({ exp: now() - 5 })))).status, 200);
      assert.equal((await call(p.url(), '/rsa/x', bearer(await rs({ nbf: now() + 5 })))).status, 200);
      // Beyond it: refused.
      await refused('/rsa/x', bearer(await rs({ exp: now() - 120 })), bearerInvalid, 'expired beyond skew');
      await refused('/rsa/x', bearer(await rs({ nbf: now() + 120 })), bearerInvalid, 'nbf beyond skew');
      // No leeway: just expired or not yet valid is refused.
      await refused('/strict/x', bearer(await hs({ exp: now() - 3 })), bearerInvalid, 'strict exp');
      await refused('/strict/x', bearer(await hs({ nbf: now() + 5 })), bearerInvalid, 'strict nbf');
      // Claims of the wrong type are malformed, not "no expiry".
      await refused('/rsa/x', bearer(await rs({ exp: String(now() + 300) })), bearerInvalid, 'exp as a string');
      await refused('/rsa/x', bearer(await rs({ nbf: 'soon' })), bearerInvalid, 'nbf as a string');
    });

    it('iss and aud: wrong values refused; aud as a string or an array', async () => {
      const rs = (c: Record<string, unknown>) => sign(rsa.privateKey, 'RS256', claims(c));
      const hs = (c: Record<string, unknown>) => sign(hmacKey, 'HS256', claims(c));
      await refused('/rsa/x', bearer(await rs({ iss: 'https://evil.test' })), bearerInvalid, 'wrong iss');
      await refused('/rsa/x', bearer(await rs({ iss: `${ISSUER}/` })), bearerInvalid, 'iss with a trailing slash');
      await refused('/rsa/x', bearer(await rs({ iss: undefined })), bearerInvalid, 'no iss');
      await refused('/rsa/x', bearer(await rs({ aud: 'billing' })), bearerInvalid, 'wrong aud');
      await refused('/rsa/x', bearer(await rs({ aud: ['billing', 'shipping'] })), bearerInvalid, 'wrong aud array');
      await refused('/rsa/x', bearer(await rs({ aud: 'ORDERS' })), bearerInvalid, 'aud differing in case');
      await refused('/rsa/x', bearer(await rs({ aud: undefined })), bearerInvalid, 'no aud');
      assert.equal((await call(p.url(), '/rsa/x', bearer(await rs({ aud: ['billing', 'orders'] })))).status, 200);
      // Configured lists: any one of them.
      assert.equal(
        (await call(p.url(), '/hs/x', bearer(await hs({ aud: 'billing', iss: 'https://other.test' })))).status,
        200,
      );
      assert.equal((await call(p.url(), '/hs/x', bearer(await hs({ aud: ['x', 'billing'] })))).status, 200);
      await refused('/hs/x', bearer(await hs({ aud: ['x', 'y'] })), bearerInvalid, 'no listed aud');
      await refused('/hs/x', bearer(await hs({ iss: 'https://evil.test' })), bearerInvalid, 'unlisted iss');
    });

    it('malformed tokens: bad base64url, 2 or 4 segments, huge header, non-JSON payload, unknown crit', async () => {
      const good = await sign(hmacKey, 'HS256');
      const [h, pl, s] = good.split('.') as [string, string, string];
      const sigOf = (input: string) => createHmac('sha256', SECRET).update(input).digest('base64url');
      const cases: Array<[string, string]> = [
        ['two segments', `${h}.${pl}`],
        ['four segments', `${good}.${s}`],
        ['one segment', h],
        ['empty segments', '..'],
        ['bad base64url in the header', `${h.slice(0, -2)}*!.${pl}.${s}`],
        ['base64 (not url) padding in the payload', `${h}.${pl}==.${s}`],
        ['bad base64url in the signature', `${h}.${pl}.${s.slice(0, -3)}%%%`],
        ['header not JSON', `${b64('{alg:HS256')}.${pl}.${s}`],
        ['header a JSON array', `${b64(['HS256'])}.${pl}.${s}`],
        ['payload not JSON', `${h}.${b64('not json')}.${sigOf(`${h}.${b64('not json')}`)}`],
        ['payload a JSON string', `${h}.${b64('"x"')}.${sigOf(`${h}.${b64('"x"')}`)}`],
        ['alg a number', hs256({ alg: 256 }, claims(), SECRET)],
        ['JWE-shaped (5 segments)', `${h}.${pl}.${s}.${s}.${s}`],
      ];
      // A header of ~6 KiB (within the listener's head limit) signed with another secret: just a 401.
      const bigHeader = { alg: 'HS256', typ: 'JWT', x: 'a'.repeat(6000) };
      cases.push(['huge header', hs256(bigHeader, claims(), `${SECRET}-other`)]);
      // RFC 7515 §4.1.11: a critical extension the recipient does not understand makes the JWS invalid.
      cases.push([
        'crit with an unknown extension',
        hs256({ alg: 'HS256', crit: ['x-unknown'], 'x-unknown': 1 }, claims(), SECRET),
      ]);
      cases.push(['crit naming a registered header', hs256({ alg: 'HS256', crit: ['alg'] }, claims(), SECRET)]);
      cases.push(['crit empty', hs256({ alg: 'HS256', crit: [] }, claims(), SECRET)]);
      cases.push(['crit not an array', hs256({ alg: 'HS256', crit: 'x-unknown' }, claims(), SECRET)]);
      cases.push(['b64: false', hs256({ alg: 'HS256', b64: false, crit: ['b64'] }, claims(), SECRET)]);
      for (const [what, t] of cases) await refused('/hs/x', bearer(t), bearerInvalid, what);
      // A header of ~64 KiB is over the head limit: refused by the listener, never a 5xx, never forwarded.
      const before = echo.seen.length;
      const huge = await call(
        p.url(),
        '/hs/x',
        bearer(hs256({ alg: 'HS256', x: 'a'.repeat(70_000) }, claims(), SECRET)),
      );
      assert.ok(huge.status === 431 || huge.status === 401, `huge token: ${huge.status}`);
      assert.equal(echo.seen.length, before);
    });

    it('a token in both the Authorization header and the cookie: the header decides, as documented', async () => {
      const goodT = await sign(rsa.privateKey, 'RS256');
      const badT = await sign(rsa.privateKey, 'RS256', claims({ aud: 'billing' }));
      // A bad header token is not rescued by a good cookie.
      await refused(
        '/rsa/x',
        { authorization: `Bearer ${badT}`, cookie: `session=${goodT}` },
        bearerInvalid,
        'bad header, good cookie',
      );
      // A good header token with a bad cookie passes (the cookie is not looked at).
      assert.equal(
        (await call(p.url(), '/rsa/x', { authorization: `Bearer ${goodT}`, cookie: `session=${badT}` })).status,
        200,
      );
      // The cookie alone works; a bad cookie alone is refused.
      assert.equal((await call(p.url(), '/rsa/x', { cookie: `session=${goodT}` })).status, 200);
      await refused('/rsa/x', { cookie: `session=${badT}` }, bearerInvalid, 'bad cookie');
    });

    it('missing or non-Bearer credentials: 401 with a bare Bearer challenge', async () => {
      const missing = /^Bearer realm="portico"$/;
      await refused('/rsa/x', {}, missing, 'no credentials');
      await refused('/rsa/x', { authorization: 'Basic YTpi' }, missing, 'Basic instead of Bearer');
      await refused('/rsa/x', { authorization: 'Bearer' }, missing, 'Bearer without a token');
      await refused('/rsa/x', { authorization: 'Bearer    ' }, missing, 'Bearer with blanks');
    });

    it('two Authorization lines are refused, not one of them picked silently', async () => {
      const goodT = await sign(rsa.privateKey, 'RS256');
      const badT = await sign(rsa.privateKey, 'RS256', claims({ aud: 'billing' }));
      for (const [first, second] of [
        [goodT, badT],
        [badT, goodT],
        [goodT, goodT],
      ]) {
        const before = echo.seen.length;
        const raw = await rawExchange(
          p.port(),
          `GET /rsa/x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${first}\r\nAuthorization: Bearer ${second}\r\nConnection: close\r\n\r\n`,
        );
        assert.equal(statusOf(raw), 400, `two Authorization lines: ${raw.slice(0, 40)}`);
        assert.match(raw, /"code":"GW_BAD_REQUEST"/);
        assert.equal(echo.seen.length, before, 'never forwarded');
      }
    });
  });

  describe('JWKS endpoint failures', () => {
    const tokenFor = (kid: string, key = ec.privateKey) => sign(key, 'ES256', claims(), { kid });

    it('cached keys keep working while the endpoint is slow, garbled, huge or failing; unknown kids never hang', async () => {
      // Load the cache.
      assert.equal((await call(p.url(), '/flaky/x', bearer(await tokenFor('k1')))).status, 200);
      for (const mode of ['slow', 'garbage', 'huge', 'error'] as const) {
        flaky.mode = mode;
        const fetches = flaky.fetches;
        assert.equal(
          (await call(p.url(), '/flaky/x', bearer(await tokenFor('k1')))).status,
          200,
          `${mode}: cached key`,
        );
        // An unknown kid triggers a refetch (cooldown 0) that fails: 503 within the timeout, not a hang.
        const r = await call(p.url(), '/flaky/x', bearer(await tokenFor('k-new', ecOther.privateKey)));
        assert.equal(r.status, 503, `${mode}: unknown kid while the JWKS fails`);
        assert.equal(codeOf(r), 'GW_AUTH_UNAVAILABLE');
        assert.ok(flaky.fetches > fetches, `${mode}: it tried`);
        assert.equal(
          (await call(p.url(), '/flaky/x', bearer(await tokenFor('k1')))).status,
          200,
          `${mode}: still cached`,
        );
      }
      await p.waitFor((l) => l.msg === 'jwks: fetch failed; keeping the last keys' && /too large/i.test(String(l.err)));
      // Back to normal: an unknown kid is a plain 401 again.
      flaky.mode = 'ok';
      const r = await call(p.url(), '/flaky/x', bearer(await tokenFor('k-new', ecOther.privateKey)));
      assert.equal(r.status, 401);
      assert.equal(p.child.exitCode, null, 'no crash');
    });
  });

  describe('API keys', () => {
    const apiKey = /^ApiKey realm="portico"$/;

    it('control: the right key in the right place passes', async () => {
      assert.equal((await call(p.url(), '/key/x', { 'x-api-key': API_KEY })).status, 200);
      assert.equal((await call(p.url(), `/key-q/x?api_key=${API_KEY}`)).status, 200);
    });

    it('wrong header, empty key, case or whitespace variants are refused', async () => {
      await refused('/key/x', { 'x-api-token': API_KEY }, apiKey, 'wrong header');
      await refused('/key/x', { authorization: `Bearer ${API_KEY}` }, apiKey, 'in Authorization');
      await refused('/key/x', { 'x-api-key': '' }, apiKey, 'empty');
      await refused('/key/x', { 'x-api-key': API_KEY.toLowerCase() }, apiKey, 'lower case');
      await refused('/key/x', { 'x-api-key': API_KEY.toUpperCase() }, apiKey, 'upper case');
      await refused('/key/x', { 'x-api-key': `${API_KEY}\t.` }, apiKey, 'suffix');
      await refused('/key/x', { 'x-api-key': `${API_KEY.slice(0, -1)}` }, apiKey, 'prefix');
      await refused('/key/x', { 'x-api-key': `${API_KEY} ${API_KEY}` }, apiKey, 'twice in one value');
      // In a query the encoded blanks are part of the value.
      await refused(`/key-q/x?api_key=${API_KEY}%20`, {}, apiKey, 'trailing space');
      await refused(`/key-q/x?api_key=${API_KEY}+`, {}, apiKey, 'trailing plus');
      await refused(`/key-q/x?api_key=%20${API_KEY}`, {}, apiKey, 'leading space');
      await refused(`/key-q/x?api_key=${API_KEY}%00`, {}, apiKey, 'trailing NUL');
      await refused(`/key-q/x?api_key=`, {}, apiKey, 'empty query value');
      await refused(`/key-q/x?API_KEY=${API_KEY}`, {}, apiKey, 'parameter name in another case');
    });

    it('a duplicated key header is refused, not the first or last value picked silently', async () => {
      for (const [a, b] of [
        [API_KEY, 'wrong'],
        ['wrong', API_KEY],
        [API_KEY, API_KEY],
      ]) {
        await refused('/key/x', ['host', 'a', 'x-api-key', a!, 'x-api-key', b!], apiKey, `header ${a}/${b}`);
      }
    });

    it('a duplicated key query parameter is refused, and never forwarded', async () => {
      for (const q of [
        `api_key=${API_KEY}&api_key=wrong`,
        `api_key=wrong&api_key=${API_KEY}`,
        `api_key=${API_KEY}&api_key=${API_KEY}`,
        `api_key=${API_KEY}&api%5Fkey=other`,
        `api%5fkey=other&api_key=${API_KEY}`,
      ]) {
        await refused(`/key-q/x?${q}`, {}, apiKey, q);
      }
    });

    it('header and query both given: the header decides, and neither key is forwarded', async () => {
      await refused(`/key-hq/x?api_key=${API_KEY}`, { 'x-api-key': 'wrong' }, apiKey, 'bad header, good query');
      const r = await call(p.url(), `/key-hq/x?api_key=other&page=2`, { 'x-api-key': API_KEY });
      assert.equal(r.status, 200);
      const seen = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
      assert.equal(seen.url, '/key-hq/x?page=2');
      assert.equal(seen.headers['x-api-key'], undefined);
    });
  });

  describe('Basic authentication (RFC 7617)', () => {
    const basicChallenge = /^Basic realm="admin", charset="UTF-8"$/;
    const basic = (text: string | Buffer) =>
      ({ authorization: `Basic ${Buffer.from(text).toString('base64')}` }) as Record<string, string>;

    it('control: the right credentials pass', async () => {
      assert.equal((await call(p.url(), '/basic/x', basic('alice:correct horse'))).status, 200);
    });

    it('malformed base64, no colon, empty user, wrong password: 401 with the Basic challenge', async () => {
      const good = Buffer.from('alice:correct horse').toString('base64');
      const cases: Array<[string, Record<string, string>]> = [
        ['not base64', { authorization: 'Basic !!!!' }],
        ['junk inside valid base64', { authorization: `Basic ${good.slice(0, 4)}*${good.slice(4)}` }],
        ['a space inside valid base64', { authorization: `Basic ${good.slice(0, 4)} ${good.slice(4)}` }],
        [
          'base64url alphabet',
          { authorization: `Basic ${Buffer.from('alice:correct horse?>').toString('base64url')}` },
        ],
        ['base64 followed by garbage', { authorization: `Basic ${good}!!` }],
        [
          'data after the padding',
          { authorization: `Basic ${Buffer.from('alice:correct horsX').toString('base64')}QUFB` },
        ],
        ['no colon', basic('alicecorrect horse')],
        ['empty user', basic(':correct horse')],
        ['empty everything', basic(':')],
        ['empty token', { authorization: 'Basic ' }],
        ['wrong password', basic('alice:correct horse ')],
        ['user in another case', basic('Alice:correct horse')],
        ['unknown user', basic('mallory:correct horse')],
        ['NUL in the user', basic('alice\0:correct horse')],
      ];
      for (const [what, headers] of cases) await refused('/basic/x', headers, /^Basic realm="admin"/, what);
      await refused('/basic/x', {}, basicChallenge, 'missing');
    });

    it('non-UTF-8 bytes and very long credentials: 401, no crash', async () => {
      await refused(
        '/basic/x',
        basic(Buffer.from([0x61, 0x6c, 0xff, 0xfe, 0x3a, 0xc3, 0x28])),
        basicChallenge,
        'invalid UTF-8',
      );
      await refused(
        '/basic/x',
        basic(Buffer.concat([Buffer.from('alice:correct horse'), Buffer.from([0xff])])),
        basicChallenge,
        'trailing 0xFF',
      );
      // Long but within the 16 KiB head limit: checked and refused (scrypt on a long input is still bounded).
      await refused('/basic/x', basic(`alice:${'x'.repeat(9_000)}`), basicChallenge, 'a 9 KB password');
      await refused('/basic/x', basic(`${'u'.repeat(9_000)}:pw`), basicChallenge, 'a 9 KB user');
      // Over it: 431 from the listener, never forwarded.
      const before = echo.seen.length;
      const big = await call(p.url(), '/basic/x', basic(`alice:${'x'.repeat(40_000)}`));
      assert.equal(big.status, 431);
      assert.equal(echo.seen.length, before);
      // Raw latin1 bytes in the header value itself (not base64).
      const raw = await rawExchange(
        p.port(),
        Buffer.from(
          'GET /basic/x HTTP/1.1\r\nHost: a\r\nAuthorization: Basic \xff\xfe\r\nConnection: close\r\n\r\n',
          'latin1',
        ),
      );
      assert.ok([400, 401].includes(statusOf(raw)), raw.slice(0, 60));
      assert.equal(p.child.exitCode, null);
      assert.equal((await call(p.url(), '/basic/x', basic('alice:correct horse'))).status, 200, 'still serving');
    });
  });

  describe('OAuth 2.0 token introspection (RFC 7662)', () => {
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

    it('active: false and malformed answers are 401 with invalid_token; never forwarded', async () => {
      introspection.mode = 'ok';
      introspection.answers.set('revoked', { active: false, sub: 'user-1' });
      introspection.answers.set('stringly', { active: 'true', sub: 'user-1' });
      introspection.answers.set('expired', { active: true, sub: 'user-1', exp: now() - 10 });
      for (const t of ['revoked', 'stringly', 'expired', 'unknown']) {
        await refused('/introspect/x', bearer(t), bearerInvalid, t);
      }
    });

    it('server 500, garbage, a huge answer or timeout: 503 GW_AUTH_UNAVAILABLE in bounded time, no crash', async () => {
      introspection.answers.set('fine', { active: true, sub: 'user-1', exp: now() + 300 });
      for (const mode of ['error', 'garbage', 'huge', 'slow'] as const) {
        introspection.mode = mode;
        const before = echo.seen.length;
        const r = await call(p.url(), '/introspect/x', bearer(`fail-${mode}`));
        assert.equal(r.status, 503, mode);
        assert.equal(codeOf(r), 'GW_AUTH_UNAVAILABLE');
        assert.equal(echo.seen.length, before);
      }
      introspection.mode = 'ok';
      // A failure is not cached as an answer.
      introspection.answers.set('fail-error', { active: true, sub: 'user-1' });
      assert.equal((await call(p.url(), '/introspect/x', bearer('fail-error'))).status, 200);
      assert.equal(p.child.exitCode, null);
    });

    it('cached answers respect cacheTtl and never outlive exp', async () => {
      introspection.mode = 'ok';
      introspection.answers.set('ttl', { active: true, sub: 'user-1' });
      const calls = () => introspection.calls.filter((c) => c === 'ttl').length;
      assert.equal((await call(p.url(), '/introspect/x', bearer('ttl'))).status, 200);
      assert.equal((await call(p.url(), '/introspect/x', bearer('ttl'))).status, 200);
      assert.equal(calls(), 1, 'second call answered from the cache');
      // Revoked at the server: after cacheTtl (2s) the gateway asks again and refuses.
      introspection.answers.set('ttl', { active: false });
      await sleep(2300);
      await refused('/introspect/x', bearer('ttl'), bearerInvalid, 'after cacheTtl');
      assert.equal(calls(), 2);

      // A token expiring in 1s, with cacheTtl 2s: once exp passes it is refused, cache or not.
      introspection.answers.set('short', { active: true, sub: 'user-1', exp: now() + 1 });
      assert.equal((await call(p.url(), '/introspect/x', bearer('short'))).status, 200);
      await sleep(2100);
      await refused('/introspect/x', bearer('short'), bearerInvalid, 'past exp');
    });
  });

  describe('configuration that would invite confusion', () => {
    it('a publicKey with an HMAC algorithm in `algorithms` is a config error, not a 500 per request', async () => {
      const path = join(dir, 'mixed.yaml');
      await writeFile(
        path,
        `
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: api, targets: [ { url: ${echo.url} } ] } ]
policies:
  mixed: { type: jwt-auth, publicKey: "file:${pemPath}", algorithms: [RS256, HS256] }
routes:
  - { name: mixed, match: { path: /* }, policies: [mixed], upstream: api }
`,
      );
      const r = await runPortico(['validate', '-c', path]);
      assert.notEqual(r.code, 0, `validate accepted it: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout + r.stderr, /algorithms/);
    });
  });
});
