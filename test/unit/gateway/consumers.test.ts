import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { hashPassword } from '../../../src/gateway/basic-auth/password.ts';
import { createConsumerDirectory, validateConsumers } from '../../../src/gateway/consumers.ts';
import { consumer } from '../../../src/gateway/schema.ts';

const sha = (s: string) => `sha256:${createHash('sha256').update(s).digest('hex')}`;

describe('consumer directory', async () => {
  const hash = await hashPassword('s3cret');
  const configs = [
    consumer.parse({ name: 'acme', groups: ['gold'], apiKeys: ['plain-key-1', sha('hashed-key-2')] }),
    consumer.parse({
      name: 'bob',
      metadata: { tier: 'free' },
      basicAuth: [
        { username: 'bob', password: hash },
        { username: 'bob2', password: 'plain-pw' },
      ],
      jwt: { value: 'user-42' },
      mtls: { subject: 'CN=bob,O=Example' },
    }),
    consumer.parse({ name: 'carol', jwt: [{ claim: 'client_id', value: 'carol-app' }] }),
  ];
  const dir = createConsumerDirectory(configs);

  test('api keys, plain and sha256, found by digest', () => {
    assert.equal(dir.byApiKey('plain-key-1')?.name, 'acme');
    assert.equal(dir.byApiKey('hashed-key-2')?.name, 'acme');
    assert.equal(dir.byApiKey(sha('hashed-key-2')), undefined, 'the hash itself is not a key');
    assert.equal(dir.byApiKey('plain-key-2'), undefined);
    assert.equal(dir.byApiKey(''), undefined);
  });

  test('a verified key is remembered; unknown keys never are, and the memory stays bounded', () => {
    for (let i = 0; i < 3; i++) assert.equal(dir.byApiKey('plain-key-1')?.name, 'acme');
    for (let i = 0; i < 3; i++) assert.equal(dir.byApiKey('plain-key-1x'), undefined);
    const many = createConsumerDirectory([
      consumer.parse({ name: 'many', apiKeys: Array.from({ length: 1100 }, (_, i) => `key-${i}`) }),
    ]);
    for (let i = 0; i < 1100; i++) assert.equal(many.byApiKey(`key-${i}`)?.name, 'many');
    // The oldest were dropped from the cache, not from the directory.
    assert.equal(many.byApiKey('key-0')?.name, 'many');
    assert.equal(many.byApiKey('key-1099')?.name, 'many');
    assert.equal(many.byApiKey('key-1100'), undefined);
  });

  test('basic users with scrypt and plain passwords', async () => {
    assert.match(hash, /^scrypt:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    assert.equal((await dir.byBasic('bob', 's3cret'))?.name, 'bob');
    assert.equal((await dir.byBasic('bob', 's3cret'))?.name, 'bob', 'cached');
    assert.equal(await dir.byBasic('bob', 'wrong'), undefined);
    assert.equal(await dir.byBasic('nobody', 's3cret'), undefined);
    assert.equal((await dir.byBasic('bob2', 'plain-pw'))?.name, 'bob');
  });

  test('jwt claim and mTLS subject mappings', () => {
    assert.equal(dir.byClaims?.({ sub: 'user-42' })?.name, 'bob');
    assert.equal(dir.byClaims?.({ sub: 'x', client_id: 'carol-app' })?.name, 'carol');
    assert.equal(dir.byClaims?.({ sub: { nested: 1 } }), undefined);
    assert.equal(dir.byCertificateSubject?.('CN=bob,O=Example')?.name, 'bob');
    assert.equal(dir.byCertificateSubject?.('CN=eve'), undefined);
    assert.deepEqual(dir.byName('bob')?.metadata, { tier: 'free' });
    assert.ok(Object.isFrozen(dir.byName('acme')));
  });

  test('schema rejects malformed hashes; duplicates are reported with paths', () => {
    assert.equal(consumer.safeParse({ name: 'x', apiKeys: ['sha256:abc'] }).success, false);
    assert.equal(
      consumer.safeParse({ name: 'x', basicAuth: [{ username: 'a', password: 'scrypt:bad' }] }).success,
      false,
    );
    const issues = validateConsumers([
      consumer.parse({ name: 'a', apiKeys: ['k'] }),
      consumer.parse({ name: 'b', apiKeys: [sha('k')], jwt: { value: '1' } }),
      consumer.parse({ name: 'a', jwt: { claim: 'sub', value: '1' } }),
    ]);
    assert.deepEqual(
      issues.map((i) => i.path.join('.')),
      ['consumers.1.apiKeys.0', 'consumers.2.name', 'consumers.2.jwt.0'],
    );
  });
});
