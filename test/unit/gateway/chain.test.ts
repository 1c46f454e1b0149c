import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createChain } from '../../../src/gateway/chain.ts';
import { gatewayReply } from '../../../src/gateway/replies.ts';
import { CONTINUE, type Exchange, type Policy, type Verdict } from '../../../src/gateway/types.ts';
import { exchangeForTest, outcome } from './helpers.ts';

const reply = (code: Parameters<typeof gatewayReply>[0], details: string, challenge?: string): Verdict => ({
  kind: 'reply',
  reply: gatewayReply(code, details, challenge === undefined ? undefined : { 'www-authenticate': challenge }),
});

function recorder(): { trail: string[]; policy(name: string, extra?: Partial<Policy>): Policy } {
  const trail: string[] = [];
  return {
    trail,
    policy: (name, extra = {}) => ({
      name,
      type: 'test',
      onRequest: () => {
        trail.push(`req:${name}`);
        return CONTINUE;
      },
      onResponse: () => {
        trail.push(`res:${name}`);
      },
      ...extra,
    }),
  };
}

const silent = { log: { error: () => {} } };

describe('chain', () => {
  test('an empty chain continues without a promise', () => {
    const chain = createChain([]);
    assert.equal(chain.size, 0);
    assert.equal(chain.runRequest(exchangeForTest()), CONTINUE);
  });

  test('request hooks in order, response hooks in reverse; sync hooks give a sync verdict', async () => {
    const r = recorder();
    const chain = createChain([r.policy('a'), r.policy('b'), r.policy('c')]);
    const ex = exchangeForTest();
    const v = chain.runRequest(ex);
    assert.equal(typeof (v as Promise<Verdict>).then, 'undefined', 'no promise for sync hooks');
    assert.equal(outcome(v as Verdict), 'continue');
    assert.equal(outcome(await chain.runResponse(ex)), 'continue');
    assert.deepEqual(r.trail, ['req:a', 'req:b', 'req:c', 'res:c', 'res:b', 'res:a']);
  });

  test('async hooks keep order and a reply stops the chain', async () => {
    const r = recorder();
    const chain = createChain([
      r.policy('a', {
        onRequest: async () => {
          r.trail.push('req:a');
          return CONTINUE;
        },
      }),
      r.policy('b', { onRequest: () => reply('GW_FORBIDDEN', 'no') }),
      r.policy('c'),
    ]);
    const ex = exchangeForTest();
    assert.equal(outcome(await chain.runRequest(ex)), '403 GW_FORBIDDEN no');
    assert.deepEqual(r.trail, ['req:a']);
    // Only policies before the one that answered run their response phase.
    await chain.runResponse(ex);
    assert.deepEqual(r.trail, ['req:a', 'res:a']);
  });

  test('a throwing or rejecting hook becomes 500 GW_INTERNAL policy_threw:<name>, logged', async () => {
    const logged: object[] = [];
    const log = { error: (obj: object) => logged.push(obj) };
    const sync = createChain(
      [
        {
          name: 'boom',
          type: 't',
          onRequest: () => {
            throw new Error('x');
          },
        },
      ],
      { log },
    );
    assert.equal(outcome(await sync.runRequest(exchangeForTest())), '500 GW_INTERNAL policy_threw:boom');
    const rejecting = createChain(
      [{ name: 'later', type: 't', onRequest: async () => Promise.reject(new Error('y')) }],
      {
        log,
      },
    );
    assert.equal(outcome(await rejecting.runRequest(exchangeForTest())), '500 GW_INTERNAL policy_threw:later');
    const response = createChain(
      [
        {
          name: 'resp',
          type: 't',
          onResponse: () => {
            throw new Error('z');
          },
        },
      ],
      { log },
    );
    assert.equal(outcome(await response.runResponse(exchangeForTest())), '500 GW_INTERNAL policy_threw:resp');
    assert.equal(logged.length, 3);
    assert.equal((logged[0] as { requestId: string }).requestId, 'req-1');
  });

  describe('authentication group (any one suffices)', () => {
    const auth = (name: string, verdict: Verdict | (() => Promise<Verdict>), seen?: string[]): Policy => ({
      name,
      type: 'auth',
      authenticates: true,
      onRequest: (ex: Exchange) => {
        seen?.push(name);
        if (typeof verdict === 'function') return verdict();
        if (verdict.kind === 'continue') ex.consumer = { name, groups: [], metadata: {} };
        return verdict;
      },
    });

    test('the first success wins and later members are not tried', async () => {
      const seen: string[] = [];
      const chain = createChain([
        auth('key', reply('GW_AUTH_MISSING', 'none', 'ApiKey realm="p"'), seen),
        auth('jwt', CONTINUE, seen),
        auth('basic', CONTINUE, seen),
      ]);
      const ex = exchangeForTest();
      assert.equal(outcome(await chain.runRequest(ex)), 'continue');
      assert.equal(ex.consumer?.name, 'jwt');
      assert.deepEqual(seen, ['key', 'jwt']);
    });

    test('all missing: the first 401 with every challenge combined', async () => {
      const chain = createChain([
        auth('key', reply('GW_AUTH_MISSING', 'key_missing', 'ApiKey realm="p"')),
        auth('jwt', async () => reply('GW_AUTH_MISSING', 'jwt_missing', 'Bearer realm="p"')),
      ]);
      const v = await chain.runRequest(exchangeForTest());
      assert.equal(outcome(v), '401 GW_AUTH_MISSING key_missing');
      assert.equal(v.kind === 'reply' && v.reply.headers?.['www-authenticate'], 'ApiKey realm="p", Bearer realm="p"');
    });

    test('the reply of the first member that found credentials is kept', async () => {
      const chain = createChain([
        auth('key', reply('GW_AUTH_MISSING', 'key_missing', 'ApiKey realm="p"')),
        auth('jwt', reply('GW_AUTH_INVALID', 'jwt_expired', 'Bearer realm="p", error="invalid_token"')),
        auth('introspect', reply('GW_AUTH_UNAVAILABLE', 'down')),
      ]);
      const v = await chain.runRequest(exchangeForTest());
      assert.equal(outcome(v), '401 GW_AUTH_INVALID jwt_expired');
      assert.equal(
        v.kind === 'reply' && v.reply.headers?.['www-authenticate'],
        'ApiKey realm="p", Bearer realm="p", error="invalid_token"',
      );
    });

    test('a group ends at a non-auth policy; a thrown member is a 500 at once', async () => {
      const seen: string[] = [];
      const chain = createChain(
        [
          auth('a', reply('GW_AUTH_MISSING', 'a'), seen),
          {
            name: 'acl',
            type: 'acl',
            onRequest: () => {
              seen.push('acl');
              return CONTINUE;
            },
          },
          auth('b', CONTINUE, seen),
        ],
        silent,
      );
      assert.equal(outcome(await chain.runRequest(exchangeForTest())), '401 GW_AUTH_MISSING a');
      assert.deepEqual(seen, ['a']);
      const throwing = createChain(
        [
          {
            name: 't',
            type: 'x',
            authenticates: true,
            onRequest: () => {
              throw new Error('no');
            },
          },
          auth('b', CONTINUE),
        ],
        silent,
      );
      assert.equal(outcome(await throwing.runRequest(exchangeForTest())), '500 GW_INTERNAL policy_threw:t');
    });
  });

  test('body needs are the largest of the policies', () => {
    const chain = createChain([
      { name: 'a', type: 't', requestBody: { maxBytes: 10 } },
      { name: 'b', type: 't', requestBody: { maxBytes: 30 }, responseBody: { maxBytes: 5 } },
    ]);
    assert.equal(chain.needsRequestBody, 30);
    assert.equal(chain.needsResponseBody, 5);
    assert.equal(chain.hasResponsePhase, false);
  });
});
