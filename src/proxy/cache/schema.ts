/**
 * @module Config schema for caching: the top-level `cache` block (which store, its bound, the status header)
 * and a route's `cache` option (`cache: true` or an object). Durations and sizes arrive as ms and bytes.
 */
import { z } from 'zod';
import { duration, headerName, size } from '../../config/primitives.ts';

const MIB = 1024 * 1024;

const cacheKey = z
  .strictObject({
    headers: z
      .array(headerName)
      .default([])
      .meta({ description: 'Request headers whose values become part of the key (besides those named by Vary)' }),
    query: z
      .enum(['keep', 'ignore', 'sorted'])
      .default('keep')
      .meta({ description: 'keep: the query as sent; sorted: parameters sorted by name; ignore: no query in the key' }),
    cookies: z.array(z.string().min(1)).default([]).meta({ description: 'Cookie names whose values join the key' }),
  })
  .meta({ description: 'What else, beyond host, path and query, selects a cached response' });

const routeCacheObject = z.strictObject({
  ttl: duration
    .optional()
    .meta({ description: 'Freshness lifetime when the response gives none (no max-age, s-maxage or Expires)' }),
  overrideTtl: z
    .boolean()
    .default(false)
    .meta({ description: 'Use `ttl` even when the response gives a lifetime (no-store and private still win)' }),
  staleWhileRevalidate: duration.default(0).meta({
    description:
      'Serve stale for this long while revalidating in the background (RFC 5861), if the response gives none',
  }),
  staleIfError: duration
    .default(0)
    .meta({ description: 'Serve stale for this long when the upstream fails (RFC 5861), if the response gives none' }),
  key: cacheKey.default(cacheKey.parse({})),
  storeSetCookie: z
    .boolean()
    .default(false)
    .meta({ description: 'Store responses that carry Set-Cookie (off: they are never stored)' }),
  maxObjectSize: size
    .default(MIB)
    .meta({ description: 'Largest body stored; larger responses stream to the client uncached' }),
});

/** A route's `cache`: `true` for the defaults, or an object. */
export const routeCache = z
  .union([z.literal(true), routeCacheObject])
  .transform((v) => (v === true ? routeCacheObject.parse({}) : v))
  .meta({ description: 'Cache responses of this route (RFC 9111 shared cache)' });

const common = {
  header: headerName
    .default('x-cache')
    .meta({ description: 'Response header telling HIT, MISS, STALE, BYPASS or REVALIDATED' }),
  coalesceTimeout: duration
    .default(10_000)
    .meta({ description: 'How long concurrent misses wait for the first one before going upstream themselves' }),
};

/** The top-level `cache` block. */
export const cacheSettings = z
  .discriminatedUnion('store', [
    z.strictObject({
      store: z.literal('memory'),
      maxSize: size.default(256 * MIB).meta({ description: 'Bytes of memory the cache may use' }),
      ...common,
    }),
    z.strictObject({
      store: z.literal('redis'),
      url: z.string().meta({ description: 'redis://host:port/db, shared by every Portico instance' }),
      prefix: z.string().default('portico:cache:').meta({ description: 'Prefix of every Redis key' }),
      timeout: duration.default(250).meta({ description: 'Per-command timeout; a slow Redis counts as a miss' }),
      ...common,
    }),
  ])
  .meta({ description: 'Where cached responses live: memory (default, per process) or redis (shared)' });

export const DEFAULT_CACHE_SETTINGS = cacheSettings.parse({ store: 'memory' });

export type RouteCacheConfig = z.output<typeof routeCacheObject>;
export type CacheSettings = z.output<typeof cacheSettings>;
