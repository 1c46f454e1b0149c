/** The admin API's config redaction: secrets found by place and by shape; nothing else changes. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { REDACTED, redactConfig } from '../../../src/admin/redact.ts';

// biome-ignore lint/suspicious/noExplicitAny: the redacted tree is read by known paths
type Tree = Record<string, any>;

describe('redactConfig', () => {
  it('redacts secrets by where they sit', () => {
    const out = redactConfig({
      consumers: [{ name: 'acme', apiKeys: ['k1', 'k2'], basicAuth: [{ username: 'u', password: 'p' }] }],
      policies: {
        jwt: { type: 'jwt-auth', secret: 's', jwks: { keys: [{ kty: 'oct', k: 'raw', kid: 'a' }] } },
        intro: { type: 'oauth2-introspection', clientId: 'id', clientSecret: 'cs' },
        limit: { type: 'rate-limit', key: 'consumer' },
      },
      listeners: [{ tls: { certificates: [{ cert: '/c.pem', key: '/k.pem' }] } }],
      routes: [{ headers: { request: { set: { Authorization: 'Bearer t', 'x-trace': 'on' } } } }],
    }) as Tree;
    assert.deepEqual(out.consumers[0].apiKeys, [REDACTED, REDACTED]);
    assert.equal(out.consumers[0].basicAuth[0].password, REDACTED);
    assert.equal(out.consumers[0].basicAuth[0].username, 'u');
    assert.equal(out.policies.jwt.secret, REDACTED);
    assert.deepEqual(out.policies.jwt.jwks.keys[0], { kty: 'oct', k: REDACTED, kid: 'a' });
    assert.equal(out.policies.intro.clientSecret, REDACTED);
    assert.equal(out.policies.intro.clientId, 'id');
    assert.equal(out.policies.limit.key, 'consumer', 'a key selector is not a secret');
    assert.deepEqual(out.listeners[0].tls.certificates[0], { cert: '/c.pem', key: REDACTED });
    assert.deepEqual(out.routes[0].headers.request.set, { Authorization: REDACTED, 'x-trace': 'on' });
  });

  it('redacts secrets by their shape: PEM private keys, URL passwords', () => {
    const out = redactConfig({
      state: { store: 'redis', url: 'redis://:hunter2@10.0.0.5:6379/0' },
      cache: { url: 'redis://10.0.0.5:6379' },
      pem: '-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n',
    }) as Tree;
    assert.equal(out.state.url, `redis://${REDACTED}@10.0.0.5:6379/0`);
    assert.equal(out.cache.url, 'redis://10.0.0.5:6379');
    assert.equal(out.pem, REDACTED);
  });

  it('leaves the input untouched', () => {
    const input = Object.freeze({ consumers: Object.freeze([Object.freeze({ apiKeys: Object.freeze(['k']) })]) });
    redactConfig(input);
    assert.deepEqual(input, { consumers: [{ apiKeys: ['k'] }] });
  });
});
