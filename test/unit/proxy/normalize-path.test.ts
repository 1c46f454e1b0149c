/** @module Table tests for request-target normalisation. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isValidHost, normalizePath } from '../../../src/proxy/normalize-path.ts';

/** [target, path, query] */
const accepted: ReadonlyArray<readonly [string, string, string]> = [
  ['/', '/', ''],
  ['/a/b', '/a/b', ''],
  ['/a/b?x=1', '/a/b', 'x=1'],
  ['/a/b?', '/a/b', ''],
  ['/?x', '/', 'x'],
  ['/a?b/../c', '/a', 'b/../c'],
  ['/a?x=%zz&y=/..//', '/a', 'x=%zz&y=/..//'],
  ['/a?q=caf\u00e9', '/a', 'q=caf\u00e9'],
  ['/%61dmin', '/admin', ''],
  ['/%41%5a%7e%2d%2E%5F', '/AZ~-._', ''],
  ['/a%3ab', '/a%3Ab', ''],
  ['/a%3Ab', '/a%3Ab', ''],
  ['/a%20b', '/a%20b', ''],
  ['/%e2%82%ac', '/%E2%82%AC', ''],
  ['/a%25b', '/a%25b', ''],
  ['/a%252Fb', '/a%252Fb', ''],
  ['/a/../admin', '/admin', ''],
  ['/a/./b/', '/a/b/', ''],
  ['/a/./b', '/a/b', ''],
  ['/a/.', '/a/', ''],
  ['/a/..', '/', ''],
  ['/a/b/..', '/a/', ''],
  ['/a/b/../', '/a/', ''],
  ['/..', '/', ''],
  ['/../a', '/a', ''],
  ['/../../../etc/passwd', '/etc/passwd', ''],
  ['/a/b/c/./../../g', '/a/g', ''],
  ['/./', '/', ''],
  ['/.', '/', ''],
  ['/%2e%2e/admin', '/admin', ''],
  ['/a/%2e%2e/admin', '/admin', ''],
  ['/a/.%2e/admin', '/admin', ''],
  ['/a/%2E/b', '/a/b', ''],
  ['/a/..?x', '/', 'x'],
  ['/a/.?x', '/a/', 'x'],
  ['//', '/', ''],
  ['//admin', '/admin', ''],
  ['/a//b///c', '/a/b/c', ''],
  ['/a//', '/a/', ''],
  ['/a//../b', '/b', ''],
  ['/.a/b', '/.a/b', ''],
  ['/a./b', '/a./b', ''],
  ['/...', '/...', ''],
  ['/a/.../b', '/a/.../b', ''],
  ['/..a', '/..a', ''],
  ['/a.b.c', '/a.b.c', ''],
  ['/a;b=c', '/a;b=c', ''],
  ["/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,=", ''],
  ['http://example.com/a?x', '/a', 'x'],
  ['HTTPS://example.com:8443/a/../b', '/b', ''],
  ['http://example.com', '/', ''],
  ['http://example.com?x=1', '/', 'x=1'],
];

const rejected: readonly string[] = [
  '',
  '*',
  'a/b',
  'example.com/a',
  'ftp://example.com/a',
  'http:///a',
  'http://user:pass@example.com/a',
  'http://exa mple.com/a',
  'http://example.com\\@evil/a',
  '/a#frag',
  '/a?x#frag',
  '/a%2Fb',
  '/a%2fb',
  '/a%5Cb',
  '/a%5cb',
  '/x%00',
  '/%zz',
  '/%4',
  '/%',
  '/a%g1',
  '/a b',
  '/a\tb',
  '/a\u0000b',
  '/a\u007fb',
  '/a\u00e9',
  '/a\u20acb',
  '/a\\b',
  '/..\\a',
  '/a?x y',
  '/a?x\u0001',
];

describe('normalizePath', () => {
  for (const [target, path, query] of accepted) {
    it(`accepts ${JSON.stringify(target)}`, () => {
      const result = normalizePath(target);
      assert.ok(result.ok, `expected ok, got ${JSON.stringify(result)}`);
      assert.equal(result.path, path);
      assert.equal(result.query, query);
    });
  }

  for (const target of rejected) {
    it(`rejects ${JSON.stringify(target)}`, () => {
      const result = normalizePath(target);
      assert.equal(result.ok, false, `expected rejection, got ${JSON.stringify(result)}`);
      if (!result.ok) assert.ok(result.reason.length > 0);
    });
  }

  it('reports the authority of an absolute-form target', () => {
    const result = normalizePath('http://Example.com:8080/a');
    assert.ok(result.ok);
    assert.equal(result.authority, 'Example.com:8080');
    const origin = normalizePath('/a');
    assert.ok(origin.ok);
    assert.equal(origin.authority, undefined);
  });

  it('returns the input string itself on the fast path', () => {
    const target = '/api/v1/users/42';
    const result = normalizePath(target);
    assert.ok(result.ok);
    assert.equal(result.path, target);
  });

  it('is idempotent', () => {
    for (const [target] of accepted) {
      const once = normalizePath(target);
      assert.ok(once.ok);
      const twice = normalizePath(once.path);
      assert.ok(twice.ok);
      assert.equal(twice.path, once.path, target);
    }
  });
});

describe('isValidHost (RFC 9110 §7.2, RFC 3986 §3.2.2)', () => {
  const valid = [
    'example.com',
    'Example.COM:8080',
    'a',
    '127.0.0.1',
    '127.0.0.1:80',
    'host:',
    '[::1]',
    '[::1]:443',
    '[2001:db8::a:b]',
    '[v1.fe80::a+en1]',
    'xn--bcher-kva.example',
    'a_b-c~d.e',
    "a!$&'()*+,;=b",
    'caf%C3%A9.example',
  ];
  const invalid = [
    '',
    ':80',
    'a b',
    'a/b',
    'a?b',
    'a#b',
    'user@host',
    'a\\b',
    'a:80x',
    'a:123456',
    'a:-1',
    'a:80:81',
    '[::1',
    '[::1]x',
    '[]',
    '[zz::1]',
    '[v.x]',
    'caf\u00e9.example',
    'a%2',
    'a%zz',
    'a\tb',
    '"a"',
  ];
  for (const host of valid) it(`accepts ${JSON.stringify(host)}`, () => assert.equal(isValidHost(host), true));
  for (const host of invalid) it(`rejects ${JSON.stringify(host)}`, () => assert.equal(isValidHost(host), false));
});
