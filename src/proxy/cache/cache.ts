/**
 * @module The HTTP cache engine (RFC 9111 shared cache, RFC 5861 stale extensions): lookup, coalescing of
 * concurrent misses, revalidation, stale serving, storing by teeing the body, and purging.
 *
 * ## Integration contract (for the forwarder)
 * Built once: `const cache = new Cache({ store: createCacheStore(config.cache) })`, then per route
 * `const rc = cache.forRoute(route.cache)`. Per request:
 * ```ts
 * const r = await rc.lookup({ method, host, url, headers });   // url = path + query as the client sent them
 * switch (r.kind) {
 *   case 'hit':   return send(r.response);                      // Age and x-cache set; 304 if the client's validators match
 *   case 'stale': send(r.response);                             // stale-while-revalidate, max-stale
 *                 if (r.revalidation) refreshInBackground(r.revalidation);  // see below
 *                 return;
 *   case 'reply': return sendLocalReply(r.reply);               // only-if-cached with nothing usable: 504
 *   case 'bypass': headers[cache.statusHeader] = 'BYPASS'; return forwardAsUsual();
 *   case 'miss': case 'revalidate': {
 *     const t = r.ticket;                                       // set t.upstreamHeaders on the upstream request
 *     let up; try { up = await upstream(req, t.upstreamHeaders) }
 *     catch (err) { const stale = t.onError(); return stale ? send(stale) : sendLocalReply(t.failureReply(replyFor(err))) }
 *     const out = t.onResponse(up.statusCode, up.headers);
 *     if (out.kind === 'serve') { up.body.resume(); return send(out.response) }   // 304-refreshed or stale-if-error
 *     writeHead(up.statusCode, out.headers);
 *     pipeline(up.body, ...(out.capture ? [out.capture] : []), maybeCompressor, res);
 *   }
 * }
 * // refreshInBackground(t): upstream(req, t.upstreamHeaders).then(up => t.complete(up.statusCode, up.headers, up.body), () => t.onError())
 * ```
 * MUSTs:
 * - Every ticket ends with `onResponse` or `onError` (either may come after the other; only the first counts).
 *   Requests coalesced behind it wait until then (or `coalesceTimeout`), so a forgotten ticket stalls them.
 * - `upstreamHeaders`, when set, replace the client's `if-none-match` / `if-modified-since` upstream.
 * - Pass `onResponse` the upstream headers before editing them; it adds the status header to that object.
 *   Do not mutate `req.headers` between lookup and the end of the body: Vary variants are keyed from it.
 * - When `capture` is given the body MUST flow through it (it is a pass-through); destroying it (client
 *   gone, upstream reset) stores nothing. A body larger than the route's `maxObjectSize` streams uncached.
 * - Compression runs after the cache: entries hold the upstream's representation.
 * - Give every response to a request the cache bypassed to `rc.afterUnsafe(req, status, headers)`: after an
 *   unsafe method (POST, PUT, DELETE, PATCH…) answered 2xx/3xx it invalidates the target URI and the
 *   same-origin Location / Content-Location (RFC 9111 §4.4). `req.host` and `req.url` are those of lookup.
 */
import { createRequire } from 'node:module';
import { type LocalReply, localReply } from '../../errors.ts';
import { normalizePath } from '../normalize-path.ts';
import { type Directives, type HeaderValue, joinHeader, parseCacheControl } from './directives.ts';
import { type CacheScheme, hasScheme, KeyBuilder, SCHEMES, variantKey } from './key.ts';
import { MemoryStore } from './memory-store.ts';
import { currentAge, isBypassRequest, usability } from './policy.ts';
import type { RedisStore as RedisStoreClass } from './redis-store.ts';
import { respondFromEntry, type ServedResponse } from './respond.ts';
import type { CacheSettings, RouteCacheConfig } from './schema.ts';
import { type Flight, Ticket, type TicketHost } from './ticket.ts';
import type { CacheStore } from './types.ts';

export type { CacheStatus, ServedResponse } from './respond.ts';
export type { Ticket, UpstreamHeaders, UpstreamOutcome } from './ticket.ts';

/** The request as the client sent it. */
export interface CacheRequest {
  readonly method: string;
  /** The scheme the upstream is told (X-Forwarded-Proto); part of the key. Absent: `https`. */
  readonly scheme?: CacheScheme | undefined;
  /** The Host (or :authority) the client used. */
  readonly host: string;
  /** Path and query as received (before any rewrite). */
  readonly url: string;
  readonly headers: Readonly<Record<string, HeaderValue>>;
}

export type LookupResult =
  /** Fresh: send `response` (status 200…, 304 for a matching conditional request, 412 for a failed If-Match). */
  | { readonly kind: 'hit'; readonly response: ServedResponse }
  /** Stale but usable: send `response`; when `revalidation` is set, refresh it in the background. */
  | { readonly kind: 'stale'; readonly response: ServedResponse; readonly revalidation: Ticket | undefined }
  /** Answer with this local reply, without going upstream (`only-if-cached` with nothing usable: 504). */
  | { readonly kind: 'reply'; readonly reply: LocalReply }
  /** Nothing usable stored: go upstream through the ticket. */
  | { readonly kind: 'miss'; readonly ticket: Ticket }
  /** A stored entry needs validation: go upstream with `ticket.upstreamHeaders` (its validators). */
  | { readonly kind: 'revalidate'; readonly ticket: Ticket }
  /** The request does not use the cache (unsafe method, `no-store`): forward it as usual. */
  | { readonly kind: 'bypass' };

export interface CacheOptions {
  readonly store: CacheStore;
  /** Response header with the cache status. Default `x-cache`. */
  readonly statusHeader?: string;
  /** How long a coalesced request waits for the leader, in ms. Default 10 s. */
  readonly coalesceTimeout?: number;
  /** Clock in ms since the epoch (tests inject one). */
  readonly now?: () => number;
}

const BYPASS: LookupResult = Object.freeze({ kind: 'bypass' });
const ONLY_IF_CACHED: LookupResult = Object.freeze({
  kind: 'reply',
  reply: localReply('GW_CACHE_ONLY_IF_CACHED', 'only_if_cached'),
});
/** Methods that are safe (RFC 9110 §9.2.1): their responses never invalidate (§4.4 covers the rest). */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
const PRAGMA_NO_CACHE: Readonly<Directives> = Object.freeze({ ...parseCacheControl('no-cache') });

/** Builds the store the top-level `cache` block describes. `onError` sees Redis failures (log + count). */
export function createCacheStore(settings: CacheSettings, onError?: (err: Error) => void): CacheStore {
  if (settings.store === 'memory') return new MemoryStore({ maxSize: settings.maxSize });
  // Loaded only when a config asks for it: ioredis costs memory a memory cache never needs.
  const { RedisStore } = createRequire(import.meta.url)('./redis-store.ts') as { RedisStore: typeof RedisStoreClass };
  return new RedisStore({
    url: settings.url,
    prefix: settings.prefix,
    timeout: settings.timeout,
    ...(onError === undefined ? {} : { onError }),
  });
}

/** One cache: a store plus the in-flight requests. Routes get their own view through `forRoute`. */
export class Cache {
  readonly statusHeader: string;
  readonly store: CacheStore;
  readonly coalesceTimeout: number;
  readonly now: () => number;
  /** In-process coalescing: one upstream trip per base key at a time. */
  readonly flights = new Map<string, Flight>();

  constructor(options: CacheOptions) {
    this.store = options.store;
    this.statusHeader = (options.statusHeader ?? 'x-cache').toLowerCase();
    this.coalesceTimeout = options.coalesceTimeout ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Compiles a route's cache settings (once per config generation). */
  forRoute(config: RouteCacheConfig): RouteCache {
    return new RouteCache(this, config);
  }

  /**
   * Deletes one entry by its exact key (as shown by `RouteCache.keyOf`, `https://example.com/a.js`); a key
   * without a scheme (`example.com/a.js`) deletes the entries of both schemes. Resolves to how many were there.
   */
  async purge(key: string): Promise<number> {
    const keys = hasScheme(key) ? [key] : SCHEMES.map((scheme) => `${scheme}://${key}`);
    const deleted = await Promise.all(keys.map((k) => this.store.delete(k)));
    return deleted.filter(Boolean).length;
  }

  /**
   * Deletes every entry whose key starts with `prefix`, e.g. `https://example.com/assets/`, or, without a
   * scheme (`example.com/assets/`), those of both schemes.
   */
  async purgePrefix(prefix: string): Promise<number> {
    if (hasScheme(prefix)) return this.store.purgePrefix(prefix);
    const counts = await Promise.all(SCHEMES.map((scheme) => this.store.purgePrefix(`${scheme}://${prefix}`)));
    return counts.reduce((a, b) => a + b, 0);
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

/** The cache as one route sees it. */
export class RouteCache implements TicketHost {
  readonly config: RouteCacheConfig;
  readonly store: CacheStore;
  readonly statusHeader: string;
  readonly #cache: Cache;
  readonly #keys: KeyBuilder;

  constructor(cache: Cache, config: RouteCacheConfig) {
    this.#cache = cache;
    this.config = config;
    this.store = cache.store;
    this.statusHeader = cache.statusHeader;
    this.#keys = new KeyBuilder(config.key);
  }

  now(): number {
    return this.#cache.now();
  }

  endFlight(key: string, flight: Flight): void {
    if (this.#cache.flights.get(key) === flight) this.#cache.flights.delete(key);
  }

  /** The base key of a request (what `purge` takes). */
  keyOf(req: CacheRequest): string {
    return this.#keys.base(req.scheme ?? 'https', req.host, req.url, req.headers);
  }

  lookup(req: CacheRequest): Promise<LookupResult> {
    const reqCc = requestDirectives(req.headers);
    if (isBypassRequest(req.method, reqCc)) return Promise.resolve(BYPASS);
    return this.#lookup(req, reqCc, true);
  }

  /**
   * RFC 9111 §4.4: a non-error response (2xx, 3xx) to an unsafe method (any but GET, HEAD, OPTIONS, TRACE)
   * invalidates what is stored for the target URI, and for the URIs in Location and Content-Location when
   * they have the same host (another origin's entries are never touched). No-op otherwise.
   */
  async afterUnsafe(req: CacheRequest, status: number, headers: Readonly<Record<string, HeaderValue>>): Promise<void> {
    if (SAFE_METHODS.has(req.method) || status < 200 || status >= 400) return;
    const targets = [req.url];
    for (const name of ['location', 'content-location']) {
      const value = joinHeader(headers[name]);
      const path = value === undefined ? undefined : sameOriginPath(req.host, req.url, value);
      if (path !== undefined && !targets.includes(path)) targets.push(path);
    }
    await Promise.all(targets.map((url) => this.invalidate({ ...req, url })));
  }

  /**
   * Drops every stored response for the target URI of `req`, under either scheme (a change made over one
   * reaches the other): all its Vary variants (by deleting the index that names their generation) and, when
   * the key has configured headers or cookies, every such key.
   */
  async invalidate(req: CacheRequest): Promise<void> {
    await Promise.all(
      SCHEMES.map((scheme) => {
        const uri = this.#keys.uri(scheme, req.host, req.url);
        return this.#keys.hasExtras ? this.store.purgePrefix(`${uri}\n`) : this.store.delete(uri);
      }),
    );
  }

  async #lookup(req: CacheRequest, reqCc: Readonly<Directives>, mayFollow: boolean): Promise<LookupResult> {
    const base = this.keyOf(req);
    let entryKey = base;
    let entry = await this.store.get(base);
    let generation: string | undefined;
    if (entry !== undefined && entry.status === 0) {
      generation = entry.generation ?? '';
      entryKey = variantKey(base, entry.vary ?? [], req.headers, generation);
      entry = await this.store.get(entryKey);
    }
    const flights = this.#cache.flights;
    if (entry !== undefined) {
      const now = this.now();
      const age = currentAge(entry, now);
      const use = usability(entry, age, reqCc);
      if (use === 'fresh') {
        return { kind: 'hit', response: respondFromEntry(entry, age, req, 'HIT', this.statusHeader) };
      }
      if (use === 'max-stale') {
        // The client takes this much staleness (§5.2.1.2): no trip to the origin at all.
        const response = respondFromEntry(entry, age, req, 'STALE', this.statusHeader);
        return { kind: 'stale', response, revalidation: undefined };
      }
      if (use === 'stale-while-revalidate') {
        const response = respondFromEntry(entry, age, req, 'STALE', this.statusHeader);
        if (flights.has(base) || req.method !== 'GET' || reqCc.onlyIfCached) {
          return { kind: 'stale', response, revalidation: undefined };
        }
        const flight = newFlight(flights, base);
        // The background request revalidates the entry alone: the client's own validators and Range stay out.
        const plain = { ...req, headers: withoutPreconditions(req.headers) };
        const revalidation = new Ticket(this, plain, reqCc, base, entry, entryKey, generation, flight, true);
        return { kind: 'stale', response, revalidation };
      }
    }
    // §5.2.1.7: only-if-cached and nothing stored that may be used: 504, never the origin.
    if (reqCc.onlyIfCached) return ONLY_IF_CACHED;
    const leading = flights.get(base);
    if (leading !== undefined && mayFollow) {
      await follow(leading, this.#cache.coalesceTimeout);
      return this.#lookup(req, reqCc, false);
    }
    const flight = leading === undefined && canLead(req) ? newFlight(flights, base) : undefined;
    const revalidate =
      entry !== undefined && req.method === 'GET' && (entry.etag !== undefined || entry.lastModified !== undefined);
    const ticket = new Ticket(this, req, reqCc, base, entry, entryKey, generation, flight, revalidate);
    return revalidate ? { kind: 'revalidate', ticket } : { kind: 'miss', ticket };
  }
}

/**
 * The path and query (as the key holds them) of a Location / Content-Location value that resolves to the
 * same host as the request; undefined for another host, another scheme family or a malformed value.
 */
function sameOriginPath(host: string, url: string, value: string): string | undefined {
  if (host === '') return undefined;
  try {
    const base = new URL(`http://${host}${url.startsWith('/') ? url : `/${url}`}`);
    const target = new URL(value.trim(), base);
    if (target.protocol !== 'http:' && target.protocol !== 'https:') return undefined;
    if (target.host !== base.host) return undefined;
    // The key holds the normalised path (as handle-request.ts makes it): `/a%7eb` and `/x/../a~b` name `/a~b`.
    const normal = normalizePath(target.pathname + target.search);
    if (!normal.ok) return undefined;
    return normal.query === '' ? normal.path : `${normal.path}?${normal.query}`;
  } catch {
    return undefined;
  }
}

/** Request directives; `Pragma: no-cache` counts only without Cache-Control (RFC 9111 §5.4). */
function requestDirectives(headers: Readonly<Record<string, HeaderValue>>): Readonly<Directives> {
  const cc = headers['cache-control'];
  if (cc !== undefined) return parseCacheControl(cc);
  const pragma = headers.pragma;
  return typeof pragma === 'string' && pragma.toLowerCase().includes('no-cache')
    ? PRAGMA_NO_CACHE
    : parseCacheControl(undefined);
}

/** Request fields that make a GET conditional or partial (RFC 9110 §13.1, §14.2). */
export const PRECONDITION_FIELDS: readonly string[] = [
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'if-range',
  'range',
];

function withoutPreconditions(headers: Readonly<Record<string, HeaderValue>>): Record<string, HeaderValue> {
  const out = { ...headers };
  for (const name of PRECONDITION_FIELDS) delete out[name];
  return out;
}

/**
 * Only a plain GET leads: its response is the one others can share (no ranges, no client preconditions,
 * whose 304 or 412 could not serve them).
 */
function canLead(req: CacheRequest): boolean {
  if (req.method !== 'GET') return false;
  const h = req.headers;
  for (let i = 0; i < PRECONDITION_FIELDS.length; i++) if (h[PRECONDITION_FIELDS[i]!] !== undefined) return false;
  return true;
}

function newFlight(flights: Map<string, Flight>, key: string): Flight {
  let resolve!: (stored: boolean) => void;
  const done = new Promise<boolean>((r) => {
    resolve = r;
  });
  const flight: Flight = { done, resolve };
  flights.set(key, flight);
  return flight;
}

async function follow(flight: Flight, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((r) => {
    timer = setTimeout(r, timeoutMs, false);
  });
  try {
    return await Promise.race([flight.done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
