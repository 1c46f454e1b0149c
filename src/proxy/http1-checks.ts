/**
 * @module Checks on an HTTP/1 request head that Node's parser (llhttp, strict mode) lets through but RFC 9112
 * says a server must refuse, or that would reach a backend ambiguously. Run by the HTTP/1 listener before
 * anything else looks at the request (redirects included); HTTP/2 has its own framing and never comes here.
 *
 * What llhttp refuses itself (both Content-Length and Transfer-Encoding, a Transfer-Encoding whose last coding
 * is not `chunked`, a bad or repeated Content-Length, obs-fold, space before a colon, control characters, bare
 * CR or LF, invalid tokens, a bad chunk size) reaches the listener as a parse error; {@link clientErrorCode}
 * turns it into the status the RFCs ask for (400, 414, 431, 501, 505, 408).
 */
import type { IncomingMessage } from 'node:http';
import { type ErrorCode, type LocalReply, localReply } from '../errors.ts';
import { isValidHost } from './normalize-path.ts';

/**
 * The most header field lines a request may carry; more → 431. Node would silently drop the fields past its
 * own count limit (and a backend would then see a different request than Portico routed), so the parser is
 * told to keep one more than this and the request is refused instead. HAProxy refuses past 101, Envoy past 100;
 * this is looser, the head's size (`limits.maxHeaderSize`) stays the real bound.
 */
export const MAX_HEADER_FIELDS = 1000;

/** The refusal for an HTTP/1 request head, or undefined when it may proceed. */
export function checkHttp1Request(req: IncomingMessage): LocalReply | undefined {
  // RFC 9112 §2.3 / RFC 9110 §15.6.6: llhttp accepts HTTP/0.9 (also a request line without a version) and
  // HTTP/2.0 in a text request line; neither is HTTP/1.
  if (req.httpVersionMajor !== 1) return localReply('GW_VERSION_NOT_SUPPORTED', `http_version:${req.httpVersion}`);
  const raw = req.rawHeaders;
  if (raw.length > MAX_HEADER_FIELDS * 2) return localReply('GW_HEADERS_TOO_LARGE', 'too_many_header_fields');

  let hosts = 0;
  let authorizations = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
    else if (name.length === 13 && name.toLowerCase() === 'authorization') authorizations++;
  }
  // RFC 9112 §3.2: 400 for an HTTP/1.1 request without Host, with two, or with an invalid value.
  if (hosts > 1) return localReply('GW_BAD_REQUEST', 'duplicate_host');
  // Authorization is a singleton field (RFC 9110 §11.6.2) and Node silently keeps only the first line, so
  // authentication would check credentials the client did not mean alone. nginx answers 400 too.
  if (authorizations > 1) return localReply('GW_BAD_REQUEST', 'duplicate_authorization');
  const host = req.headers.host;
  if (host === undefined) {
    if (req.httpVersionMinor !== 0) return localReply('GW_BAD_REQUEST', 'missing_host');
  } else if (host === '') {
    // Absolute-form carries the authority itself and Host is ignored (RFC 9112 §3.2.2); otherwise an empty
    // Host names no server at all.
    if (req.url!.charCodeAt(0) === 0x2f || req.url === '*') return localReply('GW_BAD_REQUEST', 'empty_host');
  } else if (!isValidHost(host)) {
    return localReply('GW_BAD_REQUEST', 'invalid_host');
  } else if (host.includes(',')) {
    return localReply('GW_BAD_REQUEST', 'host_list');
  }
  if (absoluteAuthority(req.url!).includes(',')) return localReply('GW_BAD_REQUEST', 'host_list');

  const te = req.headers['transfer-encoding'];
  return te === undefined ? undefined : checkTransferEncoding(te, req.httpVersionMinor);
}

/**
 * The authority of an absolute-form target (`http://a.example:81/x` → `a.example:81`), or '' for other forms.
 *
 * A comma is a legal reg-name character (RFC 3986 sub-delims) but names no real host, and `a,b` is exactly
 * what two Host lines look like once something joined them (RFC 9110 §5.3). Passed on, it would reach the
 * backend as `X-Forwarded-Host: a,b`, a list from which frameworks take one member as the host, while
 * Portico routed on the whole value: a route bound to host `a` (and its policies) would be skipped for a
 * backend that then believes it serves `a`. Such a Host is refused like two Host lines (400).
 */
function absoluteAuthority(target: string): string {
  if (target.charCodeAt(0) === 0x2f) return '';
  const start = target.indexOf('://');
  if (start < 0) return '';
  let end = start + 3;
  while (end < target.length && !'/?#'.includes(target[end]!)) end++;
  return target.slice(start + 3, end);
}

/**
 * RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing (400). §6.3: when `chunked`
 * is not the final coding the body length is unknown (400, llhttp already refuses most of these). Any other
 * coding before `chunked` is one Portico cannot decode: 501 (§6.1 SHOULD; nginx answers the same).
 */
function checkTransferEncoding(value: string, minor: number): LocalReply | undefined {
  if (minor === 0) return localReply('GW_BAD_REQUEST', 'transfer_encoding_in_http10');
  if (value === 'chunked') return undefined;
  const codings = value
    .toLowerCase()
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c !== '');
  if (codings[codings.length - 1] !== 'chunked') return localReply('GW_BAD_REQUEST', 'chunked_not_final');
  if (codings.length > 1) return localReply('GW_NOT_IMPLEMENTED', 'transfer_coding_unsupported');
  return undefined;
}

/** The error code for a parse error (or a slow client) reported by Node's HTTP server. */
export function clientErrorCode(
  err: Error & { code?: string; reason?: string; rawPacket?: Buffer; bytesParsed?: number },
): ErrorCode {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return requestLineTooLong(err) ? 'GW_URI_TOO_LONG' : 'GW_HEADERS_TOO_LARGE';
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return 'GW_REQUEST_TIMEOUT';
    // `HTTP/3.0`, `HTTP/1.2` (well-formed, not a version llhttp speaks) and the HTTP/2 preface on a listener
    // without h2c: RFC 9110 §15.6.6. A malformed version (`http/1.1`, `HTTP/1.10`) is a bad request line.
    case 'HPE_INVALID_VERSION':
      return err.reason === 'Invalid HTTP version' ? 'GW_VERSION_NOT_SUPPORTED' : 'GW_BAD_REQUEST';
    case 'HPE_PAUSED_H2_UPGRADE':
      return 'GW_VERSION_NOT_SUPPORTED';
    // llhttp knows a fixed list of methods; another well-formed token (`PURGEALL`, lowercase `get`) is a
    // method this server does not implement (RFC 9110 §9.1, §15.6.2), anything else a bad request line.
    case 'HPE_INVALID_METHOD':
      return isTokenMethod(err.rawPacket, err.bytesParsed) ? 'GW_NOT_IMPLEMENTED' : 'GW_BAD_REQUEST';
    default:
      return 'GW_BAD_REQUEST';
  }
}

/**
 * Whether the request line the parser failed on starts with a well-formed method token (RFC 9110 §5.6.2)
 * followed by a space. `at` is where the parser stopped inside `raw`; the line starts after the last LF.
 */
function isTokenMethod(raw: Buffer | undefined, at: number | undefined): boolean {
  if (raw === undefined || at === undefined) return false;
  let start = Math.min(at, raw.length);
  while (start > 0 && isTchar(raw[start - 1]!)) start--;
  if (start > 0 && raw[start - 1] !== 0x0a) return false;
  let end = start;
  while (end < raw.length && isTchar(raw[end]!)) end++;
  return end > start && end - start <= 32 && raw[end] === 0x20;
}

/** RFC 9110 §5.6.2 tchar. */
function isTchar(c: number): boolean {
  if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)) return true;
  return (
    c === 0x21 ||
    (c >= 0x23 && c <= 0x27) ||
    c === 0x2a ||
    c === 0x2b ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5e ||
    c === 0x5f ||
    c === 0x60 ||
    c === 0x7c ||
    c === 0x7e
  );
}

/**
 * Whether the head overflowed in its request line: then the target is what is too long (414, RFC 9110
 * §15.5.15), not the header fields (431). The parser hands over the bytes it had seen.
 */
function requestLineTooLong(err: Error & { rawPacket?: Buffer }): boolean {
  const raw = err.rawPacket;
  if (raw === undefined) return false;
  const eol = raw.indexOf('\r\n');
  return eol === -1 || eol > 4096;
}
