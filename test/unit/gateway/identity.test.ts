import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createIdentity } from '../../../src/gateway/identity.ts';
import { exchangeForTest } from './helpers.ts';

test('client-sent identity headers are stripped and set from the identified consumer', () => {
  const identity = createIdentity([{ name: 'jwt', type: 'jwt-auth', forwardsHeaders: ['X-User-Id'] }]);
  assert.deepEqual(identity.headers, ['x-consumer', 'x-consumer-groups', 'x-user-id']);
  const ex = exchangeForTest({
    headers: { 'x-consumer': 'admin', 'x-consumer-groups': 'root', 'x-user-id': 'spoof', accept: '*/*' },
  });
  identity.strip(ex.request);
  assert.deepEqual(Object.keys(ex.request.headers), ['accept']);
  identity.forward(ex);
  assert.deepEqual(Object.keys(ex.request.headers), ['accept'], 'nothing forwarded without a consumer');
  ex.consumer = { name: 'acme', groups: ['gold', 'beta'], metadata: {} };
  identity.forward(ex);
  assert.equal(ex.request.headers['x-consumer'], 'acme');
  assert.equal(ex.request.headers['x-consumer-groups'], 'gold,beta');
});

test('header names are configurable', () => {
  const identity = createIdentity([], { consumerHeader: 'X-Client', groupsHeader: 'x-client-groups' });
  const ex = exchangeForTest({ headers: { 'x-client': 'spoof' } });
  identity.strip(ex.request);
  assert.equal(ex.request.headers['x-client'], undefined);
  ex.consumer = { name: 'a', groups: [], metadata: {} };
  identity.forward(ex);
  assert.deepEqual(ex.request.headers, { 'x-client': 'a' });
});
