import assert from 'node:assert/strict';
import { test } from 'node:test';
import { factory } from '../../../src/gateway/basic-auth/index.ts';
import { hashPassword } from '../../../src/gateway/basic-auth/password.ts';
import { createForTest, depsForTest, exchangeForTest, outcome, run } from './helpers.ts';

const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;

test('basic-auth accepts a scrypt-hashed user and strips the header', async () => {
  const deps = depsForTest([{ name: 'ops', basicAuth: [{ username: 'ann', password: await hashPassword('pa:ss') }] }]);
  const policy = createForTest(factory, { realm: 'admin' }, deps);
  const ex = exchangeForTest({ headers: { authorization: basic('ann', 'pa:ss') } });
  assert.equal(outcome(await run(policy, ex)), 'continue');
  assert.equal(ex.consumer?.name, 'ops');
  assert.equal(ex.request.headers.authorization, undefined);

  const wrong = await run(policy, exchangeForTest({ headers: { authorization: basic('ann', 'nope') } }));
  assert.equal(outcome(wrong), '401 GW_AUTH_INVALID basic_invalid');
  assert.equal(
    wrong.kind === 'reply' && wrong.reply.headers?.['www-authenticate'],
    'Basic realm="admin", charset="UTF-8"',
  );
  assert.equal(outcome(await run(policy, exchangeForTest())), '401 GW_AUTH_MISSING basic_missing');
  const bearer = exchangeForTest({ headers: { authorization: 'Bearer x' } });
  assert.equal(outcome(await run(policy, bearer)), '401 GW_AUTH_MISSING basic_missing');
  const garbage = exchangeForTest({ headers: { authorization: 'Basic !!!' } });
  assert.equal(outcome(await run(policy, garbage)), '401 GW_AUTH_INVALID basic_malformed');
});
