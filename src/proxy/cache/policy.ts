/**
 * @module Pure caching decisions of a shared cache (RFC 9111, RFC 5861): may this request use the cache, may
 * this response be stored, how long is it fresh, how old is it now, may a stale copy be served.
 *
 * No I/O and no clock: times come in as arguments (ms since the epoch).
 */
import { type Directives, type HeaderValue, parseAge, parseHttpDate, parseTokenList } from './directives.ts';
import type { CacheEntry } from './types.ts';

/**
 * Status codes a cache may store without explicit freshness (RFC 9110 §15.1). 206 is left out: partial
 * responses are never stored (ranges are served from complete 200s instead).
 */
export const CACHEABLE_BY_DEFAULT: ReadonlySet<number> = new Set([
  200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501,
]);

/**
 * Status codes whose caching requirements this cache implements, for `must-understand` (RFC 9111 §5.2.2.3):
 * the final codes RFC 9110 defines, except 206 and 304, which it never stores.
 */
const UNDERSTOOD: ReadonlySet<number> = new Set([
  200, 201, 202, 203, 204, 205, 300, 301, 302, 303, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408, 409,
  410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 426, 500, 501, 502, 503, 504, 505,
]);

/** The least time an entry stays stored after going stale (see `retentionMs`). */
const STALE_RETENTION_MS = 300_000;

/** Cap of the Last-Modified heuristic (RFC 9111 §4.2.2 suggests 10% of the age, with an upper bound). */
const HEURISTIC_CAP_MS = 86_400_000;

type Headers = Readonly<Record<string, HeaderValue>>;

/** The route settings the policy reads (a `RouteCacheConfig` fits). */
export interface PolicyConfig {
  readonly ttl?: number | undefined;
  readonly overrideTtl: boolean;
  readonly staleWhileRevalidate: number;
  readonly staleIfError: number;
  readonly storeSetCookie: boolean;
}

/** Whether the request skips the cache entirely: unsafe methods and `no-store` requests (§5.2.1.5). */
export function isBypassRequest(method: string, reqCc: Readonly<Directives>): boolean {
  return (method !== 'GET' && method !== 'HEAD') || reqCc.noStore;
}

/** The freshness numbers stored with an entry. */
export interface Freshness {
  lifetime: number;
  staleWhileRevalidate: number;
  staleIfError: number;
  mustRevalidate: boolean;
  noCache: boolean;
}

/** Whether the response carries explicit freshness (§4.2.1): s-maxage, max-age or Expires. */
function hasExplicitFreshness(resCc: Readonly<Directives>, headers: Headers): boolean {
  return resCc.sMaxAge >= 0 || resCc.maxAge >= 0 || headers.expires !== undefined;
}

/**
 * Freshness lifetime and stale windows of a response (§4.2.1, §4.2.2, RFC 5861), in ms. `responseTime` is
 * the fallback for a missing `Date`.
 */
export function computeFreshness(
  status: number,
  headers: Headers,
  resCc: Readonly<Directives>,
  cfg: PolicyConfig,
  responseTime: number,
): Freshness {
  let lifetime: number;
  if (cfg.overrideTtl && cfg.ttl !== undefined) lifetime = cfg.ttl;
  else if (resCc.sMaxAge >= 0) lifetime = resCc.sMaxAge * 1000;
  else if (resCc.maxAge >= 0) lifetime = resCc.maxAge * 1000;
  else if (headers.expires !== undefined) {
    const expires = parseHttpDate(headers.expires);
    const date = parseHttpDate(headers.date) ?? responseTime;
    // An invalid Expires (e.g. "0") means already expired (§5.3).
    lifetime = expires === undefined ? 0 : Math.max(0, expires - date);
  } else if (cfg.ttl !== undefined) lifetime = cfg.ttl;
  else lifetime = heuristicLifetime(status, headers, resCc, responseTime);
  const noCache = resCc.noCache;
  // s-maxage implies proxy-revalidate (§5.2.2.10); both forbid serving stale, as does no-cache.
  const mustRevalidate = noCache || resCc.mustRevalidate || resCc.proxyRevalidate || resCc.sMaxAge >= 0;
  return {
    lifetime: noCache ? 0 : lifetime,
    staleWhileRevalidate: mustRevalidate
      ? 0
      : resCc.staleWhileRevalidate >= 0
        ? resCc.staleWhileRevalidate * 1000
        : cfg.staleWhileRevalidate,
    staleIfError: mustRevalidate ? 0 : resCc.staleIfError >= 0 ? resCc.staleIfError * 1000 : cfg.staleIfError,
    mustRevalidate,
    noCache,
  };
}

/** 10% of the time since Last-Modified, for statuses cacheable by default or `public` responses (§4.2.2). */
function heuristicLifetime(status: number, headers: Headers, resCc: Readonly<Directives>, now: number): number {
  if (!CACHEABLE_BY_DEFAULT.has(status) && !resCc.public) return 0;
  const lastModified = parseHttpDate(headers['last-modified']);
  if (lastModified === undefined) return 0;
  const date = parseHttpDate(headers.date) ?? now;
  return Math.min(HEURISTIC_CAP_MS, Math.max(0, Math.floor((date - lastModified) / 10)));
}

/**
 * Whether a response may be stored by a shared cache (RFC 9111 §3, §3.5), given its freshness.
 * GET only: HEAD responses have no body to serve later.
 */
export function isStorable(
  method: string,
  hasAuthorization: boolean,
  reqCc: Readonly<Directives>,
  status: number,
  headers: Headers,
  resCc: Readonly<Directives>,
  cfg: PolicyConfig,
  freshness: Freshness,
): boolean {
  if (method !== 'GET' || reqCc.noStore) return false;
  if (status < 200 || status === 206 || status === 304) return false;
  // Content-Range means nothing outside 206 and 416 (RFC 9110 §14.4): a 200 with one is likely a partial
  // body sent as whole by a confused origin, never to be served as the complete response (§3.3, §3.4).
  if (headers['content-range'] !== undefined && status !== 416) return false;
  // §5.2.2.3: must-understand limits storing to codes the cache implements, and then overrides no-store.
  if (resCc.mustUnderstand ? !UNDERSTOOD.has(status) : resCc.noStore) return false;
  if (resCc.private) return false;
  if (!CACHEABLE_BY_DEFAULT.has(status) && !hasExplicitFreshness(resCc, headers) && !resCc.public) return false;
  // §3.5: a response to an authenticated request is stored only when the origin says it may be shared.
  if (hasAuthorization && !resCc.public && resCc.sMaxAge < 0 && !resCc.mustRevalidate) return false;
  // Cookies are never shared, unless the route allows it or the origin excluded them (private="set-cookie").
  if (headers['set-cookie'] !== undefined && !cfg.storeSetCookie && !excludedFields(resCc).includes('set-cookie')) {
    return false;
  }
  if (headers.vary !== undefined && parseTokenList(headers.vary).includes('*')) return false;
  // A copy that can never be used is not worth storing: it needs a lifetime, validators, a stale window, or
  // an explicit must-revalidate (kept so that a failed upstream gives 504 rather than a 502, §5.2.2.2).
  return (
    freshness.lifetime > 0 ||
    headers.etag !== undefined ||
    headers['last-modified'] !== undefined ||
    freshness.staleWhileRevalidate > 0 ||
    freshness.staleIfError > 0 ||
    resCc.mustRevalidate ||
    resCc.proxyRevalidate ||
    resCc.sMaxAge >= 0
  );
}

/**
 * Header fields never stored with a response: those named by a qualified `private` (a shared cache MUST NOT
 * store them, §5.2.2.7) or a qualified `no-cache` (never sent without revalidation, §5.2.2.4: Portico does
 * not keep them, so a response refreshed by a 304 has them only if the 304 sends them again).
 */
export function excludedFields(resCc: Readonly<Directives>): readonly string[] {
  const a = resCc.privateFields;
  const b = resCc.noCacheFields;
  return a.length === 0 ? b : b.length === 0 ? a : [...a, ...b];
}

/** corrected_initial_age (§4.2.3) in ms. */
export function correctedInitialAge(headers: Headers, requestTime: number, responseTime: number): number {
  const date = parseHttpDate(headers.date);
  const apparentAge = date === undefined ? 0 : Math.max(0, responseTime - date);
  const ageValue = parseAge(headers.age) * 1000;
  const responseDelay = Math.max(0, responseTime - requestTime);
  return Math.max(apparentAge, ageValue + responseDelay);
}

/** current_age (§4.2.3) in ms. */
export function currentAge(entry: CacheEntry, now: number): number {
  return entry.initialAge + Math.max(0, now - entry.responseTime);
}

/**
 * What a stored entry is good for now, given the request's directives:
 * - `fresh`: serve it;
 * - `stale-while-revalidate`: serve it and revalidate in the background (RFC 5861 §3);
 * - `max-stale`: stale, but the client accepts that much staleness (§5.2.1.2): serve it as is;
 * - `stale`: it must be revalidated (or replaced) before use.
 */
export type Usability = 'fresh' | 'stale-while-revalidate' | 'max-stale' | 'stale';

export function usability(entry: CacheEntry, age: number, reqCc: Readonly<Directives>): Usability {
  if (entry.noCache || reqCc.noCache) return 'stale';
  if (reqCc.maxAge >= 0 && age > reqCc.maxAge * 1000) return 'stale';
  const remaining = entry.lifetime - age;
  if (reqCc.minFresh >= 0 ? remaining >= reqCc.minFresh * 1000 && remaining > 0 : remaining > 0) return 'fresh';
  // Fresh but short of the client's min-fresh, stale when the client asked for min-fresh (§5.2.1.3: it
  // wants a response fresh for a while yet, so no stale-while-revalidate copy), or must-revalidate: only a
  // revalidated copy will do.
  if (remaining > 0 || reqCc.minFresh >= 0 || entry.mustRevalidate) return 'stale';
  const staleness = -remaining;
  if (staleness < entry.staleWhileRevalidate) return 'stale-while-revalidate';
  if (reqCc.maxStale >= 0 && staleness <= reqCc.maxStale * 1000) return 'max-stale';
  return 'stale';
}

/**
 * Whether a stale entry may stand in for a failed upstream: within the response's (or route's)
 * `stale-if-error` window (RFC 5861 §4), or the request's own `stale-if-error` or `max-stale`. Never for
 * must-revalidate, proxy-revalidate, s-maxage or no-cache responses (RFC 9111 §4.2.4).
 */
export function canServeOnError(entry: CacheEntry, age: number, reqCc: Readonly<Directives>): boolean {
  if (entry.mustRevalidate) return false;
  const staleness = age - entry.lifetime;
  if (staleness < entry.staleIfError) return true;
  if (reqCc.staleIfError >= 0 && staleness <= reqCc.staleIfError * 1000) return true;
  return reqCc.maxStale >= 0 && staleness <= reqCc.maxStale * 1000;
}

/**
 * How long a store should keep an entry: its freshness lifetime, then as long again (at least 5 minutes, and
 * at least its stale windows) while stale: long enough to be revalidated, to serve a client's `max-stale` or
 * `stale-if-error`, or to answer 504 for a must-revalidate response whose upstream is down. (nginx keeps
 * entries for its `inactive` time, 10 minutes by default, whatever their freshness.)
 */
export function retentionMs(f: Freshness): number {
  const windows = Math.max(f.staleWhileRevalidate, f.staleIfError);
  return f.lifetime + Math.max(windows, f.lifetime, STALE_RETENTION_MS);
}
