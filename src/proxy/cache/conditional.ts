/**
 * @module Conditional GET/HEAD evaluated against a stored response (RFC 9110 §13.1.1, §13.1.3, §13.2.2; RFC
 * 9111 §4.3.2): If-None-Match with weak comparison first; If-Modified-Since only without it.
 */
import { type HeaderValue, joinHeader, parseHttpDate } from './directives.ts';
import type { CacheEntry } from './types.ts';

/** Whether a client's conditional request is answered 304 Not Modified from `entry`. */
export function isNotModified(reqHeaders: Readonly<Record<string, HeaderValue>>, entry: CacheEntry): boolean {
  const inm = reqHeaders['if-none-match'];
  if (inm !== undefined) {
    return entry.etag !== undefined && matchesWeak(joinHeader(inm) ?? '', entry.etag);
  }
  const ims = reqHeaders['if-modified-since'];
  // RFC 9110 §13.1.3: ignored unless it is one valid HTTP-date.
  if (ims === undefined || (Array.isArray(ims) && ims.length !== 1)) return false;
  const since = parseHttpDate(ims);
  if (since === undefined) return false;
  const modified = parseHttpDate(entry.lastModified) ?? parseHttpDate(entry.headers.date) ?? entry.responseTime;
  return modified <= since;
}

/** Whether the If-None-Match list (`*` or entity-tags) matches `etag` by weak comparison (§8.8.3.2). */
export function matchesWeak(list: string, etag: string): boolean {
  const target = opaque(etag);
  let i = 0;
  const n = list.length;
  while (i < n) {
    let c = list.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x2c) {
      i++;
      continue;
    }
    if (c === 0x2a /* * */) return true;
    const start = i;
    if (c === 0x57 /* W */ && list.charCodeAt(i + 1) === 0x2f /* / */) i += 2;
    if (list.charCodeAt(i) !== 0x22) {
      // Not an entity-tag: skip to the next comma.
      while (i < n && list.charCodeAt(i) !== 0x2c) i++;
      continue;
    }
    i++;
    while (i < n) {
      c = list.charCodeAt(i);
      i++;
      if (c === 0x22) break;
    }
    if (opaque(list.slice(start, i)) === target) return true;
  }
  return false;
}

/** The opaque-tag of an entity-tag, without the weakness indicator. */
function opaque(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}

/** Header fields a 304 carries (RFC 9110 §15.4.5), plus Last-Modified, which helps clients revalidate. */
export const NOT_MODIFIED_HEADERS: readonly string[] = [
  'cache-control',
  'content-location',
  'date',
  'etag',
  'expires',
  'last-modified',
  'vary',
];
