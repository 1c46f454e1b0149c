/** @module Table tests for route header rules. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HeaderRulesConfig } from '../../../src/config/schema.ts';
import { compileHeaderRules, type HeaderObject } from '../../../src/proxy/header-rules.ts';

/** [description, rules, input, expected] */
const cases: ReadonlyArray<readonly [string, HeaderRulesConfig, HeaderObject, HeaderObject]> = [
  ['remove', { remove: ['Cookie', 'x-missing'] }, { cookie: 'a=1', accept: '*/*' }, { accept: '*/*' }],
  ['set replaces', { set: { 'X-Env': 'prod' } }, { 'x-env': 'dev' }, { 'x-env': 'prod' }],
  ['set replaces an array', { set: { 'x-a': '1' } }, { 'x-a': ['2', '3'] }, { 'x-a': '1' }],
  ['set creates', { set: { 'x-env': 'prod' } }, {}, { 'x-env': 'prod' }],
  ['add creates', { add: { 'X-Tag': 'a' } }, {}, { 'x-tag': 'a' }],
  ['add appends to a string', { add: { 'x-tag': 'b' } }, { 'x-tag': 'a' }, { 'x-tag': ['a', 'b'] }],
  ['add appends to an array', { add: { 'x-tag': 'c' } }, { 'x-tag': ['a', 'b'] }, { 'x-tag': ['a', 'b', 'c'] }],
  [
    'add appends to a number',
    { add: { 'content-length': '5' } },
    { 'content-length': 4 },
    { 'content-length': ['4', '5'] },
  ],
  [
    'remove → set → add',
    { remove: ['x-a', 'x-b'], set: { 'x-a': 'set' }, add: { 'x-a': 'added', 'x-b': 'added' } },
    { 'x-a': 'old', 'x-b': 'old' },
    { 'x-a': ['set', 'added'], 'x-b': 'added' },
  ],
  ['names differing in case: last wins', { set: { 'X-A': '1', 'x-a': '2' } }, {}, { 'x-a': '2' }],
];

describe('compileHeaderRules', () => {
  for (const [description, rules, input, expected] of cases) {
    it(description, () => {
      const compiled = compileHeaderRules(rules);
      assert.ok(compiled);
      const headers = structuredClone(input);
      compiled.apply(headers);
      assert.deepEqual(headers, expected);
    });
  }

  it('does not mutate an incoming array it appends to', () => {
    const original = ['a'];
    const headers: HeaderObject = { 'x-tag': original };
    compileHeaderRules({ add: { 'x-tag': 'b' } })!.apply(headers);
    assert.deepEqual(original, ['a']);
    assert.deepEqual(headers['x-tag'], ['a', 'b']);
  });

  it('returns undefined when there is nothing to do', () => {
    assert.equal(compileHeaderRules(undefined), undefined);
    assert.equal(compileHeaderRules({}), undefined);
    assert.equal(compileHeaderRules({ remove: [], set: {}, add: {} }), undefined);
  });

  it('applies to a flat response header list', () => {
    const rules = compileHeaderRules({
      remove: ['x-internal'],
      set: { 'cache-control': 'no-store' },
      add: { vary: 'origin' },
    })!;
    const result = rules.applyToFlat([
      'Content-Type',
      'text/plain',
      'X-Internal',
      'secret',
      'Vary',
      'accept',
      'Set-Cookie',
      'a=1',
      'set-cookie',
      'b=2',
      'Cache-Control',
      'max-age=60',
    ]);
    assert.deepEqual(result, {
      'content-type': 'text/plain',
      vary: ['accept', 'origin'],
      'set-cookie': ['a=1', 'b=2'],
      'cache-control': 'no-store',
    });
  });
});
