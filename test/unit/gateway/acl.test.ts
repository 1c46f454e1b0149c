import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { factory as claims } from '../../../src/gateway/acl/claims.ts';
import { factory as acl } from '../../../src/gateway/acl/index.ts';
import { factory as mtls } from '../../../src/gateway/mtls-auth/index.ts';
import type { Exchange } from '../../../src/gateway/types.ts';
import { createForTest, depsForTest, exchangeForTest, outcome, run } from './helpers.ts';

const deps = depsForTest([{ name: 'billing', groups: ['internal'], mtls: { subject: 'CN=billing' } }]);
const as = (name: string, groups: string[]): Exchange => {
  const ex = exchangeForTest();
  ex.consumer = { name, groups, metadata: {} };
  return ex;
};
const withClaims = (c: Record<string, unknown>): Exchange => {
  const ex = exchangeForTest();
  ex.claims = c;
  return ex;
};

describe('acl', () => {
  test('allow and deny groups', async () => {
    const p = createForTest(acl, { allow: ['gold'], deny: ['suspended'], allowConsumers: ['vip'] }, deps);
    assert.equal(outcome(await run(p, as('a', ['gold']))), 'continue');
    assert.equal(outcome(await run(p, as('b', ['silver']))), '403 GW_FORBIDDEN acl_not_allowed');
    assert.equal(outcome(await run(p, as('c', ['gold', 'suspended']))), '403 GW_FORBIDDEN acl_denied');
    assert.equal(outcome(await run(p, as('vip', []))), 'continue');
    assert.equal(outcome(await run(p, exchangeForTest())), '403 GW_FORBIDDEN acl_no_consumer');
    const denyOnly = createForTest(acl, { deny: ['suspended'] }, deps);
    assert.equal(outcome(await run(denyOnly, as('d', []))), 'continue');
    assert.equal(acl.parse({}).ok, false);
  });
});

describe('claims', () => {
  test('scopes: all and any, from scope or scp', async () => {
    const p = createForTest(claims, { scopes: ['orders:read', 'orders:write'] }, deps);
    assert.equal(outcome(await run(p, withClaims({ scope: 'orders:read orders:write x' }))), 'continue');
    assert.equal(outcome(await run(p, withClaims({ scp: ['orders:read', 'orders:write'] }))), 'continue');
    const denied = await run(p, withClaims({ scope: 'orders:read' }));
    assert.equal(outcome(denied), '403 GW_FORBIDDEN scope_insufficient');
    assert.match(String(denied.kind === 'reply' && denied.reply.headers?.['www-authenticate']), /insufficient_scope/);
    assert.equal(outcome(await run(p, exchangeForTest())), '403 GW_FORBIDDEN claims_missing');
    const any = createForTest(claims, { scopes: { any: ['a', 'b'] } }, deps);
    assert.equal(outcome(await run(any, withClaims({ scope: 'b' }))), 'continue');
    assert.equal(outcome(await run(any, withClaims({ scope: 'c' }))), '403 GW_FORBIDDEN scope_insufficient');
  });

  test('claim equals, one of, contains', async () => {
    const p = createForTest(
      claims,
      { claims: { tenant: 'acme', role: { oneOf: ['admin', 'editor'] }, groups: { contains: 'ops' }, level: 3 } },
      deps,
    );
    const good = { tenant: 'acme', role: 'editor', groups: ['dev', 'ops'], level: 3 };
    assert.equal(outcome(await run(p, withClaims(good))), 'continue');
    assert.equal(outcome(await run(p, withClaims({ ...good, tenant: 'other' }))), '403 GW_FORBIDDEN claim_tenant');
    assert.equal(outcome(await run(p, withClaims({ ...good, role: 'viewer' }))), '403 GW_FORBIDDEN claim_role');
    assert.equal(outcome(await run(p, withClaims({ ...good, groups: ['dev'] }))), '403 GW_FORBIDDEN claim_groups');
    assert.equal(outcome(await run(p, withClaims({ ...good, level: undefined }))), '403 GW_FORBIDDEN claim_level');
  });
});

describe('mtls-auth', () => {
  test('maps a verified certificate subject to a consumer', async () => {
    const p = createForTest(mtls, {}, deps);
    const ex = exchangeForTest({ client: { tls: true, certificateSubject: 'CN=billing' } });
    assert.equal(outcome(await run(p, ex)), 'continue');
    assert.equal(ex.consumer?.name, 'billing');
    assert.equal(outcome(await run(p, exchangeForTest())), '401 GW_AUTH_MISSING mtls_no_certificate');
    const other = exchangeForTest({ client: { certificateSubject: 'CN=eve' } });
    assert.equal(outcome(await run(p, other)), '403 GW_FORBIDDEN mtls_unknown_subject');
  });
});
