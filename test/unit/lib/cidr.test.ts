/** @module Table tests for address lists. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createAddressMatcher, validateCidr } from '../../../src/lib/cidr.ts';

describe('validateCidr', () => {
  const valid = [
    '10.0.0.0/8',
    '10.0.0.1',
    '0.0.0.0/0',
    '192.168.1.0/24',
    '::1',
    '::/0',
    'fd00::/8',
    '2001:db8::/32',
    '::ffff:10.0.0.0/104',
    '1.2.3.4/32',
    '::1/128',
  ];
  const invalid = [
    '',
    'x',
    '10.0.0.0/33',
    '10.0.0.0/',
    '10.0.0.0/-1',
    '10.0.0.0/8/8',
    '::1/129',
    '10.0.0/8',
    '256.0.0.1',
    'example.com',
    '10.0.0.0/ 8',
    '10.0.0.0/abc',
    ' 10.0.0.1',
  ];
  for (const text of valid) it(`accepts ${text}`, () => assert.equal(validateCidr(text), undefined));
  for (const text of invalid) {
    it(`rejects ${JSON.stringify(text)}`, () => assert.equal(typeof validateCidr(text), 'string'));
  }
});

describe('createAddressMatcher', () => {
  /** [list, ip, expected] */
  const cases: ReadonlyArray<readonly [readonly string[], string, boolean]> = [
    [[], '127.0.0.1', false],
    [[], '::1', false],
    [['127.0.0.0/8'], '127.0.0.1', true],
    [['127.0.0.0/8'], '127.255.255.255', true],
    [['127.0.0.0/8'], '128.0.0.1', false],
    [['127.0.0.0/8'], '::ffff:127.0.0.1', true],
    [['127.0.0.0/8'], '::ffff:7f00:1', true],
    [['127.0.0.0/8'], '::1', false],
    [['::ffff:10.0.0.0/104'], '10.1.2.3', true],
    [['10.0.0.1'], '10.0.0.1', true],
    [['10.0.0.1'], '10.0.0.2', false],
    [['10.0.0.1'], '::ffff:10.0.0.1', true],
    [['192.168.1.0/24', '10.0.0.0/8'], '10.20.30.40', true],
    [['192.168.1.0/24', '10.0.0.0/8'], '192.168.2.1', false],
    [['0.0.0.0/0'], '8.8.8.8', true],
    [['0.0.0.0/0'], '2001:db8::1', false],
    [['::/0'], '2001:db8::1', true],
    [['::1'], '::1', true],
    [['::1'], '0:0:0:0:0:0:0:1', true],
    [['fe80::/10'], 'fe80::1%eth0', true],
    [['2001:db8::/32'], '2001:DB8::abcd', true],
    [['2001:db8::/32'], '2001:db9::1', false],
    [['127.0.0.0/8'], 'not-an-ip', false],
    [['127.0.0.0/8'], '', false],
    [['::1'], 'garbage:::', false],
  ];
  for (const [list, ip, expected] of cases) {
    it(`${JSON.stringify(list)} ${expected ? 'matches' : 'does not match'} ${ip}`, () => {
      assert.equal(createAddressMatcher(list)(ip), expected);
    });
  }

  it('throws on an invalid entry', () => {
    assert.throws(() => createAddressMatcher(['10.0.0.0/40']), /prefix length/);
    assert.throws(() => createAddressMatcher(['nope']), /not an IP address/);
  });
});
