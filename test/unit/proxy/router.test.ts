/** @module Table tests for the router: matching rules and precedence. */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, it } from 'node:test';
import { type RouteConfig, route as routeSchema } from '../../../src/config/schema.ts';
import { compilePathPattern } from '../../../src/proxy/path-pattern.ts';
import { createRouter, normalizeHost, validateRouteHost, validateRoutePath } from '../../../src/proxy/router.ts';

type Match = { host?: string | string[]; path?: string; methods?: string[]; headers?: Record<string, string> };

function routes(...matches: Array<[string, Match]>): RouteConfig[] {
  return matches.map(([name, match]) => routeSchema.parse({ name, match, upstream: 'u' }));
}

/** [description, method, host, path, headers, expected route name or undefined] */
type Case = readonly [string, string, string | undefined, string, IncomingHttpHeaders, string | undefined];

function runCases(table: RouteConfig[], cases: readonly Case[]): void {
  const router = createRouter(table);
  for (const [description, method, host, path, headers, expected] of cases) {
    it(`${description}: ${method} ${host ?? '(no host)'} ${path} → ${expected ?? 'none'}`, () => {
      const found = router.match(method, host, path, headers);
      assert.equal(found?.route.name, expected);
      if (found !== undefined) assert.equal(table[found.index], found.route);
    });
  }
}

describe('router: paths', () => {
  const table = routes(
    ['exact', { path: '/exact' }],
    ['exact-slash', { path: '/slash/' }],
    ['root', { path: '/' }],
    ['static', { path: '/static/*' }],
    ['user', { path: '/users/:id' }],
    ['user-posts', { path: '/users/:id/posts/:post' }],
    ['user-tree', { path: '/files/:owner/*' }],
    ['colon-literal', { path: '/v1/items:search' }],
  );
  runCases(table, [
    ['exact', 'GET', undefined, '/exact', {}, 'exact'],
    ['exact is strict about a trailing slash', 'GET', undefined, '/exact/', {}, undefined],
    ['exact with a trailing slash', 'GET', undefined, '/slash/', {}, 'exact-slash'],
    ['exact with a trailing slash needs it', 'GET', undefined, '/slash', {}, undefined],
    ['root', 'GET', undefined, '/', {}, 'root'],
    ['prefix itself', 'GET', undefined, '/static', {}, 'static'],
    ['prefix with slash', 'GET', undefined, '/static/', {}, 'static'],
    ['below prefix', 'GET', undefined, '/static/a/b', {}, 'static'],
    ['prefix at segment boundary only', 'GET', undefined, '/staticx', {}, undefined],
    ['param', 'GET', undefined, '/users/42', {}, 'user'],
    ['param does not match empty', 'GET', undefined, '/users/', {}, undefined],
    ['param is one segment', 'GET', undefined, '/users/42/x', {}, undefined],
    ['param with trailing slash', 'GET', undefined, '/users/42/', {}, undefined],
    ['two params', 'GET', undefined, '/users/42/posts/7', {}, 'user-posts'],
    ['param prefix itself', 'GET', undefined, '/files/ann', {}, 'user-tree'],
    ['param prefix below', 'GET', undefined, '/files/ann/a/b', {}, 'user-tree'],
    ['param prefix needs its param', 'GET', undefined, '/files/', {}, undefined],
    ['colon inside a segment is literal', 'GET', undefined, '/v1/items:search', {}, 'colon-literal'],
    ['nothing', 'GET', undefined, '/nothing', {}, undefined],
  ]);

  it('captures params', () => {
    const router = createRouter(table);
    assert.deepEqual(router.match('GET', undefined, '/users/42/posts/a%20b', {})?.params, { id: '42', post: 'a%20b' });
    assert.deepEqual(router.match('GET', undefined, '/files/ann/x', {})?.params, { owner: 'ann' });
    assert.deepEqual(router.match('GET', undefined, '/exact', {})?.params, {});
  });

  it('reuses one frozen match for routes without params', () => {
    const router = createRouter(table);
    const a = router.match('GET', undefined, '/static/a', {});
    assert.equal(a, router.match('GET', undefined, '/static/b', {}));
    assert.ok(Object.isFrozen(a));
  });
});

describe('router: hosts', () => {
  const table = routes(
    ['any', { path: '/*' }],
    ['wild', { host: '*.example.com', path: '/*' }],
    ['deep-wild', { host: '*.api.example.com', path: '/*' }],
    ['exact', { host: 'www.example.com', path: '/*' }],
    ['list', { host: ['a.test', 'B.Test.'], path: '/*' }],
    ['exact-only-x', { host: 'x.example.com', path: '/x' }],
    ['v6', { host: '[::1]', path: '/*' }],
  );
  runCases(table, [
    ['exact host', 'GET', 'www.example.com', '/', {}, 'exact'],
    ['host case and port', 'GET', 'WWW.Example.COM:8080', '/', {}, 'exact'],
    ['trailing dot', 'GET', 'www.example.com.', '/', {}, 'exact'],
    ['wildcard one label', 'GET', 'shop.example.com', '/', {}, 'wild'],
    ['wildcard many labels', 'GET', 'a.b.example.com', '/', {}, 'wild'],
    ['wildcard not the apex', 'GET', 'example.com', '/', {}, 'any'],
    ['wildcard not a lookalike', 'GET', 'badexample.com', '/', {}, 'any'],
    ['longer wildcard first', 'GET', 'v1.api.example.com', '/', {}, 'deep-wild'],
    ['apex of the longer wildcard falls to the shorter', 'GET', 'api.example.com', '/', {}, 'wild'],
    ['list entry', 'GET', 'a.test', '/', {}, 'list'],
    ['list entry normalised', 'GET', 'b.test:80', '/', {}, 'list'],
    ['exact host falls through when its routes miss', 'GET', 'x.example.com', '/y', {}, 'wild'],
    ['exact host route', 'GET', 'x.example.com', '/x', {}, 'exact-only-x'],
    ['no host header', 'GET', undefined, '/', {}, 'any'],
    ['IPv6 literal with port', 'GET', '[::1]:8080', '/', {}, 'v6'],
    ['unknown host', 'GET', 'other.org', '/', {}, 'any'],
  ]);

  it('returns undefined when only host routes exist and none match', () => {
    const router = createRouter(routes(['h', { host: 'a.test' }]));
    assert.equal(router.match('GET', 'b.test', '/', {}), undefined);
    assert.equal(router.match('GET', undefined, '/', {}), undefined);
    assert.equal(router.match('GET', 'a.test', '/', {})?.route.name, 'h');
  });
});

describe('router: methods and headers', () => {
  const table = routes(
    ['get', { path: '/r', methods: ['GET'] }],
    ['post', { path: '/r', methods: ['POST', 'PUT'] }],
    ['json', { path: '/r', headers: { 'Content-Type': 'application/json' } }],
    ['beta-json', { path: '/r', headers: { 'x-beta': '1', 'content-type': 'application/json' } }],
    ['all', { path: '/r' }],
  );
  runCases(table, [
    ['GET', 'GET', undefined, '/r', {}, 'get'],
    ['HEAD matches GET', 'HEAD', undefined, '/r', {}, 'get'],
    ['POST', 'POST', undefined, '/r', {}, 'post'],
    ['PUT', 'PUT', undefined, '/r', {}, 'post'],
    [
      'more headers first',
      'DELETE',
      undefined,
      '/r',
      { 'x-beta': '1', 'content-type': 'application/json' },
      'beta-json',
    ],
    ['header value exact', 'DELETE', undefined, '/r', { 'content-type': 'application/json' }, 'json'],
    ['header value is case-sensitive', 'DELETE', undefined, '/r', { 'content-type': 'Application/JSON' }, 'all'],
    [
      'array header value',
      'DELETE',
      undefined,
      '/r',
      { 'content-type': ['text/plain', 'application/json'] } as never,
      'json',
    ],
    ['methods beat headers', 'GET', undefined, '/r', { 'content-type': 'application/json' }, 'get'],
    ['fallback', 'OPTIONS', undefined, '/r', {}, 'all'],
  ]);
});

describe('router: precedence', () => {
  // Declared in the least specific order on purpose: file order must only break ties.
  const table = routes(
    ['catch-all', { path: '/*' }],
    ['api-prefix', { path: '/api/*' }],
    ['api-v1-prefix', { path: '/api/v1/*' }],
    ['api-param-tail', { path: '/api/:version/*' }],
    ['any-any', { path: '/:a/:b' }],
    ['api-any', { path: '/api/:x' }],
    ['any-users', { path: '/:x/users' }],
    ['api-users', { path: '/api/users' }],
    ['tie-first', { path: '/tie' }],
    ['tie-second', { path: '/tie' }],
    ['host-catch-all', { host: 'h.test', path: '/*' }],
    ['wild-exact', { host: '*.test', path: '/api/users' }],
  );
  runCases(table, [
    ['exact beats params and prefixes', 'GET', undefined, '/api/users', {}, 'api-users'],
    ['leftmost literal wins between params', 'GET', undefined, '/api/orders', {}, 'api-any'],
    ['more literal segments beats fewer', 'GET', undefined, '/x/users', {}, 'any-users'],
    ['params beat prefixes', 'GET', undefined, '/api/v1', {}, 'api-any'],
    ['longest prefix first', 'GET', undefined, '/api/v1/x', {}, 'api-v1-prefix'],
    ['prefix with param beats a shorter one', 'GET', undefined, '/api/v2/x', {}, 'api-param-tail'],
    ['shorter prefix', 'GET', undefined, '/api', {}, 'api-prefix'],
    ['two params', 'GET', undefined, '/a/b', {}, 'any-any'],
    ['catch-all', 'GET', undefined, '/a/b/c', {}, 'catch-all'],
    ['file order breaks ties', 'GET', undefined, '/tie', {}, 'tie-first'],
    ['host beats path specificity', 'GET', 'h.test', '/api/users', {}, 'host-catch-all'],
    ['wildcard host beats no host', 'GET', 'w.test', '/api/users', {}, 'wild-exact'],
    ['wildcard host route misses → no-host routes', 'GET', 'w.test', '/api/v1/x', {}, 'api-v1-prefix'],
  ]);
});

describe('router: validation', () => {
  const badPaths = [
    '/a/*/b',
    '/a*',
    '/a/:',
    '/a/:1x',
    '/a/:id/:id',
    '/a//b',
    '/a/../b',
    '/%61',
    '/a?x',
    '/a b',
    '/a/*/*',
  ];
  for (const path of badPaths) {
    it(`rejects path ${JSON.stringify(path)}`, () => {
      assert.equal(typeof compilePathPattern(path), 'string');
      assert.throws(() => createRouter(routes(['r', { path }])), /routes\[0\] \(r\)/);
    });
  }
  const goodPaths = [
    '/',
    '/*',
    '/a',
    '/a/',
    '/a/*',
    '/a/:id',
    '/a/:id/*',
    '/a/:id/',
    '/:x',
    '/a:b',
    '/~u/.well-known/x',
  ];
  for (const path of goodPaths) {
    it(`accepts path ${JSON.stringify(path)}`, () => assert.equal(typeof compilePathPattern(path), 'object'));
  }
  const badHosts = ['', 'a..b', '*.', '*', 'a.*.b', 'a:80', 'exa mple.com', '-a.com', '**.a.com'];
  for (const host of badHosts) {
    it(`host ${JSON.stringify(host)} ${host === '*' ? 'means any' : 'is rejected'}`, () => {
      assert.equal(validateRouteHost(host) === undefined, host === '*');
    });
  }
  it('accepts good hosts', () => {
    for (const host of [
      'example.com',
      'EXAMPLE.com.',
      '*.example.com',
      'localhost',
      '[::1]',
      '127.0.0.1',
      'a_b.test',
    ]) {
      assert.equal(validateRouteHost(host), undefined, host);
    }
  });
  it('normalises hosts', () => {
    assert.equal(normalizeHost('Example.COM:8080'), 'example.com');
    assert.equal(normalizeHost('example.com.'), 'example.com');
    assert.equal(normalizeHost('[::1]:443'), '[::1]');
    assert.equal(normalizeHost('example.com'), 'example.com');
  });
  it('validateRoutePath reports errors', () => {
    assert.equal(validateRoutePath('/users/:id'), undefined);
    assert.match(validateRoutePath('/a//b') ?? '', /normal form/);
  });
  it('stays correct past the host cache bound', () => {
    const router = createRouter(routes(['wild', { host: '*.example.com' }], ['any', { path: '/*' }]));
    for (let i = 0; i < 2100; i++) {
      assert.equal(router.match('GET', `h${i}.example.com`, '/', {})?.route.name, 'wild');
      assert.equal(router.match('GET', `h${i}.other.org`, '/', {})?.route.name, 'any');
    }
  });
  it('an empty route list matches nothing', () => {
    assert.equal(createRouter([]).match('GET', 'a', '/', {}), undefined);
  });
});
