/**
 * @module A ticket: one trip upstream on behalf of the cache (a miss, a revalidation, or a background
 * stale-while-revalidate refresh). It turns the upstream's answer into what to send, stores what may be
 * stored, and releases requests coalesced behind it.
 */

import { randomUUID } from 'node:crypto';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type LocalReply, localReply } from '../../errors.ts';
import { type CaptureSink, CaptureStream } from './capture.ts';
import { matchesWeak } from './conditional.ts';
import { type Directives, type HeaderValue, joinHeader, parseCacheControl, parseTokenList } from './directives.ts';
import { variantKey } from './key.ts';
import {
  canServeOnError,
  computeFreshness,
  correctedInitialAge,
  currentAge,
  excludedFields,
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

/** Statuses that count as the upstream failing, for stale-if-error (RFC 5861 §4). */
const ERROR_STATUSES: ReadonlySet<number> = new Set([500, 502, 503, 504]);

/** Statuses that answer the client's own Range or preconditions rather than describe the resource. */
const ANSWERS_PRECONDITION: ReadonlySet<number> = new Set([206, 304, 412, 416]);

/** How long a Vary index outlives the variant that wrote it (it is tiny, and other variants rely on it). */
const INDEX_TTL_MS = 86_400_000;

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
  /** The generation of the base key's Vary index when one was found (see key.ts). */
  readonly #generation: string | undefined;
  readonly #flight: Flight | undefined;
  readonly #requestTime: number;
  #settled = false;
  // Set by onResponse for the capture to finish storing.
  #status = 0;
  #headers: UpstreamHeaders | undefined;
  #resCc: Readonly<Directives> | undefined;
  #freshness: Freshness | undefined;
  #responseTime = 0;

  constructor(
    host: TicketHost,
    req: TicketRequest,
    reqCc: Readonly<Directives>,
    baseKey: string,
    entry: CacheEntry | undefined,
    entryKey: string,
    generation: string | undefined,
    flight: Flight | undefined,
    revalidate: boolean,
  ) {
    this.#host = host;
    this.#req = req;
    this.#reqCc = reqCc;
    this.#baseKey = baseKey;
    this.#entry = entry;
    this.#entryKey = entryKey;
    this.#generation = generation;
    this.#flight = flight;
    this.#requestTime = host.now();
    this.upstreamHeaders = revalidate && entry !== undefined ? validators(entry, req.headers) : undefined;
  }

  /** Call with the upstream's status and headers (hop-by-hop fields may still be there). Exactly once. */
  onResponse(status: number, headers: UpstreamHeaders): UpstreamOutcome {
    const host = this.#host;
    const now = host.now();
    const entry = this.#entry;
    if (entry !== undefined && status === 304 && this.upstreamHeaders !== undefined) {
      const outcome = this.#notModified(entry, headers, now);
      if (outcome !== undefined) return outcome;
    }
    if (entry !== undefined && status === 200 && this.#req.method === 'HEAD')
      this.#freshenFromHead(entry, headers, now);
    if (
      entry !== undefined &&
      ERROR_STATUSES.has(status) &&
      canServeOnError(entry, currentAge(entry, now), this.#reqCc)
    ) {
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
      // A newer response the origin does not let us keep (no-store, private…) supersedes the stored copy.
      // A 206, 304, 412 or 416 (answering the client's own Range or preconditions) says nothing about it.
      if (entry !== undefined && !ANSWERS_PRECONDITION.has(status) && status < 500 && this.#req.method === 'GET') {
        void host.store.delete(this.#entryKey);
      }
      this.#settle(false);
      return { kind: 'forward', headers, capture: undefined };
    }
    this.#status = status;
    this.#headers = headers;
    this.#resCc = resCc;
    this.#freshness = freshness;
    this.#responseTime = now;
    return { kind: 'forward', headers, capture: new CaptureStream(host.config.maxObjectSize, this) };
  }

  /**
   * Call when the upstream could not be reached or answered nothing usable (connect error, timeout, reset
   * before headers). Returns a stale response to send when stale-if-error allows, else undefined (send the
   * local error reply, see `failureReply`). Also releases coalesced requests. Safe to call after onResponse
   * (no effect then).
   */
  onError(): ServedResponse | undefined {
    if (this.#settled) return undefined;
    this.#settle(false);
    const entry = this.#entry;
    const now = this.#host.now();
    if (entry !== undefined && canServeOnError(entry, currentAge(entry, now), this.#reqCc))
      return this.#respond(entry, now, 'STALE');
    return undefined;
  }

  /**
   * The reply for a failed upstream when `onError` gave nothing to serve: a stored response that must be
   * revalidated (must-revalidate, proxy-revalidate, s-maxage, no-cache) turns the failure into 504 (RFC 9111
   * §5.2.2.2); otherwise `reply` itself.
   */
  failureReply(reply: LocalReply): LocalReply {
    const entry = this.#entry;
    if (entry === undefined || !entry.mustRevalidate) return reply;
    return localReply('GW_CACHE_REVALIDATION_FAILED', `must_revalidate:${reply.details}`);
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
    // §3.3: a body shorter (or longer) than declared is incomplete and never stored.
    const declared = contentLength(headers);
    if (declared !== undefined && declared !== body.length) {
      this.#settle(false);
      return;
    }
    const host = this.#host;
    const responseTime = this.#responseTime;
    const stored = headersToStore(
      headers,
      host.statusHeader,
      body.length,
      responseTime,
      excludedFields(this.#resCc ?? parseCacheControl(undefined)),
    );
    const vary = parseTokenList(headers.vary).sort();
    const entry = makeEntry(
      this.#status,
      stored,
      body,
      this.#requestTime,
      responseTime,
      correctedInitialAge(headers, this.#requestTime, responseTime),
      freshness,
      vary,
    );
    void this.#store(entry, retentionMs(freshness));
  }

  async #store(entry: CacheEntry, ttl: number): Promise<void> {
    const store = this.#host.store;
    const vary = entry.vary;
    if (vary === undefined) await store.set(this.#baseKey, entry, ttl);
    else {
      // Variants live under the generation of the index; a new index starts a new generation.
      const generation = this.#generation ?? randomUUID().slice(0, 8);
      const index: CacheEntry = {
        ...makeEntry(0, {}, EMPTY, entry.requestTime, entry.responseTime, 0, NO_FRESHNESS, vary),
        generation,
      };
      await store.set(this.#baseKey, index, Math.max(ttl, INDEX_TTL_MS));
      await store.set(variantKey(this.#baseKey, vary, this.#req.headers, generation), entry, ttl);
    }
    this.#settle(true);
  }

  /**
   * RFC 9111 §4.3.3/§4.3.4: a 304 to the stored validators refreshes the stored headers and freshness, and
   * the stored body is served. A 304 whose validators identify another representation does not update the
   * entry (§4.3.4): it goes to a client that asked conditionally (its own validators matched); otherwise the
   * stored response is served this once (the origin said our validators still match) and dropped.
   */
  #notModified(old: CacheEntry, headers: UpstreamHeaders, now: number): UpstreamOutcome | undefined {
    if (identifies(headers, old)) return { kind: 'serve', response: this.#refresh(old, headers, now) };
    const h = this.#req.headers;
    void this.#host.store.delete(this.#entryKey);
    this.#settle(false);
    if (h['if-none-match'] !== undefined || h['if-modified-since'] !== undefined) {
      headers[this.#host.statusHeader] = 'MISS' satisfies CacheStatus;
      return { kind: 'forward', headers, capture: undefined };
    }
    return { kind: 'serve', response: this.#respond(old, now, 'REVALIDATED') };
  }

  /**
   * RFC 9111 §4.3.5: a 200 to a HEAD sent upstream (the GET entry it could have been answered from was stale)
   * updates that entry when the two match, by ETag and Last-Modified as the HEAD response gives them (at least
   * one) and by Content-Length when it gives one: new headers and freshness, the stored body kept. Otherwise
   * the stored response is outdated and dropped. The HEAD response itself goes to the client as usual.
   */
  #freshenFromHead(old: CacheEntry, headers: UpstreamHeaders, now: number): void {
    const etag = firstValue(headers.etag);
    const lastModified = firstValue(headers['last-modified']);
    const length = contentLength(headers);
    const matches =
      (etag !== undefined || lastModified !== undefined) &&
      (etag === undefined || (old.etag !== undefined && opaqueTag(etag) === opaqueTag(old.etag))) &&
      (lastModified === undefined || lastModified === old.lastModified) &&
      (length === undefined || length === old.body.length);
    if (matches) this.#update(old, headers, now);
    else void this.#host.store.delete(this.#entryKey);
  }

  #refresh(old: CacheEntry, headers: UpstreamHeaders, now: number): ServedResponse {
    return this.#respond(this.#update(old, headers, now), now, 'REVALIDATED');
  }

  /** Stores `old` with the headers and freshness of a response that confirmed it (a 304, a HEAD's 200). */
  #update(old: CacheEntry, headers: UpstreamHeaders, now: number): CacheEntry {
    const host = this.#host;
    const merged = mergeNotModified(old.headers, headers, host.statusHeader, now);
    const resCc = parseCacheControl(merged['cache-control']);
    const freshness = computeFreshness(old.status, merged, resCc, host.config, now);
    const age = correctedInitialAge({ date: merged.date, age: headers.age }, this.#requestTime, now);
    const entry = makeEntry(old.status, merged, old.body, this.#requestTime, now, age, freshness, old.vary);
    if ((resCc.noStore && !resCc.mustUnderstand) || resCc.private || this.#reqCc.noStore) {
      void host.store.delete(this.#entryKey);
      this.#settle(false);
    } else {
      // What this client gets may carry fields that are never stored: qualified private / no-cache fields,
      // and a cookie the 304 sets (unless the route stores cookies).
      const excluded = excludedFields(resCc);
      let kept = entry;
      if (excluded.length > 0 || (headers['set-cookie'] !== undefined && !host.config.storeSetCookie)) {
        const headersKept = { ...merged };
        for (const name of excluded) delete headersKept[name];
        if (!host.config.storeSetCookie) delete headersKept['set-cookie'];
        kept = { ...entry, headers: headersKept };
      }
      const ttl = retentionMs(freshness);
      void host.store.set(this.#entryKey, kept, ttl).then(() => this.#settle(true));
    }
    return entry;
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

const EMPTY = Buffer.alloc(0);

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

/**
 * The conditional headers that revalidate `entry` (RFC 9111 §4.3.1). A client's own If-None-Match list is
 * kept alongside the stored entity-tag (§4.3.2 allows the union), so a 304 can answer either.
 */
function validators(
  entry: CacheEntry,
  reqHeaders: Readonly<Record<string, HeaderValue>>,
): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  if (entry.etag !== undefined) {
    const own = joinHeader(reqHeaders['if-none-match']);
    out['if-none-match'] =
      own === undefined || own.trim() === '*' || matchesWeak(own, entry.etag) ? entry.etag : `${own}, ${entry.etag}`;
  }
  if (entry.lastModified !== undefined) out['if-modified-since'] = entry.lastModified;
  return entry.etag === undefined && entry.lastModified === undefined ? undefined : out;
}

/**
 * Whether a 304 identifies `entry` as the representation to update (RFC 9111 §4.3.4): same entity-tag (the
 * opaque part), else same Last-Modified. A 304 with no validator at all is taken to refresh the entry that
 * was asked about, as nginx and Varnish do.
 */
function identifies(headers: UpstreamHeaders, entry: CacheEntry): boolean {
  const etag = firstValue(headers.etag);
  const lastModified = firstValue(headers['last-modified']);
  if (etag === undefined && lastModified === undefined) return true;
  if (etag !== undefined && entry.etag !== undefined) return opaqueTag(etag) === opaqueTag(entry.etag);
  if (lastModified !== undefined && entry.lastModified !== undefined) return lastModified === entry.lastModified;
  return false;
}

function firstValue(value: UpstreamHeaders[string]): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'number') return String(value);
  return typeof value === 'string' ? value.trim() : value[0]?.trim();
}

function opaqueTag(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}

function contentLength(headers: UpstreamHeaders): number | undefined {
  const value = headers['content-length'];
  if (value === undefined) return undefined;
  const n = typeof value === 'number' ? value : Number(Array.isArray(value) ? value[0] : value);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
