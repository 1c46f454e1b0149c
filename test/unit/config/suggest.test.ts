/** @module Did-you-mean suggestions and route path rules. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatPath } from '../../../src/config/positions.ts';
import { routePathProblem } from '../../../src/config/references.ts';
import { levenshtein, suggest } from '../../../src/config/suggest.ts';

test('levenshtein distance', () => {
  assert.equal(levenshtein('', 'abc'), 3);
  assert.equal(levenshtein('match', 'matc'), 1);
  assert.equal(levenshtein('users', 'usres'), 2);
  assert.equal(levenshtein('kitten', 'sitting'), 3);
});

test('suggest: close words, prefixes, case and separators; nothing for far words', () => {
  const keys = ['match', 'upstream', 'rewrite', 'maxHeaderSize', 'idleTimeout'];
  assert.equal(suggest('matc', keys), 'match');
  assert.equal(suggest('upstrem', keys), 'upstream');
  assert.equal(suggest('max_header_size', keys), 'maxHeaderSize');
  assert.equal(suggest('idle', keys), 'idleTimeout');
  assert.equal(suggest('completelyUnrelated', keys), undefined);
  assert.equal(suggest('match', ['match']), undefined);
});

test('formatPath', () => {
  assert.equal(formatPath(['routes', 2, 'upstream']), 'routes[2].upstream');
  assert.equal(formatPath(['policies', 'jwt', 'type']), 'policies.jwt.type');
  assert.equal(formatPath(['policies', 'bad name']), 'policies["bad name"]');
  assert.equal(formatPath([]), '');
});

test('route paths: /exact, :param segments and a trailing /* only', () => {
  for (const ok of ['/', '/*', '/users', '/users/', '/users/:id', '/users/:id/orders/*', '/a-b.c~d']) {
    assert.equal(routePathProblem(ok), undefined, ok);
  }
  for (const bad of ['/a/*/b', '/api*', '/:1', '/a/:x/:x', '/a//b', '/f/(.*)', '/a:b']) {
    assert.ok(routePathProblem(bad), bad);
  }
});
