/** @module The HTTP/1 request-head checks that run before the proxy (RFC 9112 §2.3, §3.2, §6.1). */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { checkHttp1Request, clientErrorCode, MAX_HEADER_FIELDS } from '../../../src/proxy/http1-checks.ts';

/** A request head as Node's parser hands it over. */
function head(version: string, raw: string[], url = '/'): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    if (name === 'transfer-encoding' && headers[name] !== undefined) headers[name] += `, ${raw[i + 1]}`;
    else headers[name] ??= raw[i + 1]!;
  }
  const [major, minor] = version.split('.').map(Number);
  return {
    httpVersion: version,
    httpVersionMajor: major,
    httpVersionMinor: minor,
    rawHeaders: raw,
    headers,
    url,
  } as unknown as IncomingMessage;
}

/** [description, request, expected status and details, or undefined when it may proceed] */
const cases: ReadonlyArray<readonly [string, IncomingMessage, readonly [number, string] | undefined]> = [
  ['a plain HTTP/1.1 request', head('1.1', ['Host', 'x']), undefined],
  ['HTTP/1.0 without Host', head('1.0', []), undefined],
  ['HTTP/2.0 in a text request line', head('2.0', ['Host', 'x']), [505, 'http_version:2.0']],
  ['HTTP/0.9', head('0.9', []), [505, 'http_version:0.9']],
  ['HTTP/1.1 without Host', head('1.1', []), [400, 'missing_host']],
  ['two Host lines', head('1.1', ['Host', 'a', 'host', 'a']), [400, 'duplicate_host']],
  ['an empty Host', head('1.1', ['Host', '']), [400, 'empty_host']],
  ['an empty Host with OPTIONS *', head('1.1', ['Host', ''], '*'), [400, 'empty_host']],
  ['an empty Host with absolute-form', head('1.1', ['Host', ''], 'http://a.example/'), undefined],
  ['an invalid Host', head('1.1', ['Host', 'a b']), [400, 'invalid_host']],
  ['an invalid Host with absolute-form', head('1.1', ['Host', 'a/b'], 'http://a.example/'), [400, 'invalid_host']],
  ['Transfer-Encoding: chunked', head('1.1', ['Host', 'x', 'Transfer-Encoding', 'chunked']), undefined],
  ['Transfer-Encoding: Chunked', head('1.1', ['Host', 'x', 'Transfer-Encoding', 'Chunked']), undefined],
  [
    'Transfer-Encoding in HTTP/1.0',
    head('1.0', ['Transfer-Encoding', 'chunked']),
    [400, 'transfer_encoding_in_http10'],
  ],
  [
    'gzip before chunked',
    head('1.1', ['Host', 'x', 'Transfer-Encoding', 'gzip, chunked']),
    [501, 'transfer_coding_unsupported'],
  ],
  [
    'gzip on its own line before chunked',
    head('1.1', ['Host', 'x', 'Transfer-Encoding', 'gzip', 'Transfer-Encoding', 'chunked']),
    [501, 'transfer_coding_unsupported'],
  ],
  ['chunked not last', head('1.1', ['Host', 'x', 'Transfer-Encoding', 'chunked, gzip']), [400, 'chunked_not_final']],
];

describe('checkHttp1Request', () => {
  for (const [description, req, expected] of cases) {
    it(description, () => {
      const reply = checkHttp1Request(req);
      if (expected === undefined) assert.equal(reply, undefined);
      else assert.deepEqual([reply?.status, reply?.details], expected);
    });
  }

  it('refuses more header fields than MAX_HEADER_FIELDS with 431', () => {
    const raw = ['Host', 'x'];
    for (let i = 1; i < MAX_HEADER_FIELDS; i++) raw.push(`x-${i}`, 'v');
    assert.equal(checkHttp1Request(head('1.1', raw)), undefined);
    raw.push('x-last', 'v');
    assert.equal(checkHttp1Request(head('1.1', raw))?.status, 431);
  });
});

describe('clientErrorCode', () => {
  /** A parse error as Node's HTTP server reports it: where the parser stopped inside the bytes it had. */
  const parseError = (code: string, raw: string, at: number, reason = ''): Error =>
    Object.assign(new Error(reason), { code, reason, rawPacket: Buffer.from(raw, 'latin1'), bytesParsed: at });

  it('tells an unknown method token (501) from a malformed one (400)', () => {
    assert.equal(clientErrorCode(parseError('HPE_INVALID_METHOD', 'FOO / HTTP/1.1\r\n', 1)), 'GW_NOT_IMPLEMENTED');
    assert.equal(clientErrorCode(parseError('HPE_INVALID_METHOD', 'get / HTTP/1.1\r\n', 0)), 'GW_NOT_IMPLEMENTED');
    assert.equal(clientErrorCode(parseError('HPE_INVALID_METHOD', 'G(T / HTTP/1.1\r\n', 1)), 'GW_BAD_REQUEST');
    assert.equal(clientErrorCode(parseError('HPE_INVALID_METHOD', 'GARBAGE\r\n\r\n', 1)), 'GW_BAD_REQUEST');
    const pipelined = 'GET / HTTP/1.1\r\nHost: x\r\n\r\nBREW /pot HTTP/1.1\r\n';
    assert.equal(
      clientErrorCode(parseError('HPE_INVALID_METHOD', pipelined, pipelined.indexOf('BREW') + 1)),
      'GW_NOT_IMPLEMENTED',
    );
  });

  it('answers 505 to a well-formed version it does not speak, 400 to a malformed one', () => {
    const unsupported = parseError('HPE_INVALID_VERSION', 'GET / HTTP/3.0\r\n', 14, 'Invalid HTTP version');
    assert.equal(clientErrorCode(unsupported), 'GW_VERSION_NOT_SUPPORTED');
    const malformed = parseError('HPE_INVALID_VERSION', 'GET / HTTP/11\r\n', 12, 'Expected dot');
    assert.equal(clientErrorCode(malformed), 'GW_BAD_REQUEST');
    assert.equal(
      clientErrorCode(parseError('HPE_PAUSED_H2_UPGRADE', 'PRI * HTTP/2.0\r\n', 16)),
      'GW_VERSION_NOT_SUPPORTED',
    );
  });

  it('tells a long request line (414) from large header fields (431)', () => {
    const longLine = parseError('HPE_HEADER_OVERFLOW', `GET /${'a'.repeat(9000)}`, 9000);
    assert.equal(clientErrorCode(longLine), 'GW_URI_TOO_LONG');
    const bigField = parseError('HPE_HEADER_OVERFLOW', `GET / HTTP/1.1\r\nX: ${'a'.repeat(9000)}`, 9000);
    assert.equal(clientErrorCode(bigField), 'GW_HEADERS_TOO_LARGE');
  });
});
