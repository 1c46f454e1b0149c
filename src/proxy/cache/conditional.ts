/**
 * @module Conditional GET/HEAD evaluated against a stored response (RFC 9110 §13.1, §13.2.2; RFC 9111
 * §4.3.2), in the order §13.2.2 gives: If-Match (strong comparison), else If-Unmodified-Since, failing with
 * 412; then If-None-Match (weak comparison), else If-Modified-Since, answered 304.
 */
import { type HeaderValue, joinHeader, parseHttpDate } from './directives.ts';
import type { CacheEntry } from './types.ts';

/**
 * Whether a client's precondition fails on `entry` (RFC 9110 §13.2.2 steps 1–2): the answer is then 412.
 * A cache need not evaluate these (RFC 9111 §4.3.2), but serving a 200 to a request whose If-Match fails
 * would be wrong; nginx evaluates both on cached responses too. If-Unmodified-Since is ignored with
 * If-Match, when it is not one valid HTTP-date, and when the entry has no Last-Modified (§13.1.4).
 */
export function preconditionFails(reqHeaders: Readonly<Record<string, HeaderValue>>, entry: CacheEntry): boolean {
  const im = reqHeaders['if-match'];
  if (im !== undefined) return !matchesStrong(joinHeader(im) ?? '', entry.etag);
  const ius = reqHeaders['if-unmodified-since'];
  if (ius === undefined || (Array.isArray(ius) && ius.length !== 1)) return false;
  const since = parseHttpDate(ius);
  const modified = parseHttpDate(entry.lastModified);
  return since !== undefined && modified !== undefined && modified > since;
}

/** Whether a client's conditional request is answered 304 Not Modified from `entry`. */
export function isNotModified(reqHeaders: Readonly<Record<string, HeaderValue>>, entry: CacheEntry): boolean {
  const inm = reqHeaders['if-none-match'];
  if (inm !== undefined) {
    // `*` matches any current representation, with or without an entity-tag (§13.1.2).
    const list = joinHeader(inm) ?? '';
    return entry.etag === undefined ? isStar(list) : matchesWeak(list, entry.etag);
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
  return someTag(list, (tag) => opaque(tag) === target);
}

/**
 * Whether the If-Match list matches by strong comparison (§8.8.3.2): `*` matches any representation; a tag
 * matches only when both are strong and equal, so a weak `etag` (or none) matches no tag.
 */
export function matchesStrong(list: string, etag: string | undefined): boolean {
  if (isStar(list)) return true;
  if (etag === undefined || etag.startsWith('W/')) return false;
  return someTag(list, (tag) => tag === etag);
}

function isStar(list: string): boolean {
  return someTag(list, () => false);
}

/** Calls `test` on each entity-tag of a list (`W/` kept); true at the first it accepts, or at a `*`. */
function someTag(list: string, test: (tag: string) => boolean): boolean {
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
    if (test(list.slice(start, i))) return true;
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
