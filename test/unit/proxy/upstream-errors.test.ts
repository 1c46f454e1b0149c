/** How upstream failures become local replies and outcomes, and which ones are keep-alive races. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BadUpstreamResponseError,
  isStaleConnectionError,
  replyForUpstreamError,
} from '../../../src/proxy/upstream-errors.ts';

function err(code: string | undefined, message = 'x', extra: Record<string, unknown> = {}): Error & { code?: string } {
  return Object.assign(new Error(message), code === undefined ? {} : { code }, extra);
}

test('a connect timeout is a 504 and, for retries, a connect failure (nothing was sent)', () => {
  const { reply, outcome } = replyForUpstreamError(err('UND_ERR_CONNECT_TIMEOUT'));
  assert.equal(reply.code, 'GW_UPSTREAM_CONNECT_TIMEOUT');
  assert.equal(reply.status, 504);
  assert.equal(outcome.kind, 'connect-failure');
});

test('responses nobody asked for and oversized heads are bad responses, not resets', () => {
  for (const e of [
    err('UND_ERR_SOCKET', 'bad upgrade'),
    err('UND_ERR_SOCKET', 'bad response'),
    err('UND_ERR_HEADERS_OVERFLOW'),
    new BadUpstreamResponseError('status_out_of_range'),
  ]) {
    const { reply } = replyForUpstreamError(e);
    assert.equal(reply.code, 'GW_UPSTREAM_BAD_RESPONSE', e.message);
    assert.equal(reply.status, 502);
  }
  assert.equal(
    replyForUpstreamError(new BadUpstreamResponseError('status_out_of_range')).reply.details,
    'bad_response:status_out_of_range',
  );
  assert.equal(replyForUpstreamError(err('UND_ERR_SOCKET', 'other side closed')).reply.code, 'GW_UPSTREAM_RESET');
});

test("undici's parser errors (no code) name llhttp's reason in the details", () => {
  const e = Object.assign(new Error('Response does not match the HTTP/1.1 protocol (Invalid header value char)'), {
    name: 'HTTPParserError',
  });
  const { reply } = replyForUpstreamError(e);
  assert.equal(reply.code, 'GW_UPSTREAM_BAD_RESPONSE');
  assert.equal(reply.details, 'bad_response:invalid_header_value_char');
});

test('a closed or reset pooled connection is a keep-alive race; a fresh one that never read a byte is not', () => {
  assert.equal(
    isStaleConnectionError(err('UND_ERR_SOCKET', 'other side closed', { socket: { bytesRead: 120 } })),
    true,
  );
  assert.equal(isStaleConnectionError(err('UND_ERR_SOCKET', 'other side closed', { socket: { bytesRead: 0 } })), false);
  assert.equal(isStaleConnectionError(err('UND_ERR_SOCKET', 'closed')), true);
  assert.equal(isStaleConnectionError(err('ECONNRESET')), true);
  assert.equal(isStaleConnectionError(err('EPIPE')), true);
  assert.equal(isStaleConnectionError(err('UND_ERR_SOCKET', 'bad upgrade', { socket: { bytesRead: 9 } })), false);
  assert.equal(isStaleConnectionError(err('UND_ERR_HEADERS_TIMEOUT')), false);
  assert.equal(isStaleConnectionError(err('ECONNREFUSED')), false);
  assert.equal(isStaleConnectionError(err(undefined)), false);
});
