/**
 * @module What an HTTP/2 request head must pass before it enters the request path (beyond what nghttp2
 * enforces), and the pseudo-header test the HTTP/2 exchange (h2-exchange.ts) shares.
 */
import { type IncomingHttpHeaders, METHODS } from 'node:http';
import { type LocalReply, localReply } from '../errors.ts';
import { isValidHost } from './normalize-path.ts';

const COLON = 0x3a;

/** True for `:method`, `:path`, ... */
export function isPseudoHeader(name: string): boolean {
  return name.charCodeAt(0) === COLON;
}

/** The methods an HTTP/1 request may carry (llhttp's list; the HTTP/1 listener answers 501 to other tokens). */
const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS);

const HOST_LIST = localReply('GW_BAD_REQUEST', 'host_list');

/**
 * What an HTTP/2 request head must pass before it enters the request path, beyond what nghttp2 (under
 * node:http2) enforces itself. nghttp2 resets as malformed (RFC 9113 §8.1.1: stream error PROTOCOL_ERROR) a
 * request with an uppercase field name, a connection-specific field or TE other than `trailers` (§8.2.2), a
 * missing, repeated, unknown or misplaced pseudo-header, an `http`/`https` `:path` that is empty or does not
 * start with `/` (`OPTIONS *` apart), `:authority` with userinfo, two Host fields or neither `:authority` nor
 * Host (§8.3.1), `:protocol` (extended CONNECT is not offered, RFC 8441 §3), and a body whose DATA length
 * differs from Content-Length (§8.1.1). It drops, without refusing the request, a field whose name or value
 * holds characters §8.2.1 forbids (CR, LF, NUL, surrounding whitespace), so such a field is never forwarded.
 *
 * Checked here, with the answers an HTTP/1 client gets for the same request (http1-checks.ts):
 * - a method outside HTTP/1's list: 501, so a backend never sees a method no HTTP/1 client could send;
 * - `:scheme` other than `http` / `https` (§8.3.1; nghttp2 checks `:path` only for those two): 400;
 * - `:authority` (or Host, without it) that is not a valid host[:port] (RFC 9110 §4.2.1, the HTTP/1 rule): 400;
 * - Host beside `:authority` naming another authority (§8.3.1 "SHOULD treat as malformed"): 400;
 * - an authority with a comma (`a,b`, what two joined Host lines look like): 400, as over HTTP/1.
 * CONNECT is refused before this (405), as over HTTP/1.
 */
export function checkH2Request(h2: IncomingHttpHeaders): LocalReply | undefined {
  // Pseudo-headers and Host are single strings: nghttp2 refuses them repeated.
  const h = h2 as Readonly<Record<string, string | undefined>>;
  if (!KNOWN_METHODS.has(h[':method']!)) return localReply('GW_NOT_IMPLEMENTED', 'method_not_implemented');
  const scheme = h[':scheme'];
  if (scheme !== 'http' && scheme !== 'https') return localReply('GW_BAD_REQUEST', 'unsupported_scheme');
  const authority = h[':authority'];
  const host = h.host;
  if (authority === undefined) {
    if (host === undefined || !isValidHost(host)) return localReply('GW_BAD_REQUEST', 'invalid_host');
    return host.includes(',') ? HOST_LIST : undefined;
  }
  if (!isValidHost(authority)) return localReply('GW_BAD_REQUEST', 'invalid_host');
  if (authority.includes(',')) return HOST_LIST;
  if (host !== undefined && host !== authority && !sameAuthority(authority, host, scheme)) {
    return localReply('GW_BAD_REQUEST', 'authority_host_mismatch');
  }
  return undefined;
}

/**
 * Whether two authorities name the same origin after scheme-based normalisation (RFC 3986 §6.2.3, which
 * RFC 9113 §8.3.1 asks intermediaries to apply): the host case-insensitively, the scheme's default port or an
 * empty port the same as none.
 */
export function sameAuthority(a: string, b: string, scheme: 'http' | 'https'): boolean {
  const defaultPort = scheme === 'https' ? '443' : '80';
  return withoutDefaultPort(a.toLowerCase(), defaultPort) === withoutDefaultPort(b.toLowerCase(), defaultPort);
}

function withoutDefaultPort(authority: string, defaultPort: string): string {
  const colon = authority.lastIndexOf(':');
  if (colon === -1 || colon < authority.lastIndexOf(']')) return authority;
  const port = authority.slice(colon + 1);
  return port === '' || port === defaultPort ? authority.slice(0, colon) : authority;
}
