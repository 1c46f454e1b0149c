/**
 * @module How an upstream failure before the response head becomes a local reply, and what the balancer is told.
 */
import { type LocalReply, localReply } from '../errors.ts';
import type { AttemptOutcome } from '../upstream/types.ts';

/** Thrown into the request body stream when a chunked upload outgrows the route's limit. */
export class BodyTooLargeError extends Error {
  readonly code = 'PORTICO_BODY_TOO_LARGE';
}

/** Maps an undici / socket error to the local reply a client gets before any response byte was sent. */
export function replyForUpstreamError(err: Error & { code?: string }): { reply: LocalReply; outcome: AttemptOutcome } {
  const code = err.code ?? '';
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { reply: localReply('GW_UPSTREAM_CONNECT_TIMEOUT', 'connect_timeout'), outcome: { kind: 'timeout' } };
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
    case 'ERR_INVALID_CHAR':
    case 'ERR_HTTP_INVALID_HEADER_VALUE':
      return { reply: localReply('GW_UPSTREAM_BAD_RESPONSE', `bad_response:${code}`), outcome: { kind: 'reset' } };
    default:
      if (code.startsWith('HPE_') || err.name === 'HTTPParserError') {
        return { reply: localReply('GW_UPSTREAM_BAD_RESPONSE', `bad_response:${code}`), outcome: { kind: 'reset' } };
      }
      return { reply: localReply('GW_UPSTREAM_RESET', `reset:${code || err.name}`), outcome: { kind: 'reset' } };
  }
}
