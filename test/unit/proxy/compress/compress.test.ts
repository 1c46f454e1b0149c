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
  const table: [string, number, ResponseHeaders, string, boolean][] = [
    ['html', 200, base, 'GET', true],
    ['json', 200, { ...base, 'content-type': 'application/json' }, 'GET', true],
    ['problem+json suffix', 200, { ...base, 'content-type': 'application/problem+json' }, 'GET', true],
    ['svg', 200, { ...base, 'content-type': 'image/svg+xml' }, 'GET', true],
    ['png', 200, { ...base, 'content-type': 'image/png' }, 'GET', false],
    ['no content type', 200, { 'content-length': '5000' }, 'GET', false],
    ['already encoded', 200, { ...base, 'content-encoding': 'gzip' }, 'GET', false],
    ['identity encoding', 200, { ...base, 'content-encoding': 'identity' }, 'GET', true],
    ['206', 206, base, 'GET', false],
    ['content-range', 200, { ...base, 'content-range': 'bytes 0-1/2' }, 'GET', false],
    ['small', 200, { ...base, 'content-length': '100' }, 'GET', false],
    ['unknown length', 200, { 'content-type': 'text/plain' }, 'GET', true],
    ['204', 204, base, 'GET', false],
    ['304', 304, base, 'GET', false],
    ['HEAD', 200, base, 'HEAD', false],
    ['no-transform', 200, { ...base, 'cache-control': 'public, no-transform' }, 'GET', false],
  ];
  for (const [name, status, headers, method, expected] of table) {
    it(name, () => assert.equal(shouldCompress(status, headers, method, opts), expected));
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
