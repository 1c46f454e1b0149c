/** @module Unit tests of PROXY protocol v1/v2 encoding and parsing (IPv4, IPv6, LOCAL, partial, garbage). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  encodeProxyV1,
  encodeProxyV2,
  looksLikeProxyHeader,
  parseProxyHeader,
  V2_SIGNATURE,
} from '../../../src/l4/proxy-protocol.ts';

const src4 = { address: '192.0.2.10', port: 51234 };
const dst4 = { address: '198.51.100.1', port: 443 };
const src6 = { address: '2001:db8::10', port: 40000 };
const dst6 = { address: '2001:db8:0:1::1', port: 8443 };

test('v1 TCP4 and TCP6 lines', () => {
  assert.equal(encodeProxyV1(src4, dst4).toString(), 'PROXY TCP4 192.0.2.10 198.51.100.1 51234 443\r\n');
  assert.equal(encodeProxyV1(src6, dst6).toString(), 'PROXY TCP6 2001:db8::10 2001:db8:0:1::1 40000 8443\r\n');
  // Dual-stack sockets report IPv4 peers as IPv4-mapped IPv6.
  assert.equal(
    encodeProxyV1({ address: '::ffff:10.0.0.1', port: 1 }, { address: '::ffff:10.0.0.2', port: 2 }).toString(),
    'PROXY TCP4 10.0.0.1 10.0.0.2 1 2\r\n',
  );
  assert.equal(encodeProxyV1({ address: 'x', port: 1 }, dst4).toString(), 'PROXY UNKNOWN\r\n');
});

test('v1 round trip, with payload after the header', () => {
  for (const [s, d, family] of [
    [src4, dst4, 'tcp4'],
    [src6, dst6, 'tcp6'],
  ] as const) {
    const header = encodeProxyV1(s, d);
    const r = parseProxyHeader(Buffer.concat([header, Buffer.from('PING\r\n')]));
    assert.deepEqual(r, {
      kind: 'header',
      length: header.length,
      header: { version: 1, command: 'proxy', family, source: s, destination: d },
    });
  }
  const unknown = parseProxyHeader(Buffer.from('PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n'));
  assert.equal(unknown.kind === 'header' && unknown.header.family, 'unknown');
});

test('v2 round trip for IPv4, IPv6 and mixed families', () => {
  const v4 = encodeProxyV2(src4, dst4);
  assert.equal(v4.length, 28);
  assert.deepEqual(parseProxyHeader(v4), {
    kind: 'header',
    length: 28,
    header: { version: 2, command: 'proxy', family: 'tcp4', source: src4, destination: dst4 },
  });
  const v6 = encodeProxyV2(src6, dst6);
  assert.equal(v6.length, 52);
  assert.deepEqual(parseProxyHeader(v6), {
    kind: 'header',
    length: 52,
    header: { version: 2, command: 'proxy', family: 'tcp6', source: src6, destination: dst6 },
  });
  const mixed = parseProxyHeader(encodeProxyV2(src4, dst6));
  assert.equal(mixed.kind === 'header' && mixed.header.source?.address, '::ffff:192.0.2.10');
  const full = { address: '1:2:3:4:5:6:7:8', port: 9 };
  const fullParsed = parseProxyHeader(encodeProxyV2(full, { address: '::', port: 0 }));
  assert.equal(fullParsed.kind === 'header' && fullParsed.header.source?.address, '1:2:3:4:5:6:7:8');
  assert.equal(fullParsed.kind === 'header' && fullParsed.header.destination?.address, '::');
});

test('v2 LOCAL command, and TLVs are skipped', () => {
  const local = encodeProxyV2();
  assert.deepEqual(parseProxyHeader(local), {
    kind: 'header',
    length: 16,
    header: { version: 2, command: 'local', family: 'unknown' },
  });
  const withTlv = Buffer.from(encodeProxyV2(src4, dst4));
  const tlv = Buffer.from([0x04, 0x00, 0x03, 1, 2, 3]); // PP2_TYPE_NOOP
  withTlv.writeUInt16BE(12 + tlv.length, 14);
  const r = parseProxyHeader(Buffer.concat([withTlv, tlv, Buffer.from('x')]));
  assert.equal(r.kind === 'header' && r.length, 28 + tlv.length);
});

test('partial headers ask for more', () => {
  for (const header of [encodeProxyV1(src6, dst6), encodeProxyV2(src6, dst6)]) {
    for (let n = 1; n < header.length; n++) {
      assert.equal(parseProxyHeader(header.subarray(0, n)).kind, 'need-more', `prefix ${n}`);
    }
  }
});

test('garbage and malformed headers are invalid', () => {
  const bad = [
    'GET / HTTP/1.1\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n',
    'PROXY TCP4 1.2.3.4 ::1 1 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n',
    'PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n',
    'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n',
    `PROXY TCP4 ${'1'.repeat(120)}`,
  ];
  for (const text of bad) assert.equal(parseProxyHeader(Buffer.from(text)).kind, 'invalid', text);
  const badVersion = Buffer.from(encodeProxyV2(src4, dst4));
  badVersion[12] = 0x31;
  assert.equal(parseProxyHeader(badVersion).kind, 'invalid');
  const badCommand = Buffer.from(encodeProxyV2(src4, dst4));
  badCommand[12] = 0x2f;
  assert.equal(parseProxyHeader(badCommand).kind, 'invalid');
  const shortBlock = Buffer.from(encodeProxyV2(src4, dst4));
  shortBlock.writeUInt16BE(4, 14);
  assert.equal(parseProxyHeader(shortBlock).kind, 'invalid');
  assert.equal(parseProxyHeader(Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x01])).kind, 'invalid');
});

test('looksLikeProxyHeader spots v1 and v2 starts but not short or ordinary data', () => {
  assert.equal(looksLikeProxyHeader(Buffer.from('PROXY TCP4 ')), true);
  assert.equal(looksLikeProxyHeader(V2_SIGNATURE), true);
  assert.equal(looksLikeProxyHeader(Buffer.from('PRO')), false);
  assert.equal(looksLikeProxyHeader(Buffer.from('*1\r\n$4\r\nPING\r\n')), false);
});
