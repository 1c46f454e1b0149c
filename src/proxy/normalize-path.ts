/**
 * @module Request-target normalisation: turns the raw target of the request line into the one canonical path
 * the router, the policies and the upstream all see, so that `/%61dmin`, `/a/../admin` and `//admin` cannot
 * slip past a rule written for `/admin`.
 *
 * Rules (RFC 3986 §2.3, §5.2.4, §6.2.2; RFC 9110 §4.2.3), applied to the path only; the query is kept raw:
 * - percent-escapes of unreserved characters (ALPHA / DIGIT / - . _ ~) are decoded, other escapes keep their
 *   encoding with upper-case hex;
 * - invalid escapes, encoded `/` `\` NUL, raw control characters, space, `\`, non-ASCII bytes and fragments
 *   are rejected;
 * - dot-segments are resolved (never above the root) and repeated slashes are merged.
 */
import { isIPv6 } from 'node:net';

/** The outcome of {@link normalizePath}: a canonical path and the raw query, or why the target is refused. */
export type NormalizedTarget =
  | {
      readonly ok: true;
      /** Canonical path, always starting with `/`. */
      readonly path: string;
      /** Raw query without the `?`; `''` when there is none. */
      readonly query: string;
      /** Only for absolute-form targets (`http://host/a`): the authority, which overrides Host (RFC 9112 §3.2.2). */
      readonly authority?: string;
    }
  | { readonly ok: false; readonly reason: string };

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;
const QUESTION = 0x3f;
const HASH = 0x23;
const BACKSLASH = 0x5c;

/** Hex digit value, or -1. */
function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x41 && code <= 0x46) return code - 0x37;
  if (code >= 0x61 && code <= 0x66) return code - 0x57;
  return -1;
}

const HEX = '0123456789ABCDEF';

/** RFC 3986 §2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(byte: number): boolean {
  return (
    (byte >= 0x41 && byte <= 0x5a) ||
    (byte >= 0x61 && byte <= 0x7a) ||
    (byte >= 0x30 && byte <= 0x39) ||
    byte === 0x2d ||
    byte === DOT ||
    byte === 0x5f ||
    byte === 0x7e
  );
}

function fail(reason: string): NormalizedTarget {
  return { ok: false, reason };
}

/**
 * Normalises a request-target (origin-form `/a/b?x=1` or absolute-form `http://host/a?x=1`).
 * The asterisk-form `*` (OPTIONS) is the caller's business and is refused here.
 *
 * @example normalizePath('/a/../%61dmin?x=1') // { ok: true, path: '/admin', query: 'x=1' }
 */
export function normalizePath(target: string): NormalizedTarget {
  let start = 0;
  let authority: string | undefined;
  if (target.charCodeAt(0) !== SLASH) {
    const after = absoluteFormPathStart(target);
    if (after < 0) return fail('request-target is not origin-form or absolute-form');
    const end = authorityEnd(target, after);
    authority = target.slice(after, end);
    if (authority === '') return fail('absolute-form target without authority');
    if (!isValidHost(authority)) return fail('invalid authority in absolute-form target');
    start = end;
  }

  // One scan over the path part: find the query, refuse bad bytes, and notice whether the slow path is needed.
  const length = target.length;
  let slow = false;
  let queryAt = length;
  let prev = 0;
  for (let i = start; i < length; i++) {
    const code = target.charCodeAt(i);
    if (code === QUESTION) {
      queryAt = i;
      break;
    }
    if (code <= 0x20 || code >= 0x7f) return fail('control character, space or non-ASCII byte in path');
    if (code === HASH) return fail('fragment in request-target');
    if (code === BACKSLASH) return fail('backslash in path');
    if (code === PERCENT) slow = true;
    else if (prev === SLASH && (code === SLASH || (code === DOT && isDotSegment(target, i, length)))) slow = true;
    prev = code;
  }

  let query = '';
  if (queryAt < length) {
    for (let i = queryAt + 1; i < length; i++) {
      const code = target.charCodeAt(i);
      if (code === HASH) return fail('fragment in request-target');
      // Bytes >= 0x80 are let through in the query: Node's clients accept them and some real clients send them.
      if (code <= 0x20 || code === 0x7f) return fail('control character or space in query');
    }
    query = target.slice(queryAt + 1);
  }

  let path: string;
  if (start === queryAt)
    path = '/'; // absolute-form with an empty path
  else if (start === 0 && queryAt === length) path = target;
  else path = target.slice(start, queryAt);

  if (slow) {
    const decoded = decodeUnreserved(path);
    if (decoded === undefined) return fail('invalid or forbidden percent-escape in path');
    path = removeDotSegments(decoded);
  }
  return authority === undefined ? { ok: true, path, query } : { ok: true, path, query, authority };
}

/** Whether the `.` at `i` (after a `/`) starts a `.` or `..` segment. */
function isDotSegment(s: string, i: number, end: number): boolean {
  let next = i + 1 < end ? s.charCodeAt(i + 1) : SLASH;
  if (next === DOT) next = i + 2 < end ? s.charCodeAt(i + 2) : SLASH;
  return next === SLASH || next === QUESTION;
}

/** Index just after `scheme://` for http/https absolute-form targets, or -1. */
function absoluteFormPathStart(target: string): number {
  const colon = target.indexOf('://');
  if (colon < 4 || colon > 5) return -1;
  const scheme = target.slice(0, colon).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return -1;
  return colon + 3;
}

/**
 * Whether `value` is a valid Host field value or absolute-form authority: `uri-host [ ":" port ]`
 * (RFC 9110 §7.2, RFC 3986 §3.2.2–3.2.3). The host is a non-empty reg-name (which covers IPv4 addresses) or a
 * bracketed IPv6 / IPvFuture literal; the port is at most five digits. No userinfo (`@`), path, space,
 * control or non-ASCII byte. RFC 9112 §3.2: an invalid Host is answered with 400.
 *
 * @example isValidHost('api.example.com:8443') // true
 * @example isValidHost('a b') // false
 */
export function isValidHost(value: string): boolean {
  const end = value.length;
  let i = 0;
  if (value.charCodeAt(0) === 0x5b) {
    const close = value.indexOf(']');
    if (close < 2 || !isIpLiteral(value.slice(1, close))) return false;
    i = close + 1;
  } else {
    for (; i < end; i++) {
      const code = value.charCodeAt(i);
      if (code === 0x3a) break;
      if (code === PERCENT) {
        if (i + 2 >= end || hexValue(value.charCodeAt(i + 1)) < 0 || hexValue(value.charCodeAt(i + 2)) < 0)
          return false;
        i += 2;
      } else if (!isUnreserved(code) && !isSubDelim(code)) return false;
    }
    // RFC 9110 §4.2.1: an http(s) URI with an empty host is invalid.
    if (i === 0) return false;
  }
  if (i === end) return true;
  if (value.charCodeAt(i) !== 0x3a || end - i - 1 > 5) return false;
  for (let j = i + 1; j < end; j++) {
    const code = value.charCodeAt(j);
    if (code < 0x30 || code > 0x39) return false;
  }
  return true;
}

/** RFC 3986 §2.2 sub-delims: ! $ & ' ( ) * + , ; = */
function isSubDelim(code: number): boolean {
  return code === 0x21 || code === 0x24 || (code >= 0x26 && code <= 0x2c) || code === 0x3b || code === 0x3d;
}

/** The inside of `[...]`: an IPv6 address (RFC 3986 §3.2.2) or an IPvFuture literal (`v1.x`). */
function isIpLiteral(inner: string): boolean {
  if (inner.charCodeAt(0) === 0x76 || inner.charCodeAt(0) === 0x56) {
    const dot = inner.indexOf('.');
    if (dot < 2 || dot === inner.length - 1) return false;
    for (let i = 1; i < dot; i++) if (hexValue(inner.charCodeAt(i)) < 0) return false;
    for (let i = dot + 1; i < inner.length; i++) {
      const code = inner.charCodeAt(i);
      if (!isUnreserved(code) && !isSubDelim(code) && code !== 0x3a) return false;
    }
    return true;
  }
  return isIPv6(inner);
}

function authorityEnd(target: string, from: number): number {
  for (let i = from; i < target.length; i++) {
    const code = target.charCodeAt(i);
    if (code === SLASH || code === QUESTION || code === HASH) return i;
  }
  return target.length;
}

/**
 * Decodes escapes of unreserved characters and upper-cases the hex of the others.
 * Returns undefined for an invalid escape or an escaped `/`, `\` or NUL.
 */
function decodeUnreserved(path: string): string | undefined {
  let out = '';
  let from = 0;
  let i = path.indexOf('%');
  while (i !== -1) {
    if (i + 2 >= path.length) return undefined; // truncated escape
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return undefined;
    const byte = hi * 16 + lo;
    if (byte === SLASH || byte === BACKSLASH || byte === 0) return undefined;
    out += path.slice(from, i);
    out += isUnreserved(byte) ? String.fromCharCode(byte) : '%' + HEX[hi] + HEX[lo];
    from = i + 3;
    i = path.indexOf('%', from);
  }
  return out + path.slice(from);
}

/** RFC 3986 §5.2.4 for an absolute path, plus merging of empty segments; never climbs above the root. */
function removeDotSegments(path: string): string {
  const segments = path.split('/');
  const out: string[] = [];
  let trailingSlash = false;
  const last = segments.length - 1;
  for (let i = 1; i <= last; i++) {
    const segment = segments[i]!;
    if (segment === '' || segment === '.') {
      trailingSlash = i === last;
    } else if (segment === '..') {
      out.pop();
      trailingSlash = i === last;
    } else {
      out.push(segment);
      trailingSlash = false;
    }
  }
  if (out.length === 0) return '/';
  const joined = '/' + out.join('/');
  return trailingSlash ? joined + '/' : joined;
}
