/**
 * @module Cache data types shared by the policy, the stores and the engine: what a stored response holds and
 * the one interface every store implements.
 */

/** Response header fields as stored: lower-case names, one string or several lines. */
export type StoredHeaders = Readonly<Record<string, string | readonly string[]>>;

/**
 * One stored response (or, with `status === 0`, the Vary index of a base key: `vary` lists the request
 * headers that select a variant, and nothing else is meaningful).
 *
 * Times are milliseconds since the epoch from the engine's clock. Freshness inputs are computed once when the
 * entry is stored, so a hit does not parse dates or directives again.
 */
export interface CacheEntry {
  readonly status: number;
  readonly headers: StoredHeaders;
  readonly body: Buffer;
  /** When the request that produced this response was sent upstream (RFC 9111 §4.2.3 request_time). */
  readonly requestTime: number;
  /** When its response head arrived (response_time). */
  readonly responseTime: number;
  readonly storedAt: number;
  /** corrected_initial_age (§4.2.3) in ms: age the response already had when it arrived. */
  readonly initialAge: number;
  /** Freshness lifetime in ms (§4.2.1); 0 with `noCache` means "always revalidate". */
  readonly lifetime: number;
  /** How long after going stale it may be served while revalidating in the background (RFC 5861 §3). */
  readonly staleWhileRevalidate: number;
  /** How long after going stale it may be served when the upstream fails (RFC 5861 §4). */
  readonly staleIfError: number;
  /** `must-revalidate`, `proxy-revalidate` or `s-maxage`: never served stale (§4.2.4, §5.2.2.10). */
  readonly mustRevalidate: boolean;
  /** `no-cache`: every use needs a successful revalidation (§5.2.2.4). */
  readonly noCache: boolean;
  readonly etag?: string;
  readonly lastModified?: string;
  /** Lower-case request header names from the response's `Vary` (sorted), when it has one. */
  readonly vary?: readonly string[];
  /** On a Vary index (`status === 0`): the generation its variants are stored under (see key.ts). */
  readonly generation?: string;
}

/**
 * A place to keep entries. Memory and Redis implement it and pass the same contract suite.
 *
 * MUSTs: never throw or reject for an unreachable backend (a failed `get` is a miss, a failed `set` is a
 * no-op); `get` returns undefined once `ttlMs` has passed; callers treat returned entries as immutable.
 */
export interface CacheStore {
  get(key: string): Promise<CacheEntry | undefined>;
  set(key: string, entry: CacheEntry, ttlMs: number): Promise<void>;
  delete(key: string): Promise<boolean>;
  /** Deletes every key that starts with `prefix`; resolves to how many were deleted. */
  purgePrefix(prefix: string): Promise<number>;
  close(): Promise<void>;
}
