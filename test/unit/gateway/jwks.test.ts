import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { factory } from '../../../src/gateway/jwt-auth/index.ts';
import type { Policy } from '../../../src/gateway/types.ts';
import { startUpstream, type TestServer } from '../../helpers/http.ts';
import { createForTest, depsForTest, exchangeForTest, outcome, run } from './helpers.ts';

interface Key {
  kid: string;
  privateKey: KeyObject;
  jwk: object;
}
function rsaKey(kid: string): Key {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}
const sign = (k: Key, kid = k.kid) =>
  new SignJWT({ sub: 'u' })
    .setProtectedHeader({ alg: 'RS256', kid })
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(k.privateKey);
const verifyWith = async (p: Policy, token: string) =>
  outcome(await run(p, exchangeForTest({ headers: { authorization: `Bearer ${token}` } })));

interface JwksState {
  keys: Key[];
  failing: boolean;
  hits: number;
}

/** A JWKS endpoint whose keys and health the test changes through `state`. */
async function jwksServer(): Promise<{ server: TestServer; state: JwksState }> {
  const state: JwksState = { keys: [], failing: false, hits: 0 };
  const server = await startUpstream((_req, res) => {
    state.hits++;
    if (state.failing) {
      res.writeHead(500).end();
      return;
    }
    res
      .writeHead(200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ keys: state.keys.map((k) => k.jwk) }));
  });
  return { server, state };
}

describe('jwt-auth with a remote JWKS', () => {
  const policies: Policy[] = [];
  after(async () => {
    for (const p of policies) await p.close?.();
  });

  test('loads lazily, follows rotation, rate-limits unknown kids, keeps stale keys, 503 when unreachable', async (t) => {
    const { server, state } = await jwksServer();
    t.after(() => server.close());
    const a = rsaKey('a');
    const b = rsaKey('b');
    const c = rsaKey('c');
    state.keys = [a];
    let clock = 1_000_000;
    const deps = depsForTest([], () => clock);
    const p = createForTest(factory, { jwksUrl: `${server.url}/jwks.json`, jwksCooldown: '30s' }, deps);
    policies.push(p);
    assert.equal(state.hits, 0, 'no I/O at create');

    assert.equal(await verifyWith(p, await sign(a)), 'continue');
    assert.equal(state.hits, 1);
    assert.equal(await verifyWith(p, await sign(a)), 'continue');
    assert.equal(state.hits, 1, 'cached');

    // Rotation: a new kid appears; the first token naming it triggers one refetch.
    state.keys = [a, b];
    clock += 31_000;
    assert.equal(await verifyWith(p, await sign(b)), 'continue');
    assert.equal(state.hits, 2);

    // Unknown kid within the cooldown: 401 without a fetch; after it, one fetch then 401.
    assert.equal(await verifyWith(p, await sign(c)), '401 GW_AUTH_INVALID jwt_unknown_kid');
    assert.equal(state.hits, 2);
    clock += 31_000;
    assert.equal(await verifyWith(p, await sign(c)), '401 GW_AUTH_INVALID jwt_unknown_kid');
    assert.equal(state.hits, 3);

    // The endpoint fails: known keys still verify; a key it may hold cannot be checked → 503.
    state.failing = true;
    clock += 31_000;
    assert.equal(await verifyWith(p, await sign(c)), '503 GW_AUTH_UNAVAILABLE jwks_unavailable');
    assert.equal(state.hits, 4);
    assert.equal(await verifyWith(p, await sign(a)), 'continue');
    assert.equal(await verifyWith(p, await sign(c)), '503 GW_AUTH_UNAVAILABLE jwks_unavailable', 'in cooldown');
    assert.equal(state.hits, 4);
    assert.ok(deps.lines.some((l) => l.msg?.includes('keeping the last keys')));

    // It recovers with key c.
    state.failing = false;
    state.keys = [b, c];
    clock += 31_000;
    assert.equal(await verifyWith(p, await sign(c)), 'continue');
    assert.equal(await verifyWith(p, await sign(a)), '401 GW_AUTH_INVALID jwt_unknown_kid', 'a was retired');
  });

  test('never reachable: 503 for every token, concurrent or not', async () => {
    const gone = await startUpstream(() => {});
    const url = `${gone.url}/jwks.json`;
    await gone.close();
    const p = createForTest(factory, { jwksUrl: url, jwksTimeout: '2s' }, depsForTest());
    policies.push(p);
    const k = rsaKey('a');
    const token = await sign(k);
    const results = await Promise.all([verifyWith(p, token), verifyWith(p, token)]);
    assert.deepEqual(results, ['503 GW_AUTH_UNAVAILABLE jwks_unavailable', '503 GW_AUTH_UNAVAILABLE jwks_unavailable']);
  });

  test('refreshes in the background', async (t) => {
    const { server, state } = await jwksServer();
    t.after(() => server.close());
    const a = rsaKey('a');
    state.keys = [a];
    const p = createForTest(factory, { jwksUrl: server.url, jwksRefresh: '100ms' }, depsForTest());
    policies.push(p);
    assert.equal(await verifyWith(p, await sign(a)), 'continue');
    // Wait (bounded) for two background fetches; no timing assertion.
    for (let i = 0; i < 500 && state.hits < 3; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(state.hits >= 3);
    await p.close?.();
    const frozen = state.hits;
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(state.hits <= frozen + 1, 'close stops the refresh timer');
  });
});
