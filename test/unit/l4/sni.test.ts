/** @module Unit tests of the ClientHello SNI parser: whole, fragmented, split over records, no SNI, garbage. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseClientHello } from '../../../src/l4/sni.ts';

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function extension(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), u16(data.length), data]);
}

function sniExtension(name: string): Buffer {
  const host = Buffer.from(name, 'latin1');
  const entry = Buffer.concat([Buffer.from([0]), u16(host.length), host]);
  return extension(0, Buffer.concat([u16(entry.length), entry]));
}

/** A ClientHello handshake message (type + 24-bit length + body). */
function clientHello(extensions: Buffer[] | undefined, padding = 0): Buffer {
  const parts = [
    Buffer.from([0x03, 0x03]),
    Buffer.alloc(32, 7), // random
    Buffer.from([32]),
    Buffer.alloc(32, 1), // session id
    u16(4),
    Buffer.from([0x13, 0x01, 0x13, 0x02]),
    Buffer.from([1, 0]),
  ];
  if (extensions !== undefined) {
    const all = [...extensions];
    if (padding > 0) all.push(extension(21, Buffer.alloc(padding)));
    const body = Buffer.concat(all);
    parts.push(u16(body.length), body);
  }
  const body = Buffer.concat(parts);
  const head = Buffer.from([1, 0, 0, 0]);
  head.writeUIntBE(body.length, 1, 3);
  return Buffer.concat([head, body]);
}

/** Wraps handshake bytes in TLS records of at most `recordSize` bytes each. */
function records(handshake: Buffer, recordSize = 16384): Buffer {
  const out: Buffer[] = [];
  for (let i = 0; i < handshake.length; i += recordSize) {
    const frag = handshake.subarray(i, i + recordSize);
    out.push(Buffer.from([0x16, 0x03, 0x01]), u16(frag.length), frag);
  }
  return Buffer.concat(out);
}

const withSni = records(clientHello([extension(10, Buffer.from([0, 2, 0, 29])), sniExtension('API.Example.com.')]));

test('reads the server name, lower-cased and without a trailing dot', () => {
  assert.deepEqual(parseClientHello(withSni), { kind: 'client-hello', serverName: 'api.example.com' });
});

test('every byte-prefix of a hello asks for more; the whole one parses', () => {
  for (let n = 0; n < withSni.length; n++) {
    assert.equal(parseClientHello(withSni.subarray(0, n)).kind, 'need-more', `prefix of ${n} bytes`);
  }
});

test('a hello split over several TLS records is reassembled', () => {
  const split = records(clientHello([sniExtension('a.test')], 3000), 100);
  assert.deepEqual(parseClientHello(split), { kind: 'client-hello', serverName: 'a.test' });
  assert.equal(parseClientHello(split.subarray(0, split.length - 1)).kind, 'need-more');
});

test('bytes after the hello (the rest of the flight) are ignored', () => {
  const more = Buffer.concat([withSni, Buffer.from([0x14, 0x03, 0x03, 0, 1, 1])]);
  assert.equal(parseClientHello(more).kind, 'client-hello');
});

test('no SNI: with other extensions, and with no extensions at all', () => {
  assert.deepEqual(parseClientHello(records(clientHello([extension(10, Buffer.from([0, 2, 0, 29]))]))), {
    kind: 'client-hello',
    serverName: undefined,
  });
  assert.deepEqual(parseClientHello(records(clientHello(undefined))), { kind: 'client-hello', serverName: undefined });
});

test('garbage is invalid at once', () => {
  assert.equal(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'invalid');
  assert.equal(parseClientHello(Buffer.from([0x16, 0x09, 0x01, 0, 5])).kind, 'invalid');
  assert.equal(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0, 0])).kind, 'invalid');
  // A handshake record that is not a ClientHello (a ServerHello).
  const serverHello = Buffer.from(withSni);
  serverHello[5] = 2;
  assert.equal(parseClientHello(serverHello).kind, 'invalid');
});

test('a bad server name or overrunning lengths are invalid', () => {
  assert.equal(parseClientHello(records(clientHello([sniExtension('bad name!')]))).kind, 'invalid');
  const hello = clientHello([sniExtension('a.test')]);
  hello.writeUInt16BE(0xffff, hello.length - sniExtension('a.test').length - 2); // extensions length
  assert.equal(parseClientHello(records(hello)).kind, 'invalid');
});

test('a hello larger than the peek limit is invalid, even before it is complete', () => {
  const big = records(clientHello([sniExtension('a.test')], 20000));
  assert.equal(parseClientHello(big.subarray(0, 100), 16384).kind, 'invalid');
  assert.equal(parseClientHello(big, 16384).kind, 'invalid');
  assert.equal(parseClientHello(big, 32768).kind, 'client-hello');
});
