/** @module Unit tests of SNI routing: exact names, one-label wildcards, default, first route wins. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSniRouter } from '../../../src/l4/sni-router.ts';

test('exact beats wildcard; a wildcard covers one label; the default catches the rest', () => {
  const router = createSniRouter(
    [
      { names: ['api.example.com'], value: 'api' },
      { names: ['*.example.com', 'Other.Test.'], value: 'wild' },
      { names: ['api.example.com'], value: 'shadowed' },
    ],
    'default',
  );
  assert.equal(router.match('api.example.com'), 'api');
  assert.equal(router.match('www.example.com'), 'wild');
  assert.equal(router.match('other.test'), 'wild');
  assert.equal(router.match('a.b.example.com'), 'default');
  assert.equal(router.match('example.com'), 'default');
  assert.equal(router.match(undefined), 'default');
  assert.equal(createSniRouter([{ names: ['a.test'], value: 1 }]).match('b.test'), undefined);
});

test('malformed names are rejected when the router is built', () => {
  assert.throws(() => createSniRouter([{ names: ['*.'], value: 1 }]));
  assert.throws(() => createSniRouter([{ names: ['a.*.com'], value: 1 }]));
  assert.throws(() => createSniRouter([{ names: [''], value: 1 }]));
});
