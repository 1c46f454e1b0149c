/**
 * @module Responses made from stored entries (RFC 9111 §4): headers copied with `Age` and the cache status
 * header, the body (none for HEAD), or a 304 when the client's own validators match. Also the filter that
 * turns upstream response headers into headers worth storing.
 */
import { HOP_BY_HOP_HEADERS } from '../../lib/hop-by-hop.ts';
import { isNotModified, NOT_MODIFIED_HEADERS, preconditionFails } from './conditional.ts';
import { formatHttpDate, type HeaderValue, joinHeader, parseHttpDate } from './directives.ts';
import type { CacheEntry } from './types.ts';

/** Cache outcome as shown in the status header. */
export type CacheStatus = 'HIT' | 'MISS' | 'STALE' | 'BYPASS' | 'REVALIDATED';

/** A complete response to send as is (compression, if any, still applies after it). */
export interface ServedResponse {
  readonly status: number;
  /** A fresh object per response: the caller may add or remove fields. */
  readonly headers: Record<string, string | string[]>;
  /** Empty for HEAD and 304; `content-length` always tells the length of what a GET would get. */
  readonly body: Buffer;
}

const EMPTY = Buffer.alloc(0);

export interface ServeRequest {
  readonly method: string;
  readonly headers: Readonly<Record<string, HeaderValue>>;
}

/**
 * Builds the response for `req` from `entry`, whose current age is `ageMs`: a 412 when the client's
 * If-Match / If-Unmodified-Since fails, a 304 when its own validators match (RFC 9111 §4.3.2, evaluated as
 * RFC 9110 §13.2.2 orders it), a 206 for a single byte range of a stored 200 (RFC 9110 §14), else the
 * stored response (no body for HEAD).
 */
export function respondFromEntry(
  entry: CacheEntry,
  ageMs: number,
  req: ServeRequest,
  status: CacheStatus,
  statusHeader: string,
): ServedResponse {
  const age = String(Math.floor(ageMs / 1000));
  // RFC 9110 §13.2.1: preconditions apply only to what would otherwise be a 2xx.
  const success = entry.status >= 200 && entry.status < 300;
  if (success && preconditionFails(req.headers, entry)) {
    return { status: 412, headers: { 'content-length': '0', [statusHeader]: status }, body: EMPTY };
  }
  if (success && isNotModified(req.headers, entry)) {
    // RFC 9110 §15.4.5: the fields a 200 would carry that describe the representation's cache state.
    const headers: Record<string, string | string[]> = {};
    for (let i = 0; i < NOT_MODIFIED_HEADERS.length; i++) {
      const name = NOT_MODIFIED_HEADERS[i]!;
      const value = entry.headers[name];
      if (value !== undefined) headers[name] = value as string | string[];
    }
    // Last-Modified only helps a client that has no ETag to go by (§15.4.5: no other metadata).
    if (headers.etag !== undefined) delete headers['last-modified'];
    headers.age = age;
    headers[statusHeader] = status;
    return { status: 304, headers, body: EMPTY };
  }
  const headers: Record<string, string | string[]> = {};
  for (const name in entry.headers) headers[name] = entry.headers[name] as string | string[];
  headers.age = age;
  headers[statusHeader] = status;
  // RFC 9110 §8.6: never a Content-Length in a 204 (the stored length of its empty body is not one).
  if (entry.status === 204) delete headers['content-length'];
  if (req.method === 'HEAD') return { status: entry.status, headers, body: EMPTY };
  if (entry.status === 200 && req.headers.range !== undefined) {
    const ranged = byteRange(entry, req.headers, headers);
    if (ranged !== undefined) return ranged;
  }
  return { status: entry.status, headers, body: entry.body };
}

/**
 * A single `bytes` range of a stored 200 (RFC 9110 §14.1.2, §14.2): 206 with Content-Range, or 416 when it
 * lies past the end. Several ranges, another unit, bad syntax or a failed If-Range: undefined (the whole
 * representation is sent, as §14.2 allows).
 */
function byteRange(
  entry: CacheEntry,
  reqHeaders: Readonly<Record<string, HeaderValue>>,
  headers: Record<string, string | string[]>,
): ServedResponse | undefined {
  const range = joinHeader(reqHeaders.range)!.trim();
  if (!range.toLowerCase().startsWith('bytes=') || range.includes(',')) return undefined;
  if (reqHeaders['if-range'] !== undefined && !ifRangeHolds(joinHeader(reqHeaders['if-range'])!, entry)) {
    return undefined;
  }
  const spec = range.slice(6).trim();
  const dash = spec.indexOf('-');
  if (dash === -1) return undefined;
  const firstText = spec.slice(0, dash).trim();
  const lastText = spec.slice(dash + 1).trim();
  if (!isDigits(firstText) && !(firstText === '' && isDigits(lastText))) return undefined;
  if (lastText !== '' && !isDigits(lastText)) return undefined;
  const length = entry.body.length;
  let first: number;
  let last: number;
  if (firstText === '') {
    // Suffix range: the last N bytes.
    const n = Number(lastText);
    if (n === 0) return unsatisfiable(headers, length);
    first = Math.max(0, length - n);
    last = length - 1;
  } else {
    first = Number(firstText);
    last = lastText === '' ? length - 1 : Math.min(Number(lastText), length - 1);
    if (lastText !== '' && Number(lastText) < first) return undefined;
  }
  if (first >= length) return unsatisfiable(headers, length);
  headers['content-range'] = `bytes ${first}-${last}/${length}`;
  headers['content-length'] = String(last - first + 1);
  return { status: 206, headers, body: entry.body.subarray(first, last + 1) };
}

function unsatisfiable(headers: Record<string, string | string[]>, length: number): ServedResponse {
  delete headers['content-type'];
  headers['content-range'] = `bytes */${length}`;
  headers['content-length'] = '0';
  return { status: 416, headers, body: EMPTY };
}

/** If-Range (RFC 9110 §13.1.5): a strong entity-tag equal to the stored one, or its Last-Modified if strong. */
function ifRangeHolds(value: string, entry: CacheEntry): boolean {
  const v = value.trim();
  if (v.startsWith('"') || v.startsWith('W/')) {
    return !v.startsWith('W/') && entry.etag !== undefined && !entry.etag.startsWith('W/') && entry.etag === v;
  }
  const since = parseHttpDate(v);
  const modified = parseHttpDate(entry.lastModified);
  if (since === undefined || modified === undefined || since !== modified) return false;
  // A Last-Modified is strong only when it lies at least a second before the response's Date (§8.8.2.2).
  const date = parseHttpDate(entry.headers.date);
  return date !== undefined && date - modified >= 1000;
}

function isDigits(text: string): boolean {
  if (text.length === 0 || text.length > 15) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/**
 * Fields never stored (RFC 9111 §3.1): those for one connection (hop-by-hop) or one proxy
 * (Proxy-Authenticate, Proxy-Authentication-Info, Proxy-Authorization), the upstream's `Age` (folded into the
 * entry's age) and the cache status header.
 */
function isUnstorable(name: string, statusHeader: string): boolean {
  return (
    HOP_BY_HOP_HEADERS.has(name) || name === 'proxy-authentication-info' || name === 'age' || name === statusHeader
  );
}

/**
 * Upstream headers as stored: the fields of §3.1 and `excluded` (qualified private / no-cache) dropped,
 * `content-length` set from the captured body, and a `Date` added when the upstream sent none or an invalid
 * one (RFC 9110 §6.6.1: the time it was received).
 */
export function headersToStore(
  headers: Readonly<Record<string, HeaderValue>>,
  statusHeader: string,
  bodyLength: number | undefined,
  receivedAt: number,
  excluded: readonly string[],
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || isUnstorable(name, statusHeader)) continue;
    if (excluded.length > 0 && excluded.includes(name)) continue;
    out[name] = typeof value === 'number' ? String(value) : (value as string | string[]);
  }
  if (bodyLength !== undefined) out['content-length'] = String(bodyLength);
  // An invalid Date is no Date (its age is not counted from it either): the time of receipt stands in.
  if (parseHttpDate(out.date) === undefined) out.date = formatHttpDate(receivedAt);
  return out;
}

/**
 * Fields a 304 does not overwrite in a stored response (RFC 9111 §3.2): Content-Length (a MUST), and those
 * that describe the stored bytes themselves, which a 304 cannot change.
 */
const NOT_UPDATED: ReadonlySet<string> = new Set(['content-length', 'content-encoding', 'content-range']);

/**
 * Stored headers updated with those of a 304 (RFC 9111 §3.2, §4.3.4). A 304 without a valid `Date` dates
 * the refreshed response at its receipt (RFC 9110 §6.6.1), so its age restarts from there.
 */
export function mergeNotModified(
  stored: CacheEntry['headers'],
  fresh: Readonly<Record<string, HeaderValue>>,
  statusHeader: string,
  receivedAt: number,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in stored) out[name] = stored[name] as string | string[];
  for (const name in fresh) {
    const value = fresh[name];
    if (value === undefined || NOT_UPDATED.has(name) || isUnstorable(name, statusHeader)) continue;
    out[name] = typeof value === 'number' ? String(value) : (value as string | string[]);
  }
  if (parseHttpDate(fresh.date) === undefined) out.date = formatHttpDate(receivedAt);
  return out;
}
