/**
 * @module HTTP/2 requests seen through HTTP/1's eyes, so one request path serves both.
 *
 * Node's compat API (Http2ServerRequest/Response) differs from HTTP/1 in ways a proxy trips over: the
 * header object holds pseudo-headers (`:method`, `:path`, `:authority`, `:scheme`) that must never be sent
 * upstream; there is no Host, `:authority` stands for it (RFC 9113 §8.3.1); a body may come without
 * Content-Length or Transfer-Encoding; and `cork()`, `uncork()` and `shouldKeepAlive` do not exist. The
 * classes here are given to `http2.createServer` so the request entry and the forwarder see HTTP/1 shapes.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Http2ServerRequest, Http2ServerResponse } from 'node:http2';

const COLON = 0x3a;

/** True for `:method`, `:path`, ... */
export function isPseudoHeader(name: string): boolean {
  return name.charCodeAt(0) === COLON;
}

/**
 * The request headers an HTTP/1 proxy expects, from an HTTP/2 header block: pseudo-headers dropped,
 * `host` from `:authority` (which wins over a Host field, RFC 9113 §8.3.1), and, for a request whose body
 * length is not announced (no END_STREAM on HEADERS and no Content-Length), `transfer-encoding: chunked`,
 * which marks it as having a body (it is hop-by-hop, so it is never forwarded as such).
 */
export function http1HeadersFromH2(h2: IncomingHttpHeaders, endAfterHeaders: boolean): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const name in h2) {
    if (isPseudoHeader(name)) continue;
    out[name] = h2[name];
  }
  const authority = h2[':authority'];
  if (typeof authority === 'string' && authority !== '') out.host = authority;
  if (!endAfterHeaders && out['content-length'] === undefined) out['transfer-encoding'] = 'chunked';
  return out;
}

/** Turns `[name, value, name, value, ...]` into an object, repeating names as arrays. */
export function flatHeadersToObject(flat: readonly string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!;
    const value = flat[i + 1]!;
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[name] = [prev, value];
  }
  return out;
}

/** Headers HTTP/2 forbids in responses (RFC 9113 §8.2.2); Node throws when they are set. */
export const H2_FORBIDDEN_RESPONSE_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
]);

/** An HTTP/2 request whose `headers` look like HTTP/1's (see {@link http1HeadersFromH2}); `method` and `url` work as before. */
export class H2Request extends Http2ServerRequest {}

const kHttp1Headers = Symbol('portico.http1Headers');
const h2HeadersGetter = Object.getOwnPropertyDescriptor(Http2ServerRequest.prototype, 'headers')!.get!;
// Node declares `headers` as an accessor reading the stream's header block; this one converts it once.
Object.defineProperty(H2Request.prototype, 'headers', {
  configurable: true,
  enumerable: true,
  get(this: H2Request & { [kHttp1Headers]?: IncomingHttpHeaders }): IncomingHttpHeaders {
    let h = this[kHttp1Headers];
    if (h === undefined) {
      h = http1HeadersFromH2(h2HeadersGetter.call(this) as IncomingHttpHeaders, this.stream.endAfterHeaders);
      this[kHttp1Headers] = h;
    }
    return h;
  },
});

/** An HTTP/2 response that accepts the HTTP/1-only calls the forwarder makes. */
export class H2Response extends Http2ServerResponse {
  /** HTTP/2 has no per-request keep-alive; draining sends GOAWAY instead. Accepted and ignored. */
  shouldKeepAlive = true;

  /** HTTP/2 frames are written by the session; nothing to cork. */
  override cork(): void {}

  override uncork(): void {}
}

/**
 * The connection socket of a request, HTTP/1 or HTTP/2. For HTTP/2, `req.socket` is a proxy object on which
 * native TLS methods (getPeerX509Certificate) fail; the session's socket is the real one.
 */
export function connectionSocketOf(req: { readonly socket: unknown; readonly stream?: unknown }): unknown {
  const stream = req.stream as { session?: { socket?: unknown } } | undefined;
  return stream?.session?.socket ?? req.socket;
}
