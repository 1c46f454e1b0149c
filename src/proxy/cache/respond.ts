/**
 * @module Responses made from stored entries (RFC 9111 §4): headers copied with `Age` and the cache status
 * header, the body (none for HEAD), or a 304 when the client's own validators match. Also the filter that
 * turns upstream response headers into headers worth storing.
 */
import { HOP_BY_HOP_HEADERS } from '../../lib/hop-by-hop.ts';
import { isNotModified, NOT_MODIFIED_HEADERS } from './conditional.ts';
import type { HeaderValue } from './directives.ts';
import type { CacheEntry } from './types.ts';

/** Cache outcome as shown in the status header. */
export type CacheStatus = 'HIT' | 'MISS' | 'STALE' | 'BYPASS' | 'REVALIDATED';

/** A complete response to send as is (compression, if any, still applies after it). */
export interface ServedResponse {
  readonly status: number;
  /** A fresh object per response: the caller may add or remove fields. */
  readonly headers: Record<string, string | string[]>;
  /** Empty for HEAD and 304; `content-length` always tells the representation's length. */
  readonly body: Buffer;
}

const EMPTY = Buffer.alloc(0);

export interface ServeRequest {
  readonly method: string;
  readonly headers: Readonly<Record<string, HeaderValue>>;
}

/** Builds the response for `req` from `entry`, whose current age is `ageMs`. */
export function respondFromEntry(
  entry: CacheEntry,
  ageMs: number,
  req: ServeRequest,
  status: CacheStatus,
  statusHeader: string,
): ServedResponse {
  const age = String(Math.floor(ageMs / 1000));
  if (entry.status === 200 && isNotModified(req.headers, entry)) {
    const headers: Record<string, string | string[]> = {};
    for (let i = 0; i < NOT_MODIFIED_HEADERS.length; i++) {
      const name = NOT_MODIFIED_HEADERS[i]!;
      const value = entry.headers[name];
      if (value !== undefined) headers[name] = value as string | string[];
    }
    headers.age = age;
    headers[statusHeader] = status;
    return { status: 304, headers, body: EMPTY };
  }
  const headers: Record<string, string | string[]> = {};
  for (const name in entry.headers) headers[name] = entry.headers[name] as string | string[];
  headers.age = age;
  headers[statusHeader] = status;
  return { status: entry.status, headers, body: req.method === 'HEAD' ? EMPTY : entry.body };
}

/**
 * Upstream headers as stored: hop-by-hop fields, the upstream's own `Age` (folded into the entry's age) and
 * the cache status header dropped; `content-length` set from the captured body.
 */
export function headersToStore(
  headers: Readonly<Record<string, HeaderValue>>,
  statusHeader: string,
  bodyLength: number | undefined,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP_HEADERS.has(name) || name === 'age' || name === statusHeader) continue;
    out[name] = typeof value === 'number' ? String(value) : (value as string | string[]);
  }
  if (bodyLength !== undefined) out['content-length'] = String(bodyLength);
  return out;
}

/** Fields a 304 must not overwrite in a stored response when refreshing it (RFC 9111 §3.2). */
const NOT_UPDATED: ReadonlySet<string> = new Set([
  'content-length',
  'content-encoding',
  'content-type',
  'content-range',
]);

/** Stored headers updated with those of a 304 (RFC 9111 §4.3.4). */
export function mergeNotModified(
  stored: CacheEntry['headers'],
  fresh: Readonly<Record<string, HeaderValue>>,
  statusHeader: string,
): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const name in stored) out[name] = stored[name] as string | string[];
  for (const name in fresh) {
    const value = fresh[name];
    if (value === undefined || NOT_UPDATED.has(name) || HOP_BY_HOP_HEADERS.has(name)) continue;
    if (name === 'age' || name === statusHeader) continue;
    out[name] = typeof value === 'number' ? String(value) : (value as string | string[]);
  }
  return out;
}
