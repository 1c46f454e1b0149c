/**
 * @module Parsing of the header fields caching depends on: `Cache-Control` (RFC 9111 §5.2), HTTP dates
 * (RFC 9110 §5.6.7) and comma-separated lists such as `Vary`. Hand-written scanners, no per-call regexes.
 */

/** Request and response directives in one shape; each side reads the fields that apply to it. */
export interface Directives {
  noStore: boolean;
  noCache: boolean;
  private: boolean;
  public: boolean;
  mustRevalidate: boolean;
  proxyRevalidate: boolean;
  noTransform: boolean;
  onlyIfCached: boolean;
  /** Seconds; -1 when absent. An invalid value counts as 0 (RFC 9111 §4.2.1: "consider it stale"). */
  maxAge: number;
  sMaxAge: number;
  /** Request `max-stale`: -1 absent, Infinity without a value. */
  maxStale: number;
  minFresh: number;
  staleWhileRevalidate: number;
  staleIfError: number;
}

export type HeaderValue = string | readonly string[] | number | undefined;

const EMPTY: Readonly<Directives> = Object.freeze(newDirectives());

function newDirectives(): Directives {
  return {
    noStore: false,
    noCache: false,
    private: false,
    public: false,
    mustRevalidate: false,
    proxyRevalidate: false,
    noTransform: false,
    onlyIfCached: false,
    maxAge: -1,
    sMaxAge: -1,
    maxStale: -1,
    minFresh: -1,
    staleWhileRevalidate: -1,
    staleIfError: -1,
  };
}

/** Joins several header lines into one list value (RFC 9110 §5.3). */
export function joinHeader(value: HeaderValue): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return value.length === 0 ? undefined : value.join(', ');
}

/** Parses `Cache-Control`. The result of an absent header is a shared frozen object: do not mutate it. */
export function parseCacheControl(value: HeaderValue): Readonly<Directives> {
  const text = joinHeader(value);
  if (text === undefined || text.length === 0) return EMPTY;
  const d = newDirectives();
  const n = text.length;
  let i = 0;
  while (i < n) {
    while (i < n && isListSpace(text.charCodeAt(i))) i++;
    const nameStart = i;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x3d /* = */ || c === 0x2c /* , */ || c === 0x20 || c === 0x09) break;
      i++;
    }
    const name = text.slice(nameStart, i).toLowerCase();
    while (i < n && (text.charCodeAt(i) === 0x20 || text.charCodeAt(i) === 0x09)) i++;
    let arg: string | undefined;
    if (i < n && text.charCodeAt(i) === 0x3d) {
      i++;
      while (i < n && (text.charCodeAt(i) === 0x20 || text.charCodeAt(i) === 0x09)) i++;
      if (i < n && text.charCodeAt(i) === 0x22 /* " */) {
        i++;
        let out = '';
        while (i < n && text.charCodeAt(i) !== 0x22) {
          if (text.charCodeAt(i) === 0x5c /* \ */ && i + 1 < n) i++;
          out += text[i];
          i++;
        }
        i++; // closing quote
        arg = out;
      } else {
        const argStart = i;
        while (i < n && text.charCodeAt(i) !== 0x2c && !isListSpace(text.charCodeAt(i))) i++;
        arg = text.slice(argStart, i);
      }
    }
    // Skip anything up to the next comma (malformed trailing text).
    while (i < n && text.charCodeAt(i) !== 0x2c) i++;
    i++;
    if (name.length > 0) apply(d, name, arg);
  }
  return d;
}

function apply(d: Directives, name: string, arg: string | undefined): void {
  switch (name) {
    case 'no-store':
      d.noStore = true;
      return;
    case 'no-cache':
      // The qualified form `no-cache="field"` is treated as unqualified: always revalidate (allowed, safer).
      d.noCache = true;
      return;
    case 'private':
      // Likewise `private="field"`: a shared cache does not store the response at all.
      d.private = true;
      return;
    case 'public':
      d.public = true;
      return;
    case 'must-revalidate':
      d.mustRevalidate = true;
      return;
    case 'proxy-revalidate':
      d.proxyRevalidate = true;
      return;
    case 'no-transform':
      d.noTransform = true;
      return;
    case 'only-if-cached':
      d.onlyIfCached = true;
      return;
    case 'max-age':
      if (d.maxAge === -1) d.maxAge = deltaSeconds(arg);
      return;
    case 's-maxage':
      if (d.sMaxAge === -1) d.sMaxAge = deltaSeconds(arg);
      return;
    case 'max-stale':
      if (d.maxStale === -1) d.maxStale = arg === undefined ? Number.POSITIVE_INFINITY : deltaSeconds(arg);
      return;
    case 'min-fresh':
      if (d.minFresh === -1) d.minFresh = deltaSeconds(arg);
      return;
    case 'stale-while-revalidate':
      if (d.staleWhileRevalidate === -1) d.staleWhileRevalidate = deltaSeconds(arg);
      return;
    case 'stale-if-error':
      if (d.staleIfError === -1) d.staleIfError = deltaSeconds(arg);
      return;
  }
}

/** delta-seconds (RFC 9111 §1.2.2): digits only; too large saturates at 2^31; invalid → 0. */
export function deltaSeconds(arg: string | undefined): number {
  if (arg === undefined || arg.length === 0) return 0;
  let v = 0;
  for (let i = 0; i < arg.length; i++) {
    const c = arg.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return 0;
    v = v * 10 + c;
    if (v >= 2147483648) return 2147483648;
  }
  return v;
}

function isListSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x2c;
}

/** An HTTP-date in ms since the epoch, or undefined when absent or invalid. */
export function parseHttpDate(value: HeaderValue): number | undefined {
  const text = typeof value === 'string' ? value : Array.isArray(value) ? value[0] : undefined;
  if (text === undefined) return undefined;
  const ms = Date.parse(text);
  return Number.isNaN(ms) ? undefined : ms;
}

/** Splits a comma-separated list into trimmed lower-case tokens (for `Vary`). */
export function parseTokenList(value: HeaderValue): string[] {
  const text = joinHeader(value);
  const out: string[] = [];
  if (text === undefined) return out;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf(',', start);
    if (end === -1) end = text.length;
    const token = text.slice(start, end).trim().toLowerCase();
    if (token.length > 0 && !out.includes(token)) out.push(token);
    start = end + 1;
  }
  return out;
}
