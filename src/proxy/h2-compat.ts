/**
 * @module HTTP/2 requests seen through HTTP/1's eyes, so one request path serves both.
 *
 * Node's compat API (Http2ServerRequest/Response) differs from HTTP/1 in ways a proxy trips over: the
 * header object holds pseudo-headers (`:method`, `:path`, `:authority`, `:scheme`) that must never be sent
 * upstream; there is no Host, `:authority` stands for it (RFC 9113 §8.3.1); a body may come without
 * Content-Length or Transfer-Encoding; and `cork()`, `uncork()` and `shouldKeepAlive` do not exist. The
 * classes here are given to `http2.createServer` so the request entry and the forwarder see HTTP/1 shapes.
 */
import { type IncomingHttpHeaders, METHODS } from 'node:http';
import { constants, Http2ServerRequest, Http2ServerResponse, type ServerHttp2Stream } from 'node:http2';
import { type LocalReply, localReply } from '../errors.ts';
import { HOP_BY_HOP_HEADERS } from '../lib/hop-by-hop.ts';
import { isValidHost } from './normalize-path.ts';

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

  constructor(stream: ServerHttp2Stream) {
    super(stream);
    stream.once('finish', resetUnfinishedRequest);
  }

  /** HTTP/2 frames are written by the session; nothing to cork. */
  override cork(): void {}

  override uncork(): void {}
}

/**
 * The response is all sent while the client is still sending its request (a refusal, a timeout, an early
 * answer): RFC 9113 §8.1 lets the server ask it to stop with RST_STREAM NO_ERROR. Without it the client's
 * upload, held by flow control, keeps the stream open for good, and the exchange never ends.
 */
function resetUnfinishedRequest(this: ServerHttp2Stream): void {
  if (this.closed || this.destroyed) return;
  const requestEnded = (this as unknown as { _readableState?: { ended?: boolean } })._readableState?.ended;
  if (requestEnded === false) this.close(constants.NGHTTP2_NO_ERROR);
}

// Node's compat response reports the stream's `writableFinished`, which a RST_STREAM from the client makes
// true (Node ends the writable side of a reset stream): the forwarder would take a cancelled exchange for a
// finished one and leave the upstream request running. Finished means: ended by us, flushed, and the stream
// closed without an error code (RFC 9113 §8.1: RST_STREAM cancels the exchange).
Object.defineProperty(H2Response.prototype, 'writableFinished', {
  configurable: true,
  enumerable: true,
  get(this: H2Response): boolean {
    const stream = this.stream;
    return this.writableEnded && stream.writableFinished && !stream.aborted && !(stream.rstCode > 0);
  },
});

/** The methods an HTTP/1 request may carry (llhttp's list; the HTTP/1 listener answers 501 to other tokens). */
const KNOWN_METHODS: ReadonlySet<string> = new Set(METHODS);

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
 * - Host beside `:authority` naming another authority (§8.3.1 "SHOULD treat as malformed"): 400.
 * CONNECT is refused before this (405), as over HTTP/1.
 */
export function checkH2Request(req: H2Request): LocalReply | undefined {
  // Pseudo-headers and Host are single strings: nghttp2 refuses them repeated.
  const h = h2HeadersGetter.call(req) as Readonly<Record<string, string | undefined>>;
  if (!KNOWN_METHODS.has(h[':method']!)) return localReply('GW_NOT_IMPLEMENTED', 'method_not_implemented');
  const scheme = h[':scheme'];
  if (scheme !== 'http' && scheme !== 'https') return localReply('GW_BAD_REQUEST', 'unsupported_scheme');
  const authority = h[':authority'];
  const host = h.host;
  if (authority === undefined) {
    return host !== undefined && isValidHost(host) ? undefined : localReply('GW_BAD_REQUEST', 'invalid_host');
  }
  if (!isValidHost(authority)) return localReply('GW_BAD_REQUEST', 'invalid_host');
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

/**
 * Trailer fields never passed on: the hop-by-hop ones plus framing and routing fields (RFC 9110 §6.5.1,
 * RFC 9113 §8.2.2).
 */
const DROPPED_TRAILERS: ReadonlySet<string> = new Set([...HOP_BY_HOP_HEADERS, 'content-length', 'host']);

/**
 * Passes an upstream's trailer section on to an HTTP/2 client, as the trailing HEADERS frame Node sends when
 * the response ends (RFC 9113 §8.1; gRPC's status travels there). undici reports trailers as a flat list of
 * Buffers (HTTP/1.1 upstreams) or as an object (HTTP/2 upstreams). A field that cannot be sent is dropped:
 * a recipient may discard trailers (RFC 9110 §6.5.1).
 */
export function forwardTrailers(res: Http2ServerResponse, trailers: unknown): void {
  if (Array.isArray(trailers)) {
    for (let i = 0; i + 1 < trailers.length; i += 2) addTrailer(res, String(trailers[i]), String(trailers[i + 1]));
    return;
  }
  const fields = trailers as Record<string, string | string[] | undefined>;
  for (const name in fields) {
    const value = fields[name];
    if (value !== undefined) addTrailer(res, name, value);
  }
}

function addTrailer(res: Http2ServerResponse, name: string, value: string | string[]): void {
  const lower = name.toLowerCase();
  if (DROPPED_TRAILERS.has(lower) || isPseudoHeader(lower)) return;
  try {
    res.addTrailers({ [lower]: value });
  } catch {
    // Invalid in a field (Node checks names and values): not forwarded.
  }
}

/**
 * The connection socket of a request, HTTP/1 or HTTP/2. For HTTP/2, `req.socket` is a proxy object on which
 * native TLS methods (getPeerX509Certificate) fail; the session's socket is the real one.
 */
export function connectionSocketOf(req: { readonly socket: unknown; readonly stream?: unknown }): unknown {
  const stream = req.stream as { session?: { socket?: unknown } } | undefined;
  return stream?.session?.socket ?? req.socket;
}
