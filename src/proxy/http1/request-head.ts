/**
 * @module The request line and header block sent upstream, with the body's framing (RFC 9112 §3, §6).
 *
 * Values are checked before they go out: a header value with a line break (a policy copying a token claim, say)
 * would split the message (RFC 9110 §5.5), so it fails the request instead, as undici and Node's client do.
 */

export type HeaderValue = string | string[] | number | undefined;

/** How the request's body is framed on the wire. */
export type Framing =
  /** No body (Content-Length: 0 where the method expects content). */
  | { readonly kind: 'none' }
  /** A body of known length (a buffer, or a stream with the client's Content-Length). */
  | { readonly kind: 'length'; readonly length: number }
  /** A stream of unknown length, sent chunked. */
  | { readonly kind: 'chunked' };

export class InvalidRequestError extends Error {
  readonly code = 'UND_ERR_INVALID_ARG';
}

/** Field values: HTAB, SP, VCHAR and obs-text; anything else (CR, LF, NUL, other controls) is refused. */
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
/** Field names are tokens (RFC 9110 §5.1). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A request target: visible ASCII, no spaces (RFC 9112 §3.2). */
const TARGET = /^[\x21-\x7e]+$/;

/** Methods whose request, without a body, still says Content-Length: 0 (RFC 9110 §8.6). */
const EXPECTS_CONTENT = new Set(['POST', 'PUT', 'PATCH']);

/**
 * The head for `method path` with `headers`, framed by `framing`; `upgrade` adds `Connection: upgrade` and
 * `Upgrade`. Framing headers in `headers` are ignored: the framing argument decides them. `host` is added
 * when missing.
 */
export function requestHead(
  method: string,
  path: string,
  headers: Readonly<Record<string, HeaderValue>> | null | undefined,
  framing: Framing,
  host: string,
  upgrade: string | undefined,
): string {
  if (!TARGET.test(path)) throw new InvalidRequestError('invalid request path');
  if (!TOKEN.test(method)) throw new InvalidRequestError('invalid method');
  let head = `${method} ${path} HTTP/1.1\r\n`;
  let sawHost = false;
  if (headers != null) {
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      const lower =
        name.length === 4 || name.length === 10 || name.length === 14 || name.length === 17 ? name.toLowerCase() : '';
      if (lower === 'content-length' || lower === 'transfer-encoding') continue;
      if (lower === 'connection' && upgrade !== undefined) continue;
      if (lower === 'host') sawHost = true;
      if (!TOKEN.test(name)) throw new InvalidRequestError(`invalid header name`);
      if (typeof value === 'string') {
        if (INVALID_VALUE.test(value)) throw new InvalidRequestError(`invalid ${name} header`);
        head += `${name}: ${value}\r\n`;
      } else if (typeof value === 'number') {
        head += `${name}: ${value}\r\n`;
      } else {
        for (const v of value) {
          if (INVALID_VALUE.test(v)) throw new InvalidRequestError(`invalid ${name} header`);
          head += `${name}: ${v}\r\n`;
        }
      }
    }
  }
  if (!sawHost) head += `host: ${host}\r\n`;
  if (upgrade !== undefined) head += `connection: upgrade\r\nupgrade: ${upgrade}\r\n`;
  switch (framing.kind) {
    case 'length':
      head += `content-length: ${framing.length}\r\n`;
      break;
    case 'chunked':
      head += 'transfer-encoding: chunked\r\n';
      break;
    default:
      if (EXPECTS_CONTENT.has(method)) head += 'content-length: 0\r\n';
  }
  return `${head}\r\n`;
}
