import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { firstDuplicateName } from '../../../../src/gateway/validate/duplicate-keys.ts';

describe('firstDuplicateName', () => {
  test('finds a repeated member name with its pointer', () => {
    assert.equal(firstDuplicateName('{"role":"admin","role":"user"}'), '/role');
    assert.equal(firstDuplicateName('{"a":{"b":1,"c":[1,{"x":1,"x":2}]}}'), '/a/c/1/x');
    assert.equal(firstDuplicateName('[{"k":1},{"k":2,"k":3}]'), '/1/k');
  });

  test('compares names after unescaping and escapes the pointer', () => {
    assert.equal(firstDuplicateName('{"role":1,"r\\u006fle":2}'), '/role');
    assert.equal(firstDuplicateName('{"a/b":{"~":1,"~":2}}'), '/a~1b/~0');
  });

  test('the same name in sibling objects, in values or in strings is no duplicate', () => {
    for (const text of [
      '{"a":{"x":1},"b":{"x":1}}',
      '[{"x":1},{"x":2}]',
      '{"a":"a","b":"a"}',
      '{"a":"{\\"b\\":1,\\"b\\":2}"}',
      '{"q":"\\"","r":"\\\\"}',
      '[]',
      '"x"',
      '12',
      `${'['.repeat(10_000)}${']'.repeat(10_000)}`,
    ]) {
      assert.equal(firstDuplicateName(text), undefined, text.slice(0, 40));
    }
  });
});
