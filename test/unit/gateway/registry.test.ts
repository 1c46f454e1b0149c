import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { configSchema } from '../../../src/config/schema.ts';
import { factory as apiKey } from '../../../src/gateway/api-key/index.ts';
import { createChain } from '../../../src/gateway/chain.ts';
import {
  buildPolicies,
  closePolicies,
  didYouMean,
  policyFactories,
  registerFactories,
  routePolicies,
  validatePolicies,
} from '../../../src/gateway/registry.ts';
import { zodParser } from '../../../src/gateway/schema.ts';
import type { PolicyFactory } from '../../../src/gateway/types.ts';
import { CONTINUE } from '../../../src/gateway/types.ts';
import { depsForTest, exchangeForTest, outcome } from './helpers.ts';

const config = (policies: Record<string, unknown>, routePolicies: string[] = []) =>
  configSchema.parse({
    listeners: [{ name: 'web', protocol: 'http', address: '127.0.0.1:0' }],
    upstreams: [{ name: 'u', targets: [{ url: 'http://127.0.0.1:1' }] }],
    routes: [{ name: 'r', upstream: 'u', policies: routePolicies }],
    consumers: [{ name: 'acme', apiKeys: ['k1'] }],
    policies,
  });

test('every built-in type is registered under its folder name', () => {
  const types = Object.keys(policyFactories()).sort();
  assert.deepEqual(types, [
    'acl',
    'api-key',
    'basic-auth',
    'claims',
    'cors',
    'jwt-auth',
    'mtls-auth',
    'oauth2-introspection',
    'quota',
    'rate-limit',
    'transform',
    'validate',
  ]);
  for (const [type, f] of Object.entries(policyFactories())) assert.equal(f.type, type);
});

test('unknown types get a did-you-mean; option issues carry YAML paths; route references are checked', () => {
  const issues = validatePolicies(
    config(
      {
        a: { type: 'jwt-ath', secret: 'x' },
        b: { type: 'api-key', header: 'bad header' },
        c: { type: 'acl', allow: ['gold', 7] },
        d: { type: 'wat' },
      },
      ['a', 'bb'],
    ),
  );
  assert.deepEqual(
    issues.map((i) => [i.path.join('.'), i.message.split(';')[0]]),
    [
      ['policies.a.type', 'unknown policy type "jwt-ath"'],
      ['policies.b.header', 'not a valid header name'],
      ['policies.c.allow.1', issues[2]!.message.split(';')[0]],
      ['policies.d.type', 'unknown policy type "wat"'],
      ['routes.0.policies.1', 'no policy named "bb"'],
    ],
  );
  assert.match(issues[0]!.message, /did you mean "jwt-auth"\?/);
  assert.match(issues[3]!.message, /known types: /);
  assert.match(issues[4]!.message, /did you mean "b"\?/);
  assert.equal(typeof issues[2]!.path[3], 'number');
  assert.equal(didYouMean('ratelimit', ['rate-limit', 'quota']), 'rate-limit');
  assert.equal(didYouMean('zzzzzz', ['acl']), undefined);
});

test('build, chain and close; extra factories are registered without mutation', async () => {
  let closed = 0;
  const extra: PolicyFactory<{ header: string }> = {
    type: 'tag',
    parse: zodParser(z.strictObject({ header: z.string() })),
    create: (name, c) => ({
      name,
      type: 'tag',
      onRequest: (ex) => {
        ex.request.headers[c.header] = ex.consumer?.name ?? '';
        return CONTINUE;
      },
      close: async () => {
        closed++;
      },
    }),
  };
  const known = registerFactories(policyFactories(), extra as PolicyFactory<unknown>);
  assert.equal(policyFactories().tag, undefined);
  const cfg = config({ key: { type: 'api-key' }, tag: { type: 'tag', header: 'x-who' } }, ['key', 'tag']);
  assert.deepEqual(validatePolicies(cfg, known), []);
  const built = buildPolicies(cfg, depsForTest(cfg.consumers), known);
  assert.equal(built.get('key')?.type, apiKey.type);
  const chain = createChain(routePolicies(cfg.routes[0]!.policies, built));
  const ex = exchangeForTest({ headers: { 'x-api-key': 'k1' } });
  assert.equal(outcome(await chain.runRequest(ex)), 'continue');
  assert.equal(ex.request.headers['x-who'], 'acme');
  assert.deepEqual(await closePolicies(built), []);
  assert.equal(closed, 1);
});
