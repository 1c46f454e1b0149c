/** @module Tests for hop-by-hop header stripping. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HOP_BY_HOP_HEADERS, stripHopByHop } from '../../../src/lib/hop-by-hop.ts';

type H = Record<string, string | string[] | number | undefined>;

describe('stripHopByHop', () => {
  /** [description, input, expected, keepTeTrailers?] */
  const cases: ReadonlyArray<readonly [string, H, H, boolean?]> = [
    ['leaves end-to-end headers', { host: 'a', accept: '*/*' }, { host: 'a', accept: '*/*' }],
    [
      'removes the fixed list',
      {
        connection: 'keep-alive',
        'keep-alive': 'timeout=5',
        'proxy-connection': 'keep-alive',
        te: 'gzip',
        trailer: 'x-sum',
        'transfer-encoding': 'chunked',
        upgrade: 'websocket',
        'http2-settings': 'AAA',
        'proxy-authenticate': 'Basic',
        'proxy-authorization': 'Basic eA==',
        accept: 'text/html',
      },
      { accept: 'text/html' },
    ],
    ['removes nominated headers', { connection: 'close, X-Foo', 'x-foo': '1', 'x-bar': '2' }, { 'x-bar': '2' }],
    [
      'trims and lower-cases tokens',
      { connection: '  X-A ,\tx-B,,  ,x-c ', 'x-a': '1', 'x-b': '2', 'x-c': '3', 'x-d': '4' },
      { 'x-d': '4' },
    ],
    ['handles an array of Connection values', { connection: ['x-a', 'X-B'], 'x-a': '1', 'x-b': '2' }, {}],
    ['does not let Connection remove host', { connection: 'host, x-a', host: 'h', 'x-a': '1' }, { host: 'h' }],
    ['ignores a numeric Connection value', { connection: 5, 'x-a': '1' }, { 'x-a': '1' }],
    ['drops TE by default', { te: 'trailers', accept: 'a' }, { accept: 'a' }],
    ['keeps te: trailers when asked', { te: 'trailers, deflate', connection: 'TE' }, { te: 'trailers' }, true],
    ['drops other TE values even when asked', { te: 'gzip' }, {}, true],
    ['reads trailers as a whole TE member only', { te: 'xtrailers, trailers-x;q=1' }, {}, true],
    ['keeps trailers given with a weight', { te: 'gzip, Trailers;q=0.5' }, { te: 'trailers' }, true],
  ];
  for (const [description, input, expected, keep] of cases) {
    it(description, () => {
      const headers = { ...input };
      stripHopByHop(headers, keep ?? false);
      assert.deepEqual(headers, expected);
    });
  }

  it('exports a lower-case set', () => {
    for (const name of HOP_BY_HOP_HEADERS) assert.equal(name, name.toLowerCase());
    assert.ok(HOP_BY_HOP_HEADERS.has('transfer-encoding'));
  });
});
