/** @module Table tests for path rewrites. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compileRewrite, type RewriteConfig, validateRewrite } from '../../../src/proxy/rewrite.ts';

/** [description, rewrite, input, expected] */
const cases: ReadonlyArray<readonly [string, RewriteConfig, string, string]> = [
  ['strip: below the prefix', { stripPrefix: '/api' }, '/api/users', '/users'],
  ['strip: the prefix itself', { stripPrefix: '/api' }, '/api', '/'],
  ['strip: prefix with slash', { stripPrefix: '/api' }, '/api/', '/'],
  ['strip: segment boundary only', { stripPrefix: '/api' }, '/apix/users', '/apix/users'],
  ['strip: no match', { stripPrefix: '/api' }, '/other', '/other'],
  ['strip: prefix written with a slash', { stripPrefix: '/api/' }, '/api/users', '/users'],
  ['strip: nested', { stripPrefix: '/a/b' }, '/a/b/c', '/c'],
  ['strip: root is a no-op', { stripPrefix: '/' }, '/a', '/a'],
  ['add', { addPrefix: '/v1' }, '/users', '/v1/users'],
  ['add: no double slash', { addPrefix: '/v1/' }, '/users', '/v1/users'],
  ['add: to root', { addPrefix: '/v1' }, '/', '/v1/'],
  ['add: root is a no-op', { addPrefix: '/' }, '/a', '/a'],
  ['strip + add', { stripPrefix: '/users', addPrefix: '/v1/users' }, '/users/42', '/v1/users/42'],
  [
    'strip + add: exact prefix keeps no slash',
    { stripPrefix: '/users', addPrefix: '/v1/users' },
    '/users',
    '/v1/users',
  ],
  ['strip + add: exact prefix, slash kept', { stripPrefix: '/users', addPrefix: '/v1/users' }, '/users/', '/v1/users/'],
  ['strip + add: not stripped still added', { stripPrefix: '/users', addPrefix: '/v1' }, '/other', '/v1/other'],
  ['regex: numbered capture', { regex: { pattern: '^/old/(.*)$', replacement: '/new/$1' } }, '/old/a/b', '/new/a/b'],
  [
    'regex: named capture',
    { regex: { pattern: '^/u/(?<id>[0-9]+)$', replacement: '/users/$<id>' } },
    '/u/42',
    '/users/42',
  ],
  ['regex: every match', { regex: { pattern: '-', replacement: '_' } }, '/a-b-c', '/a_b_c'],
  ['regex: no match', { regex: { pattern: '^/x', replacement: '/y' } }, '/a', '/a'],
  ['regex: result gets a leading slash', { regex: { pattern: '^/', replacement: '' } }, '/a', '/a'],
  ['regex: empty result is root', { regex: { pattern: '^/a$', replacement: '' } }, '/a', '/'],
  ['regex: $$ is a dollar', { regex: { pattern: 'x', replacement: '$$' } }, '/x', '/$'],
  [
    'order: strip → regex → add',
    { stripPrefix: '/api', regex: { pattern: '^/v(\\d+)/', replacement: '/version-$1/' }, addPrefix: '/svc' },
    '/api/v2/items',
    '/svc/version-2/items',
  ],
  [
    'order: regex sees / after a whole strip',
    { stripPrefix: '/api', regex: { pattern: '^/$', replacement: '/index' } },
    '/api',
    '/index',
  ],
];

describe('compileRewrite', () => {
  for (const [description, rewrite, input, expected] of cases) {
    it(`${description}: ${input} → ${expected}`, () => {
      // undefined means "no rewrite": the path goes upstream unchanged.
      const fn = compileRewrite(rewrite) ?? ((path: string) => path);
      assert.equal(fn(input), expected);
      assert.equal(fn(input), expected, 'a global regex keeps no state between calls');
    });
  }

  it('returns undefined when there is nothing to do', () => {
    assert.equal(compileRewrite(undefined), undefined);
    assert.equal(compileRewrite({}), undefined);
    assert.equal(compileRewrite({ stripPrefix: '/', addPrefix: '/' }), undefined);
  });

  it('validates the regex', () => {
    assert.equal(validateRewrite({ regex: { pattern: '^/(a)', replacement: '$1' } }), undefined);
    assert.equal(validateRewrite(undefined), undefined);
    assert.match(validateRewrite({ regex: { pattern: '(', replacement: '' } }) ?? '', /invalid rewrite regex/);
    assert.throws(() => compileRewrite({ regex: { pattern: '[', replacement: '' } }));
  });
});
