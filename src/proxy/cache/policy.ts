/**
 * @module Pure caching decisions of a shared cache (RFC 9111, RFC 5861): may this request use the cache, may
 * this response be stored, how long is it fresh, how old is it now, may a stale copy be served.
 *
 * No I/O and no clock: times come in as arguments (ms since the epoch).
 */
import { type Directives, type HeaderValue, parseHttpDate, parseTokenList } from './directives.ts';
import type { CacheEntry } from './types.ts';

/** Status codes a cache may store without explicit freshness (RFC 9110 §15.1). 206 is left out: no ranges. */
export const CACHEABLE_BY_DEFAULT: ReadonlySet<number> = new Set([
  200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501,
]);

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
  if (resCc.noStore || resCc.private) return false;
  if (!CACHEABLE_BY_DEFAULT.has(status) && !hasExplicitFreshness(resCc, headers) && !resCc.public) return false;
  // §3.5: a response to an authenticated request is stored only when the origin says it may be shared.
  if (hasAuthorization && !resCc.public && resCc.sMaxAge < 0 && !resCc.mustRevalidate) return false;
  if (headers['set-cookie'] !== undefined && !cfg.storeSetCookie) return false;
  if (headers.vary !== undefined && parseTokenList(headers.vary).includes('*')) return false;
  // Without a lifetime or validators a stored copy could never be used.
  if (freshness.lifetime <= 0 && headers.etag === undefined && headers['last-modified'] === undefined) {
    return false;
  }
  return true;
}

/** corrected_initial_age (§4.2.3) in ms. */
export function correctedInitialAge(headers: Headers, requestTime: number, responseTime: number): number {
  const date = parseHttpDate(headers.date);
  const apparentAge = date === undefined ? 0 : Math.max(0, responseTime - date);
  const ageHeader = typeof headers.age === 'string' ? headers.age.trim() : undefined;
  const ageValue = ageHeader === undefined ? 0 : deltaSecondsOrZero(ageHeader) * 1000;
  const responseDelay = Math.max(0, responseTime - requestTime);
  return Math.max(apparentAge, ageValue + responseDelay);
}

function deltaSecondsOrZero(text: string): number {
  const n = Number(text);
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

/** current_age (§4.2.3) in ms. */
export function currentAge(entry: CacheEntry, now: number): number {
  return entry.initialAge + Math.max(0, now - entry.responseTime);
}

/**
 * What a stored entry is good for now, given the request's directives:
 * - `fresh`: serve it;
 * - `stale-while-revalidate`: serve it and revalidate in the background (RFC 5861 §3, or request max-stale);
 * - `stale`: it must be revalidated (or replaced) before use.
 */
export type Usability = 'fresh' | 'stale-while-revalidate' | 'stale';

export function usability(entry: CacheEntry, age: number, reqCc: Readonly<Directives>): Usability {
  if (entry.noCache || reqCc.noCache) return 'stale';
  if (reqCc.maxAge >= 0 && age > reqCc.maxAge * 1000) return 'stale';
  const remaining = entry.lifetime - age;
  if (reqCc.minFresh >= 0 ? remaining >= reqCc.minFresh * 1000 && remaining > 0 : remaining > 0) return 'fresh';
  // Fresh but short of the client's min-fresh, or must-revalidate: only a revalidated copy will do.
  if (remaining > 0 || entry.mustRevalidate) return 'stale';
  const staleness = -remaining;
  if (staleness < entry.staleWhileRevalidate) return 'stale-while-revalidate';
  if (reqCc.maxStale >= 0 && staleness <= reqCc.maxStale * 1000) return 'stale-while-revalidate';
  return 'stale';
}

/** Whether a stale entry may stand in for a failed upstream (RFC 5861 §4). */
export function canServeOnError(entry: CacheEntry, age: number): boolean {
  return !entry.mustRevalidate && age - entry.lifetime < entry.staleIfError;
}

/** How long a store should keep an entry: freshness plus stale windows, longer when it can be revalidated. */
export function retentionMs(f: Freshness, hasValidators: boolean): number {
  const windows = Math.max(f.staleWhileRevalidate, f.staleIfError);
  const revalidation = hasValidators ? Math.max(f.lifetime, 300_000) : 0;
  return f.lifetime + Math.max(windows, revalidation);
}
