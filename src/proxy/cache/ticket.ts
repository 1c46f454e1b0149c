/**
 * @module A ticket: one trip upstream on behalf of the cache (a miss, a revalidation, or a background
 * stale-while-revalidate refresh). It turns the upstream's answer into what to send, stores what may be
 * stored, and releases requests coalesced behind it.
 */

import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type CaptureSink, CaptureStream } from './capture.ts';
import { type Directives, type HeaderValue, parseCacheControl, parseTokenList } from './directives.ts';
import { variantKey } from './key.ts';
import {
  canServeOnError,
  computeFreshness,
  correctedInitialAge,
  currentAge,
  type Freshness,
  isStorable,
  retentionMs,
} from './policy.ts';
import {
  type CacheStatus,
  headersToStore,
  mergeNotModified,
  respondFromEntry,
  type ServedResponse,
} from './respond.ts';
import type { RouteCacheConfig } from './schema.ts';
import type { CacheEntry, CacheStore } from './types.ts';

export type UpstreamHeaders = Record<string, string | string[] | number | undefined>;

/** What to do with the upstream's response. */
export type UpstreamOutcome =
  /** Send `response` instead (a refreshed entry after 304, or a stale one standing in for a 5xx); drain the upstream body. */
  | { readonly kind: 'serve'; readonly response: ServedResponse }
  /**
   * Send the upstream response with `headers` (the same object, status header added). When `capture` is
   * set, pipe the body through it: upstream body → capture → (compression) → client.
   */
  | { readonly kind: 'forward'; readonly headers: UpstreamHeaders; readonly capture: CaptureStream | undefined };

/** Requests waiting for one upstream trip; resolves true when it stored a response. */
export interface Flight {
  readonly done: Promise<boolean>;
  readonly resolve: (stored: boolean) => void;
}

/** What a ticket needs from the route cache that issued it. */
export interface TicketHost {
  readonly store: CacheStore;
  readonly config: RouteCacheConfig;
  readonly statusHeader: string;
  now(): number;
  endFlight(key: string, flight: Flight): void;
}

export interface TicketRequest {
  readonly method: string;
  readonly headers: Readonly<Record<string, HeaderValue>>;
}

export class Ticket implements CaptureSink {
  /**
   * Headers to set on the upstream request, replacing any of the same name (the stored validators when
   * revalidating); undefined when the client's request goes up unchanged.
   */
  readonly upstreamHeaders: Readonly<Record<string, string>> | undefined;
  readonly #host: TicketHost;
  readonly #req: TicketRequest;
  readonly #reqCc: Readonly<Directives>;
  readonly #baseKey: string;
  readonly #entry: CacheEntry | undefined;
  readonly #entryKey: string;
  readonly #flight: Flight | undefined;
  readonly #requestTime: number;
  #settled = false;
  // Set by onResponse for the capture to finish storing.
  #status = 0;
  #headers: UpstreamHeaders | undefined;
  #freshness: Freshness | undefined;
  #responseTime = 0;

  constructor(
    host: TicketHost,
    req: TicketRequest,
    reqCc: Readonly<Directives>,
    baseKey: string,
    entry: CacheEntry | undefined,
    entryKey: string,
    flight: Flight | undefined,
    revalidate: boolean,
  ) {
    this.#host = host;
    this.#req = req;
    this.#reqCc = reqCc;
    this.#baseKey = baseKey;
    this.#entry = entry;
    this.#entryKey = entryKey;
    this.#flight = flight;
    this.#requestTime = host.now();
    this.upstreamHeaders = revalidate && entry !== undefined ? validators(entry) : undefined;
  }

  /** Call with the upstream's status and headers (hop-by-hop fields may still be there). Exactly once. */
  onResponse(status: number, headers: UpstreamHeaders): UpstreamOutcome {
    const host = this.#host;
    const now = host.now();
    const entry = this.#entry;
    if (entry !== undefined && status === 304 && this.upstreamHeaders !== undefined) {
      return { kind: 'serve', response: this.#refresh(entry, headers, now) };
    }
    if (entry !== undefined && status >= 500 && canServeOnError(entry, currentAge(entry, now))) {
      this.#settle(false);
      return { kind: 'serve', response: this.#respond(entry, now, 'STALE') };
    }
    const resCc = parseCacheControl(headers['cache-control']);
    const freshness = computeFreshness(status, headers, resCc, host.config, now);
    const length = contentLength(headers);
    const storable =
      (length === undefined || length <= host.config.maxObjectSize) &&
      isStorable(
        this.#req.method,
        this.#req.headers.authorization !== undefined,
        this.#reqCc,
        status,
        headers,
        resCc,
        host.config,
        freshness,
      );
    headers[host.statusHeader] = 'MISS' satisfies CacheStatus;
    if (!storable) {
      // The origin no longer allows the stored copy (no-store, private…): drop it (RFC 9111 §4.4 spirit).
      if (entry !== undefined && status < 500 && this.#req.method === 'GET') void host.store.delete(this.#entryKey);
      this.#settle(false);
      return { kind: 'forward', headers, capture: undefined };
    }
    this.#status = status;
    this.#headers = headers;
    this.#freshness = freshness;
    this.#responseTime = now;
    return { kind: 'forward', headers, capture: new CaptureStream(host.config.maxObjectSize, this) };
  }

  /**
   * Call when the upstream could not be reached or answered nothing usable (connect error, timeout, reset
   * before headers). Returns a stale response to send when stale-if-error allows, else undefined (send the
   * local error reply). Also releases coalesced requests. Safe to call after onResponse (no effect then).
   */
  onError(): ServedResponse | undefined {
    if (this.#settled) return undefined;
    this.#settle(false);
    const entry = this.#entry;
    const now = this.#host.now();
    if (entry !== undefined && canServeOnError(entry, currentAge(entry, now)))
      return this.#respond(entry, now, 'STALE');
    return undefined;
  }

  /** For background revalidation: handles the whole upstream response, draining its body. Never rejects. */
  async complete(status: number, headers: UpstreamHeaders, body: Readable): Promise<void> {
    const outcome = this.onResponse(status, headers);
    const sink = new Writable({ write: (_chunk, _enc, cb) => cb() });
    try {
      if (outcome.kind === 'forward' && outcome.capture !== undefined) await pipeline(body, outcome.capture, sink);
      else await pipeline(body, sink);
    } catch {
      // The capture saw the error and stored nothing.
    }
  }

  /** CaptureSink: the body streamed to its end (Buffer) or not (undefined). */
  finishCapture(body: Buffer | undefined): void {
    const headers = this.#headers;
    const freshness = this.#freshness;
    if (body === undefined || headers === undefined || freshness === undefined) {
      this.#settle(false);
      return;
    }
    const declared = contentLength(headers);
    if (declared !== undefined && declared !== body.length) {
      this.#settle(false);
      return;
    }
    const host = this.#host;
    const stored = headersToStore(headers, host.statusHeader, body.length);
    const entry = makeEntry(
      this.#status,
      stored,
      body,
      this.#requestTime,
      this.#responseTime,
      correctedInitialAge(headers, this.#requestTime, this.#responseTime),
      freshness,
      parseTokenList(headers.vary),
    );
    void this.#store(entry, retentionMs(freshness, entry.etag !== undefined || entry.lastModified !== undefined));
  }

  async #store(entry: CacheEntry, ttl: number): Promise<void> {
    const store = this.#host.store;
    const vary = entry.vary;
    if (vary === undefined) await store.set(this.#baseKey, entry, ttl);
    else {
      const marker = makeEntry(0, {}, Buffer.alloc(0), entry.requestTime, entry.responseTime, 0, NO_FRESHNESS, vary);
      await store.set(this.#baseKey, marker, ttl);
      await store.set(variantKey(this.#baseKey, vary, this.#req.headers), entry, ttl);
    }
    this.#settle(true);
  }

  /** RFC 9111 §4.3.4: a 304 refreshes the stored headers and freshness; the stored body is served. */
  #refresh(old: CacheEntry, headers: UpstreamHeaders, now: number): ServedResponse {
    const host = this.#host;
    const merged = mergeNotModified(old.headers, headers, host.statusHeader);
    const resCc = parseCacheControl(merged['cache-control']);
    const freshness = computeFreshness(old.status, merged, resCc, host.config, now);
    const age = correctedInitialAge({ date: merged.date, age: headers.age }, this.#requestTime, now);
    const entry = makeEntry(old.status, merged, old.body, this.#requestTime, now, age, freshness, old.vary);
    if (resCc.noStore || resCc.private) {
      void host.store.delete(this.#entryKey);
      this.#settle(false);
    } else {
      const ttl = retentionMs(freshness, entry.etag !== undefined || entry.lastModified !== undefined);
      void host.store.set(this.#entryKey, entry, ttl).then(() => this.#settle(true));
    }
    return this.#respond(entry, now, 'REVALIDATED');
  }

  #respond(entry: CacheEntry, now: number, status: CacheStatus): ServedResponse {
    return respondFromEntry(entry, currentAge(entry, now), this.#req, status, this.#host.statusHeader);
  }

  #settle(stored: boolean): void {
    if (this.#settled) return;
    this.#settled = true;
    const flight = this.#flight;
    if (flight !== undefined) {
      this.#host.endFlight(this.#baseKey, flight);
      flight.resolve(stored);
    }
  }
}

const NO_FRESHNESS: Freshness = {
  lifetime: 0,
  staleWhileRevalidate: 0,
  staleIfError: 0,
  mustRevalidate: true,
  noCache: true,
};

function makeEntry(
  status: number,
  headers: Record<string, string | string[]>,
  body: Buffer,
  requestTime: number,
  responseTime: number,
  initialAge: number,
  f: Freshness,
  vary: readonly string[] | undefined,
): CacheEntry {
  const etag = headers.etag;
  const lastModified = headers['last-modified'];
  return {
    status,
    headers,
    body,
    requestTime,
    responseTime,
    storedAt: responseTime,
    initialAge,
    lifetime: f.lifetime,
    staleWhileRevalidate: f.staleWhileRevalidate,
    staleIfError: f.staleIfError,
    mustRevalidate: f.mustRevalidate,
    noCache: f.noCache,
    ...(typeof etag === 'string' ? { etag } : {}),
    ...(typeof lastModified === 'string' ? { lastModified } : {}),
    ...(vary !== undefined && vary.length > 0 ? { vary } : {}),
  };
}

/** The conditional headers that revalidate `entry` (RFC 9111 §4.3.1). */
function validators(entry: CacheEntry): Record<string, string> | undefined {
  if (entry.etag !== undefined) {
    return entry.lastModified === undefined
      ? { 'if-none-match': entry.etag }
      : { 'if-none-match': entry.etag, 'if-modified-since': entry.lastModified };
  }
  if (entry.lastModified !== undefined) return { 'if-modified-since': entry.lastModified };
  return undefined;
}

function contentLength(headers: UpstreamHeaders): number | undefined {
  const value = headers['content-length'];
  if (value === undefined) return undefined;
  const n = typeof value === 'number' ? value : Number(Array.isArray(value) ? value[0] : value);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
