/** Request ids (src/proxy/request-id.ts): the client's when well-formed, else a fresh UUID v4. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newRequestId, requestIdFrom } from '../../../src/proxy/request-id.ts';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('request ids', () => {
  it('makes UUID v4 text, all distinct, over several refills of the random pool', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const id = newRequestId();
      assert.match(id, UUID_V4);
      seen.add(id);
    }
    assert.equal(seen.size, 2000);
    // Every hex digit shows up in every free position: the bytes are used, not a fixed pattern.
    const digits = new Set([...seen].map((id) => id[0]));
    assert.equal(digits.size, 16);
  });

  it('keeps a well-formed client id and replaces anything else', () => {
    assert.equal(requestIdFrom('abc-123_x.y:z@w/+='), 'abc-123_x.y:z@w/+=');
    for (const bad of [undefined, '', 'has space', 'ü', 'x'.repeat(129), 'a\nb', ['one', 'two']]) {
      assert.match(requestIdFrom(bad as string | string[] | undefined), UUID_V4);
    }
  });
});
