import assert from 'node:assert/strict';
import { createSecretKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { describe, test } from 'node:test';
import { type JWTPayload, SignJWT } from 'jose';
import { factory } from '../../../src/gateway/jwt-auth/index.ts';
import { createForTest, depsForTest, exchangeForTest, outcome, run } from './helpers.ts';

const SECRET = 'a-very-long-hmac-secret-of-at-least-32-bytes!';
const T0 = 1_700_000_000_000;
const now = () => T0;
const deps = depsForTest([{ name: 'acme', groups: ['gold'], jwt: { claim: 'sub', value: 'user-1' } }], now);

async function sign(
  key: KeyObject,
  alg: string,
  claims: JWTPayload = {},
  kid?: string,
  iat = T0 / 1000,
): Promise<string> {
  return new SignJWT({ sub: 'user-1', ...claims })
    .setProtectedHeader(kid === undefined ? { alg } : { alg, kid })
    .setIssuedAt(iat)
    .setExpirationTime(iat + 300)
    .sign(key);
}
const bearer = (token: string) => exchangeForTest({ headers: { authorization: `Bearer ${token}` } });

describe('jwt-auth with inline keys', () => {
  const hmac = createSecretKey(Buffer.from(SECRET));

  test('HS256 secret: accepts, sets claims, forwards claims, maps the consumer', async () => {
    const p = createForTest(factory, { secret: SECRET, forwardClaims: { sub: 'x-user-id', roles: 'x-roles' } }, deps);
    assert.deepEqual(p.forwardsHeaders, ['x-user-id', 'x-roles']);
    const ex = bearer(await sign(hmac, 'HS256', { roles: ['a', 'b'] }));
    assert.equal(outcome(await run(p, ex)), 'continue');
    assert.equal(ex.claims?.sub, 'user-1');
    assert.equal(ex.consumer?.name, 'acme');
    assert.equal(ex.request.headers['x-user-id'], 'user-1');
    assert.equal(ex.request.headers['x-roles'], 'a,b');
    assert.ok(ex.request.headers.authorization, 'the token is forwarded by default');
  });

  test('missing, malformed, bad signature, expired, wrong algorithm', async () => {
    const p = createForTest(factory, { secret: SECRET, realm: 'api' }, deps);
    const missing = await run(p, exchangeForTest());
    assert.equal(outcome(missing), '401 GW_AUTH_MISSING jwt_missing');
    assert.equal(missing.kind === 'reply' && missing.reply.headers?.['www-authenticate'], 'Bearer realm="api"');
    const malformed = await run(p, bearer('not.a.jwt'));
    assert.equal(outcome(malformed), '401 GW_AUTH_INVALID jwt_malformed');
    assert.equal(
      malformed.kind === 'reply' && malformed.reply.headers?.['www-authenticate'],
      'Bearer realm="api", error="invalid_token"',
    );
    const other = createSecretKey(Buffer.from('another-secret-that-is-long-enough-for-hs256'));
    assert.equal(outcome(await run(p, bearer(await sign(other, 'HS256')))), '401 GW_AUTH_INVALID jwt_bad_signature');
    const old = await sign(hmac, 'HS256', {}, undefined, T0 / 1000 - 400);
    assert.equal(outcome(await run(p, bearer(old))), '401 GW_AUTH_INVALID jwt_expired');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    assert.equal(
      outcome(await run(p, bearer(await sign(privateKey, 'RS256')))),
      '401 GW_AUTH_INVALID jwt_alg_not_allowed',
    );
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"x"}').toString('base64url')}.`;
    assert.equal(outcome(await run(p, bearer(none))), '401 GW_AUTH_INVALID jwt_alg_not_allowed');
  });

  test('clock skew allows a token expired by less than the skew', async () => {
    const p = createForTest(factory, { secret: SECRET, clockSkew: '60s' }, deps);
    const justExpired = await sign(hmac, 'HS256', {}, undefined, T0 / 1000 - 330);
    assert.equal(outcome(await run(p, bearer(justExpired))), 'continue');
    const strict = createForTest(factory, { secret: SECRET, clockSkew: 0 }, deps);
    assert.equal(outcome(await run(strict, bearer(justExpired))), '401 GW_AUTH_INVALID jwt_expired');
  });

  test('issuer and audience', async () => {
    const p = createForTest(factory, { secret: SECRET, issuer: 'https://iss', audience: ['orders', 'x'] }, deps);
    const good = await sign(hmac, 'HS256', { iss: 'https://iss', aud: 'orders' });
    assert.equal(outcome(await run(p, bearer(good))), 'continue');
    const wrongAud = await sign(hmac, 'HS256', { iss: 'https://iss', aud: 'billing' });
    assert.equal(outcome(await run(p, bearer(wrongAud))), '401 GW_AUTH_INVALID jwt_claim_aud');
    const wrongIss = await sign(hmac, 'HS256', { iss: 'https://evil', aud: 'orders' });
    assert.equal(outcome(await run(p, bearer(wrongIss))), '401 GW_AUTH_INVALID jwt_claim_iss');
  });

  test('RS256 / PS256 / ES256 / EdDSA public keys in PEM, and an inline JWKS by kid', async () => {
    for (const [type, alg, opts] of [
      ['rsa', 'RS256', { modulusLength: 2048 }],
      ['rsa', 'PS256', { modulusLength: 2048 }],
      ['ec', 'ES256', { namedCurve: 'P-256' }],
      ['ed25519', 'EdDSA', {}],
    ] as const) {
      const { publicKey, privateKey } = generateKeyPairSync(type as 'rsa', opts as { modulusLength: number });
      const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
      const p = createForTest(factory, { publicKey: pem }, deps);
      assert.equal(outcome(await run(p, bearer(await sign(privateKey, alg)))), 'continue', alg);
      assert.equal(outcome(await run(p, bearer(await sign(hmac, 'HS256')))), '401 GW_AUTH_INVALID jwt_alg_not_allowed');
    }
    const a = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const b = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwks = {
      keys: [
        { ...a.publicKey.export({ format: 'jwk' }), kid: 'a' },
        { ...b.publicKey.export({ format: 'jwk' }), kid: 'b' },
      ],
    };
    const p = createForTest(factory, { jwks }, deps);
    assert.equal(outcome(await run(p, bearer(await sign(b.privateKey, 'ES256', {}, 'b')))), 'continue');
    assert.equal(
      outcome(await run(p, bearer(await sign(b.privateKey, 'ES256', {}, 'a')))),
      '401 GW_AUTH_INVALID jwt_bad_signature',
    );
    assert.equal(
      outcome(await run(p, bearer(await sign(b.privateKey, 'ES256', {}, 'zz')))),
      '401 GW_AUTH_INVALID jwt_unknown_kid',
    );
  });

  test('token from a cookie; consumer required; stripToken', async () => {
    const p = createForTest(
      factory,
      { secret: SECRET, token: { cookie: 'session' }, consumer: 'required', stripToken: true },
      deps,
    );
    const token = await sign(hmac, 'HS256');
    const ex = exchangeForTest({ headers: { cookie: `theme=dark; session=${token}; x=1` } });
    assert.equal(outcome(await run(p, ex)), 'continue');
    const stranger = bearer(await sign(hmac, 'HS256', { sub: 'someone-else' }));
    assert.equal(outcome(await run(p, stranger)), '403 GW_FORBIDDEN jwt_no_consumer');
    const mine = bearer(token);
    assert.equal(outcome(await run(p, mine)), 'continue');
    assert.equal(mine.request.headers.authorization, undefined);
  });

  test('config: exactly one key source; short secrets and bad PEM refused', () => {
    assert.equal(factory.parse({}).ok, false);
    assert.equal(factory.parse({ secret: SECRET, jwksUrl: 'https://x/jwks' }).ok, false);
    assert.equal(factory.parse({ secret: 'short' }).ok, false);
    const bad = factory.parse({ publicKey: 'nope' });
    assert.equal(bad.ok, false);
    assert.deepEqual(!bad.ok && bad.issues.map((i) => i.path), ['publicKey']);
    assert.equal(factory.parse({ jwksUrl: 'ftp://x' }).ok, false);
  });

  test('config: a JWKS refresh period under 100ms is refused (0 would refetch in a tight loop)', () => {
    for (const jwksRefresh of [0, '0s', '50ms']) {
      const r = factory.parse({ jwksUrl: 'https://idp.test/jwks', jwksRefresh });
      assert.equal(r.ok, false, String(jwksRefresh));
      assert.deepEqual(!r.ok && r.issues.map((i) => i.path), ['jwksRefresh']);
    }
    assert.equal(factory.parse({ jwksUrl: 'https://idp.test/jwks', jwksRefresh: '100ms' }).ok, true);
  });
});
