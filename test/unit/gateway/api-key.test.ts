import assert from 'node:assert/strict';
import { test } from 'node:test';
import { factory, takeQueryParam } from '../../../src/gateway/api-key/index.ts';
import { createForTest, depsForTest, exchangeForTest, outcome, run } from './helpers.ts';

const deps = depsForTest([{ name: 'acme', groups: ['gold'], apiKeys: ['k-123'] }]);

test('api-key from the default header: accepted, removed before forwarding', async () => {
  const policy = createForTest(factory, {}, deps);
  assert.equal(policy.authenticates, true);
  const ex = exchangeForTest({ headers: { 'x-api-key': 'k-123', accept: '*/*' } });
  assert.equal(outcome(await run(policy, ex)), 'continue');
  assert.equal(ex.consumer?.name, 'acme');
  assert.deepEqual(ex.request.headers, { accept: '*/*' });
});

test('api-key rejects a missing or unknown key with 401 and a challenge', async () => {
  const policy = createForTest(factory, { realm: 'orders' }, deps);
  const missing = await run(policy, exchangeForTest());
  assert.equal(outcome(missing), '401 GW_AUTH_MISSING api_key_missing');
  assert.equal(missing.kind === 'reply' && missing.reply.headers?.['www-authenticate'], 'ApiKey realm="orders"');
  assert.equal(
    outcome(await run(policy, exchangeForTest({ headers: { 'x-api-key': 'nope' } }))),
    '401 GW_AUTH_INVALID api_key_invalid',
  );
});

test('api-key from a query parameter, removed from the query', async () => {
  const policy = createForTest(factory, { query: 'api_key' }, deps);
  const ex = exchangeForTest({ query: 'a=1&api_key=k-123&b=2' });
  assert.equal(outcome(await run(policy, ex)), 'continue');
  assert.equal(ex.request.query, 'a=1&b=2');
  const header = exchangeForTest({ headers: { 'x-api-key': 'k-123' } });
  assert.equal(outcome(await run(policy, header)), '401 GW_AUTH_MISSING api_key_missing', 'only the query is read');
});

test('keep: true forwards the key; parse rejects unknown options', async () => {
  const policy = createForTest(factory, { header: 'X-Key', keep: true }, deps);
  const ex = exchangeForTest({ headers: { 'x-key': 'k-123' } });
  assert.equal(outcome(await run(policy, ex)), 'continue');
  assert.equal(ex.request.headers['x-key'], 'k-123');
  const bad = factory.parse({ headr: 'x' });
  assert.equal(bad.ok, false);
});

test('takeQueryParam', () => {
  assert.deepEqual(takeQueryParam('api_key=a%20b', 'api_key='), { value: 'a b', rest: '' });
  assert.deepEqual(takeQueryParam('x=1&api_key=z', 'api_key='), { value: 'z', rest: 'x=1' });
  assert.equal(takeQueryParam('xapi_key=z', 'api_key='), undefined);
});

test('takeQueryParam keeps the other parameters intact', () => {
  assert.deepEqual(takeQueryParam('a=1&api_key=z', 'api_key='), { value: 'z', rest: 'a=1' });
  assert.deepEqual(takeQueryParam('api_key=z&a=1', 'api_key='), { value: 'z', rest: 'a=1' });
  assert.deepEqual(takeQueryParam('a=1&api_key=z&b=2', 'api_key='), { value: 'z', rest: 'a=1&b=2' });
  assert.deepEqual(takeQueryParam('api_key=%E0', 'api_key='), { value: '%E0', rest: '' });
});
