/**
 * @module Parsing of the header fields caching depends on: `Cache-Control` (RFC 9111 §5.2), HTTP dates
 * (RFC 9110 §5.6.7) and comma-separated lists such as `Vary`. Hand-written scanners, no per-call regexes.
 */

/** Request and response directives in one shape; each side reads the fields that apply to it. */
export interface Directives {
  noStore: boolean;
  /** Unqualified `no-cache` (a request's `no-cache`, or a response's without field names). */
  noCache: boolean;
  /** Field names of a qualified response `no-cache="a, b"` (§5.2.2.4), lower-case; empty when none. */
  noCacheFields: readonly string[];
  /** Unqualified `private`. */
  private: boolean;
  /** Field names of a qualified `private="a, b"` (§5.2.2.7), lower-case; empty when none. */
  privateFields: readonly string[];
  public: boolean;
  mustRevalidate: boolean;
  proxyRevalidate: boolean;
  mustUnderstand: boolean;
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

const NO_FIELDS: readonly string[] = Object.freeze([]);
const EMPTY: Readonly<Directives> = Object.freeze(newDirectives());

function newDirectives(): Directives {
  return {
    noStore: false,
    noCache: false,
    noCacheFields: NO_FIELDS,
    private: false,
    privateFields: NO_FIELDS,
    public: false,
    mustRevalidate: false,
    proxyRevalidate: false,
    mustUnderstand: false,
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
    let arg: string | undefined;
    let malformed = false;
    if (i < n && text.charCodeAt(i) === 0x3d) {
      i++;
      const c = i < n ? text.charCodeAt(i) : 0x2c;
      if (c === 0x22 /* " */) {
        i++;
        let out = '';
        while (i < n && text.charCodeAt(i) !== 0x22) {
          if (text.charCodeAt(i) === 0x5c /* \ */ && i + 1 < n) i++;
          out += text[i];
          i++;
        }
        i++; // closing quote
        arg = out;
      } else if (c === 0x20 || c === 0x09) {
        // `max-age= 100`: no whitespace is allowed around "=" (RFC 9111 §5.2): the directive is ignored.
        malformed = true;
      } else {
        const argStart = i;
        while (i < n && text.charCodeAt(i) !== 0x2c && !isListSpace(text.charCodeAt(i))) i++;
        arg = text.slice(argStart, i);
      }
    } else {
      let j = i;
      while (j < n && (text.charCodeAt(j) === 0x20 || text.charCodeAt(j) === 0x09)) j++;
      // `max-age =100`: likewise ignored.
      if (j < n && text.charCodeAt(j) === 0x3d) malformed = true;
    }
    // Skip anything up to the next comma outside quotes (malformed trailing text).
    let quoted = false;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22) quoted = !quoted;
      else if (c === 0x5c && quoted) i++;
      else if (c === 0x2c && !quoted) break;
      i++;
    }
    i++;
    if (name.length > 0 && !malformed) apply(d, name, arg);
  }
  return d;
}

function apply(d: Directives, name: string, arg: string | undefined): void {
  switch (name) {
    case 'no-store':
      d.noStore = true;
      return;
    case 'no-cache': {
      // Qualified (`no-cache="set-cookie"`): the response may be reused, without those fields (§5.2.2.4).
      const fields = arg === undefined ? [] : parseTokenList(arg);
      if (fields.length === 0) d.noCache = true;
      else d.noCacheFields = [...d.noCacheFields, ...fields];
      return;
    }
    case 'private': {
      // Qualified (`private="x-user"`): only those fields are private; the rest may be shared (§5.2.2.7).
      const fields = arg === undefined ? [] : parseTokenList(arg);
      if (fields.length === 0) d.private = true;
      else d.privateFields = [...d.privateFields, ...fields];
      return;
    }
    case 'must-understand':
      d.mustUnderstand = true;
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

/**
 * An HTTP-date (RFC 9110 §5.6.7) in ms since the epoch, or undefined when absent or invalid. Only the three
 * formats HTTP allows are accepted (IMF-fixdate, RFC 850, asctime); `Date.parse` would take "0" or "2099"
 * as dates, and an invalid `Expires` must count as already expired (RFC 9111 §5.3).
 */
export function parseHttpDate(value: HeaderValue): number | undefined {
  const text = typeof value === 'string' ? value : Array.isArray(value) ? value[0] : undefined;
  if (text === undefined) return undefined;
  const s = text.trim();
  let m = IMF_FIXDATE.exec(s);
  if (m !== null) return utc(Number(m[3]), m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
  m = RFC850_DATE.exec(s);
  if (m !== null) {
    // §5.6.7: a two-digit year more than 50 years in the future is the most recent such year in the past.
    const now = new Date().getUTCFullYear();
    let year = Math.floor(now / 100) * 100 + Number(m[3]);
    if (year > now + 50) year -= 100;
    return utc(year, m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
  }
  m = ASCTIME_DATE.exec(s);
  if (m !== null) return utc(Number(m[6]), m[1]!, Number(m[2]), m[3]!, m[4]!, m[5]!);
  return undefined;
}

const IMF_FIXDATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const RFC850_DATE =
  /^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const ASCTIME_DATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function utc(year: number, monthName: string, day: number, h: string, min: string, sec: string): number | undefined {
  const month = MONTHS.indexOf(monthName);
  const hour = Number(h);
  const minute = Number(min);
  const second = Number(sec);
  if (month === -1 || day < 1 || hour > 23 || minute > 59 || second > 60) return undefined;
  const ms = Date.UTC(year, month, day, hour, minute, Math.min(second, 59));
  // Date.UTC rolls 31 Feb over into March: such a date is invalid.
  return new Date(ms).getUTCDate() === day ? ms : undefined;
}

/** Formats ms since the epoch as an IMF-fixdate. */
export function formatHttpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

/**
 * The `Age` header in seconds (RFC 9111 §5.1): the first member of a list, digits only; 0 when absent or
 * invalid (the field is then ignored).
 */
export function parseAge(value: HeaderValue): number {
  const text = joinHeader(value);
  if (text === undefined) return 0;
  const comma = text.indexOf(',');
  const first = (comma === -1 ? text : text.slice(0, comma)).trim();
  return first.length === 0 ? 0 : deltaSeconds(first);
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
