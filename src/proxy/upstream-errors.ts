/**
 * @module How an upstream failure before the response head becomes a local reply, and what the balancer is told.
 */
import { type LocalReply, localReply } from '../errors.ts';
import type { AttemptOutcome, Pool } from '../upstream/types.ts';

/** Thrown into the request body stream when a chunked upload outgrows the route's limit. */
export class BodyTooLargeError extends Error {
  readonly code = 'PORTICO_BODY_TOO_LARGE';
}

/**
 * Thrown into an attempt whose response undici parsed but Portico will not forward (a status past 599, a
 * transfer coding other than chunked, too many interim responses). The message is the log's detail.
 */
export class BadUpstreamResponseError extends Error {
  readonly code = 'PORTICO_BAD_RESPONSE';
}

/** Maps an undici / socket error to the local reply a client gets before any response byte was sent. */
export function replyForUpstreamError(err: Error & { code?: string; connectFailure?: boolean }): {
  reply: LocalReply;
  outcome: AttemptOutcome;
} {
  const code = err.code ?? '';
  // Portico's HTTP/1.1 client marks every failure before a connection existed (a failed TLS handshake among
  // them): no request byte was sent, so any method may go to another target.
  if (err.connectFailure === true && code !== 'UND_ERR_CONNECT_TIMEOUT') {
    return {
      reply: localReply('GW_UPSTREAM_CONNECT_FAILED', `connect_failed:${code || err.name}`),
      outcome: { kind: 'connect-failure' },
    };
  }
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      // No connection, so no request byte left: a connect failure for retries (any method may go elsewhere).
      return {
        reply: localReply('GW_UPSTREAM_CONNECT_TIMEOUT', 'connect_timeout'),
        outcome: { kind: 'connect-failure' },
      };
    case 'UND_ERR_HEADERS_TIMEOUT':
      return { reply: localReply('GW_UPSTREAM_TIMEOUT', 'response_timeout'), outcome: { kind: 'timeout' } };
    case 'UND_ERR_BODY_TIMEOUT':
      return { reply: localReply('GW_UPSTREAM_TIMEOUT', 'idle_timeout'), outcome: { kind: 'timeout' } };
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
    // The target's certificate cannot be trusted: as good as unreachable, and nothing was sent.
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'CERT_HAS_EXPIRED':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return {
        reply: localReply('GW_UPSTREAM_CONNECT_FAILED', `connect_failed:${code}`),
        outcome: { kind: 'connect-failure' },
      };
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_STATUS':
    case 'HPE_INVALID_VERSION':
    case 'HPE_CR_EXPECTED':
    case 'HPE_LF_EXPECTED':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
    // A response head over undici's maxHeaderSize (16 KiB): nginx's "upstream sent too big header".
    case 'UND_ERR_HEADERS_OVERFLOW':
    case 'ERR_INVALID_CHAR':
    case 'ERR_HTTP_INVALID_HEADER_VALUE':
      return { reply: localReply('GW_UPSTREAM_BAD_RESPONSE', `bad_response:${code}`), outcome: { kind: 'reset' } };
    case 'PORTICO_BAD_RESPONSE':
      return {
        reply: localReply('GW_UPSTREAM_BAD_RESPONSE', `bad_response:${err.message}`),
        outcome: { kind: 'reset' },
      };
    case 'UND_ERR_SOCKET':
      // undici's names for a response nobody asked for: a 101 to a request without Upgrade, bytes before a request.
      if (err.message === 'bad upgrade' || err.message === 'bad response') {
        return {
          reply: localReply('GW_UPSTREAM_BAD_RESPONSE', `bad_response:${err.message}`),
          outcome: { kind: 'reset' },
        };
      }
      return { reply: localReply('GW_UPSTREAM_RESET', `reset:${code}`), outcome: { kind: 'reset' } };
    default:
      if (code.startsWith('HPE_') || err.name === 'HTTPParserError') {
        const why = code || parserReason(err.message);
        return { reply: localReply('GW_UPSTREAM_BAD_RESPONSE', `bad_response:${why}`), outcome: { kind: 'reset' } };
      }
      return { reply: localReply('GW_UPSTREAM_RESET', `reset:${code || err.name}`), outcome: { kind: 'reset' } };
  }
}

/**
 * undici's parser errors carry no code, only llhttp's reason in parentheses ("Response does not match the
 * HTTP/1.1 protocol (Invalid header value char)"): that reason, in snake case, for the log's details.
 */
function parserReason(message: string): string {
  const open = message.lastIndexOf('(');
  if (open < 0 || !message.endsWith(')')) return 'parse_error';
  return (
    message
      .slice(open + 1, -1)
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '_')
      .replace(/^_|_$/g, '') || 'parse_error'
  );
}

/**
 * True when `err` is how a pooled keep-alive connection that the upstream closed at the moment a request went
 * out shows up (RFC 9112 §9.6: either side may close an idle connection at any time): closed or reset before
 * a response head. With undici's socket details at hand, a connection that never read a byte was fresh: its
 * death is the target's failure, not a race.
 */
export function isStaleConnectionError(err: Error & { code?: string; socket?: { bytesRead?: number } }): boolean {
  switch (err.code) {
    case 'UND_ERR_SOCKET':
      if (err.message === 'bad upgrade' || err.message === 'bad response') return false;
      return err.socket?.bytesRead === undefined || err.socket.bytesRead > 0;
    case 'ECONNRESET':
    case 'EPIPE':
      // Portico's HTTP/1.1 client says how much the connection had read; undici (HTTP/2) does not.
      return err.socket?.bytesRead === undefined || err.socket.bytesRead > 0;
    default:
      return false;
  }
}

/**
 * The 503 for a pool with no target to pick, with `Retry-After` (RFC 9110 §10.2.3) in whole seconds, at
 * least 1, when outlier ejection says when a target may be back; without it when nobody knows.
 */
export function unavailableReply(pool: Pool, details: string): LocalReply {
  const ms = pool.retryAfterMs();
  if (ms === undefined) return localReply('GW_UPSTREAM_UNAVAILABLE', details);
  return localReply('GW_UPSTREAM_UNAVAILABLE', details, { 'retry-after': String(Math.max(1, Math.ceil(ms / 1000))) });
}
