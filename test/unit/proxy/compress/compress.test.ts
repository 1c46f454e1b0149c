/** Compression: negotiation by q-values, eligibility, header edits, and round trips through real zlib. */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync, zstdDecompressSync } from 'node:zlib';
import {
  compileCompressOptions,
  createCompressor,
  type Encoding,
  negotiate,
  prepareHeaders,
  type ResponseHeaders,
  routeCompress,
  shouldCompress,
  wouldCompressFull,
} from '../../../../src/proxy/compress/index.ts';

const opts = compileCompressOptions(routeCompress.parse(true));

describe('negotiate', () => {
  const table: [string | undefined, Encoding | undefined][] = [
    [undefined, undefined],
    ['', undefined],
    ['gzip', 'gzip'],
    ['x-gzip', 'gzip'],
    ['gzip, deflate, br, zstd', 'zstd'], // ties → server order (zstd, br, gzip)
    ['gzip, br', 'br'],
    ['gzip;q=1, br;q=0.5', 'gzip'],
    ['br;q=0, gzip;q=0.1', 'gzip'],
    ['*', 'zstd'],
    ['*;q=0.5, br;q=0', 'zstd'],
    ['deflate', undefined],
    ['gzip;q=0', undefined],
    ['identity', undefined],
    ['gzip;q=0.5, identity', undefined],
    ['gzip;q=0.5', 'gzip'],
    ['GZIP ; Q=0.7 , br;q=0.6', 'gzip'],
    ['gzip;q=abc, br', 'br'],
    ['gzip;q=0.0001, br;q=2', undefined], // not qvalues: refusals
    ['gzip;q=0.001', 'gzip'],
    ['gzip;q=1.000', 'gzip'],
    ['gzip;Q=0.5;foo=bar, br;q=0.4', 'gzip'],
    ['identity;q=0', undefined], // nothing acceptable: identity all the same (RFC 9110 §12.5.3)
    ['*;q=0', undefined],
    ['identity;q=0, *;q=0, br', 'br'],
  ];
  for (const [header, expected] of table) {
    it(`${JSON.stringify(header)} → ${expected}`, () => {
      assert.equal(negotiate(header, opts), expected);
      assert.equal(negotiate(header, opts), expected); // memoised answer agrees
    });
  }
  it('follows a configured server preference', () => {
    const gzipFirst = compileCompressOptions(routeCompress.parse({ encodings: ['gzip', 'br'] }));
    assert.equal(negotiate('br, gzip, zstd', gzipFirst), 'gzip');
    assert.equal(negotiate('zstd', gzipFirst), undefined);
  });
});

describe('shouldCompress', () => {
  const base = { 'content-type': 'text/html; charset=utf-8', 'content-length': '5000' };
  const table: [string, number, ResponseHeaders, boolean][] = [
    ['html', 200, base, true],
    ['json', 200, { ...base, 'content-type': 'application/json' }, true],
    ['problem+json suffix', 200, { ...base, 'content-type': 'application/problem+json' }, true],
    ['svg', 200, { ...base, 'content-type': 'image/svg+xml' }, true],
    ['png', 200, { ...base, 'content-type': 'image/png' }, false],
    ['no content type', 200, { 'content-length': '5000' }, false],
    ['already encoded', 200, { ...base, 'content-encoding': 'gzip' }, false],
    ['identity encoding', 200, { ...base, 'content-encoding': 'identity' }, true],
    ['206', 206, base, false],
    ['content-range', 200, { ...base, 'content-range': 'bytes 0-1/2' }, false],
    ['small', 200, { ...base, 'content-length': '100' }, false],
    ['unknown length', 200, { 'content-type': 'text/plain' }, true],
    ['204', 204, base, false],
    ['304', 304, base, false],
    ['no-transform among others', 200, { ...base, 'cache-control': 'max-age=5, No-Transform' }, false],
    ['no-transform only as a quoted value', 200, { ...base, 'cache-control': 'no-cache="no-transform-x"' }, true],
    ['no-transform', 200, { ...base, 'cache-control': 'public, no-transform' }, false],
  ];
  for (const [name, status, headers, expected] of table) {
    it(name, () => assert.equal(shouldCompress(status, headers, opts), expected));
  }
});

describe('wouldCompressFull (a 304 standing for a 200)', () => {
  const table: [string, ResponseHeaders, boolean][] = [
    ['no content type (usual for a 304)', { etag: '"a"' }, true],
    ['compressible type', { 'content-type': 'text/css' }, true],
    ['other type', { 'content-type': 'image/png' }, false],
    ['small', { 'content-length': '10' }, false],
    ['no-transform', { 'cache-control': 'no-transform' }, false],
    ['encoded', { 'content-encoding': 'br' }, false],
  ];
  for (const [name, headers, expected] of table) {
    it(name, () => assert.equal(wouldCompressFull(headers, opts), expected));
  }
});

describe('prepareHeaders', () => {
  it('sets encoding, drops length, merges Vary, weakens strong ETags', () => {
    const h: ResponseHeaders = { 'content-length': '10', etag: '"abc"', vary: 'Accept-Language' };
    prepareHeaders(h, 'br');
    assert.deepEqual(h, { 'content-encoding': 'br', etag: 'W/"abc"', vary: 'Accept-Language, Accept-Encoding' });
    const weak: ResponseHeaders = { etag: 'W/"x"', vary: 'accept-encoding' };
    prepareHeaders(weak, 'gzip');
    assert.equal(weak.etag, 'W/"x"');
    assert.equal(weak.vary, 'accept-encoding');
    const none: ResponseHeaders = {};
    prepareHeaders(none, 'zstd');
    assert.equal(none.vary, 'Accept-Encoding');
  });
});

describe('createCompressor', () => {
  const text = Buffer.from('Portico streams compressed bodies. '.repeat(2000));
  const decode: Record<Encoding, (b: Buffer) => Buffer> = {
    gzip: gunzipSync,
    br: brotliDecompressSync,
    zstd: zstdDecompressSync,
  };
  for (const encoding of ['gzip', 'br', 'zstd'] as const) {
    for (const flush of [false, true]) {
      it(`${encoding} round trip (flush each write: ${flush})`, async () => {
        const chunks = [text.subarray(0, 1000), text.subarray(1000, 40_000), text.subarray(40_000)];
        const out = await buffer(Readable.from(chunks).pipe(createCompressor(encoding, opts, flush)));
        assert.ok(out.length < text.length / 10);
        assert.deepEqual(decode[encoding](out), text);
      });
    }
  }
  it('emits output per chunk when flushing each write', async () => {
    const c = createCompressor('gzip', opts, true);
    const first = new Promise<Buffer>((resolve) => c.once('data', resolve));
    c.write('event: one\n\n');
    assert.ok((await first).length > 0); // arrives before end()
    c.end();
    c.resume();
  });
});
