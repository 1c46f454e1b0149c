/**
 * @module Hop-by-hop headers (RFC 9110 §7.6.1): fields that describe one connection and must not be forwarded
 * by a proxy, plus every field that the `Connection` header nominates.
 *
 * The list is the union of RFC 9110 §7.6.1's examples, RFC 9112 (Transfer-Encoding, TE, Trailer, Upgrade),
 * the obsolete `Keep-Alive` and `Proxy-Connection` that clients still send, `HTTP2-Settings` (RFC 7540 §3.2.1,
 * only meaningful on the hop that upgrades), and `Proxy-Authenticate` / `Proxy-Authorization`, which RFC 9110
 * §11.7 addresses to the next proxy only (Go's ReverseProxy strips them too; they are credentials a backend
 * should never see). Envoy and nginx also drop the first seven.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/** Lower-case names of the headers that never cross a proxy. */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'proxy-authenticate',
  'proxy-authorization',
]);

const STATIC = [...HOP_BY_HOP_HEADERS];

/** Headers a client may not remove by nominating them in `Connection`: the proxy needs them itself. */
const PROTECTED = new Set(['host']);

type Headers = IncomingHttpHeaders | OutgoingHttpHeaders | Record<string, unknown>;

/** Whether a TE value lists the `trailers` token (`TE: trailers, deflate;q=0.5`, RFC 9110 §10.1.4). */
function hasTrailersToken(value: unknown): boolean {
  if (typeof value === 'string') {
    for (const member of value.split(',')) {
      const semi = member.indexOf(';');
      if ((semi === -1 ? member : member.slice(0, semi)).trim().toLowerCase() === 'trailers') return true;
    }
    return false;
  }
  if (Array.isArray(value)) return value.some(hasTrailersToken);
  return false;
}

/**
 * Removes hop-by-hop headers in place: the fixed list and every header named in `Connection`
 * (comma-separated, case-insensitive, trimmed). Call it before the proxy adds headers of its own, so a client
 * cannot strip them by nominating them.
 *
 * @param keepTeTrailers keep `te: trailers` (and only that) when the client sent it: gRPC and HTTP/2 upstreams
 *   need it (RFC 9113 §8.2.2 allows exactly that value).
 */
export function stripHopByHop(headers: Headers, keepTeTrailers = false): void {
  const h = headers as Record<string, unknown>;
  // Read TE first: a client that sends TE must also nominate it in Connection (RFC 9110 §10.1.4).
  const teTrailers = keepTeTrailers && h.te !== undefined && hasTrailersToken(h.te);
  const connection = h.connection;
  if (connection !== undefined) removeNominated(h, connection);
  for (let i = 0; i < STATIC.length; i++) {
    const name = STATIC[i]!;
    if (h[name] !== undefined) delete h[name];
  }
  if (teTrailers) h.te = 'trailers';
}

function removeNominated(h: Record<string, unknown>, value: unknown): void {
  if (Array.isArray(value)) {
    for (const item of value) removeNominated(h, item);
    return;
  }
  if (typeof value !== 'string') return;
  // The common values name no other header.
  if (value.length <= 10) {
    const lower = value.toLowerCase();
    if (lower === 'keep-alive' || lower === 'close' || lower === 'upgrade') return;
  }
  let start = 0;
  const length = value.length;
  while (start <= length) {
    let end = value.indexOf(',', start);
    if (end === -1) end = length;
    let a = start;
    let b = end;
    while (a < b && isWhitespace(value.charCodeAt(a))) a++;
    while (b > a && isWhitespace(value.charCodeAt(b - 1))) b--;
    if (b > a) {
      const token = value.slice(a, b).toLowerCase();
      if (!PROTECTED.has(token) && token.charCodeAt(0) !== 0x3a) delete h[token];
    }
    start = end + 1;
  }
}

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09;
}
