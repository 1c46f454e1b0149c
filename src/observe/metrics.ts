/**
 * @module Prometheus metrics of one Portico process: a prom-client Registry of its own (never the global
 * default, so tests can make several), the metrics declared in ./metric-list.ts, and process metrics.
 *
 * The data path records one thing per exchange: `exchangeDone`, called by the access log when the exchange
 * ends. It bumps plain numbers in per-route and per-upstream arrays (no label objects, no hashing, no
 * allocation on the usual path); samples are assembled only when /metrics is scraped. Gauges (targets by
 * state, WebSockets, L4 connections) are read from the runtime at scrape time.
 */
import type { ServerResponse } from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Config } from '../config/schema.ts';
import type { UpstreamPool } from '../upstream/pool.ts';
import type { Logger } from './logger.ts';
import {
  ATTEMPT_OUTCOMES,
  CACHE_METRICS,
  CACHE_RESULTS,
  CONFIG_METRICS,
  CONNECTION_METRICS,
  DURATION_BUCKETS,
  HTTP_METRICS,
  RELOAD_RESULTS,
  type ReloadResult,
  TARGET_STATES,
  UPSTREAM_METRICS,
} from './metric-list.ts';
import { histogramSamples, type Sample, ScrapeMetric } from './scrape-metric.ts';

/** What the metrics read from the running server at scrape time. */
export interface MetricSources {
  /** The current generation's pools by upstream name (undefined before the first one is built). */
  pools(): ReadonlyMap<string, UpstreamPool> | undefined;
  /** WebSocket tunnels open now. */
  webSockets(): number;
  /** Client connections open now on tcp/tls listeners. */
  l4Connections(): number;
}

/** The fields of an ended exchange the metrics read (src/proxy/access-log.ts's ExchangeLog has them). */
export interface ExchangeRecord {
  readonly route: string | undefined;
  readonly status: number;
  readonly code: string | undefined;
  readonly details: string;
  readonly target: string | undefined;
  readonly retries: number;
  readonly startedAt: number;
  readonly clientAborted: boolean;
}

const BOUNDS_MS = DURATION_BUCKETS.map((s) => s * 1000);
const MAX_STATUS = 600;
const O_RESPONSE = ATTEMPT_OUTCOMES.indexOf('response');
const O_5XX = ATTEMPT_OUTCOMES.indexOf('response_5xx');
const O_CONNECT = ATTEMPT_OUTCOMES.indexOf('connect_failure');
const O_TIMEOUT = ATTEMPT_OUTCOMES.indexOf('timeout');
const O_RESET = ATTEMPT_OUTCOMES.indexOf('reset');
const O_CANCELLED = ATTEMPT_OUTCOMES.indexOf('cancelled');
const O_RETRIED = ATTEMPT_OUTCOMES.indexOf('retried');
const C_HIT = CACHE_RESULTS.indexOf('HIT');
const C_MISS = CACHE_RESULTS.indexOf('MISS');
const C_STALE = CACHE_RESULTS.indexOf('STALE');
const C_BYPASS = CACHE_RESULTS.indexOf('BYPASS');
const C_REVALIDATED = CACHE_RESULTS.indexOf('REVALIDATED');

class UpstreamStats {
  readonly outcomes = new Float64Array(ATTEMPT_OUTCOMES.length);
  retries = 0;
}

class RouteStats {
  upstream: UpstreamStats | undefined = undefined;
  /** `\r\n<cache status header>: `, set on routes that cache. */
  cacheNeedle: string | undefined = undefined;
  cacheHeader = '';
  /** Exchanges answered without a local reply, indexed by status. */
  readonly statuses = new Float64Array(MAX_STATUS);
  /** Local replies, keyed `codeIndex * 1000 + status`. */
  readonly replies = new Map<number, number>();
  /** Non-cumulative duration bucket counts; the last slot is +Inf. */
  readonly buckets = new Float64Array(BOUNDS_MS.length + 1);
  sumMs = 0;
  readonly cache = new Float64Array(CACHE_RESULTS.length);
}

export interface MetricsOptions {
  /** prom-client's process and Node.js metrics (default true). */
  readonly processMetrics?: boolean;
}

export class Metrics {
  readonly registry = new Registry();
  readonly #sources: MetricSources;
  readonly #routes = new Map<string, RouteStats>();
  readonly #upstreams = new Map<string, UpstreamStats>();
  readonly #codes = new Map<string, number>();
  readonly #codeNames: string[] = [];
  readonly #reloads = new Float64Array(RELOAD_RESULTS.length);

  constructor(sources: MetricSources, options: MetricsOptions = {}) {
    this.#sources = sources;
    const metrics = [
      new ScrapeMetric(HTTP_METRICS.requests, () => this.#requestSamples()),
      new ScrapeMetric(HTTP_METRICS.duration, () => this.#durationSamples()),
      new ScrapeMetric(HTTP_METRICS.localReplies, () => this.#localReplySamples()),
      new ScrapeMetric(UPSTREAM_METRICS.attempts, () => this.#attemptSamples()),
      new ScrapeMetric(UPSTREAM_METRICS.retries, () =>
        [...this.#upstreams].map(([upstream, u]) => ({ labels: { upstream }, value: u.retries })),
      ),
      new ScrapeMetric(UPSTREAM_METRICS.targets, () => this.#targetSamples()),
      new ScrapeMetric(UPSTREAM_METRICS.active, () => this.#poolSamples((p) => p.load.active)),
      new ScrapeMetric(UPSTREAM_METRICS.overloaded, () => this.#poolSamples((p) => p.load.overloaded)),
      new ScrapeMetric(CONNECTION_METRICS.webSockets, () => [{ labels: {}, value: this.#sources.webSockets() }]),
      new ScrapeMetric(CONNECTION_METRICS.l4, () => [{ labels: {}, value: this.#sources.l4Connections() }]),
      new ScrapeMetric(CACHE_METRICS.requests, () => this.#cacheSamples()),
      new ScrapeMetric(CONFIG_METRICS.reloads, () =>
        RELOAD_RESULTS.map((result, i) => ({ labels: { result }, value: this.#reloads[i]! })),
      ),
    ];
    for (const m of metrics) m.register(this.registry);
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Learns a config generation's routes: which upstream each one uses and whether it caches. Counters of
   * routes and upstreams survive reloads (they only grow).
   */
  configure(config: Config): void {
    const header = config.cache.header.toLowerCase();
    for (const rc of config.routes) {
      const r = this.#route(rc.name);
      r.upstream = rc.upstream === undefined ? undefined : this.#upstream(rc.upstream);
      r.cacheNeedle = rc.cache === undefined ? undefined : `\r\n${header}: `;
      r.cacheHeader = header;
    }
  }

  /** Counts one reload attempt. */
  reloaded(result: ReloadResult): void {
    this.#reloads[RELOAD_RESULTS.indexOf(result)]!++;
  }

  /** Records one ended exchange (the per-request hook; `now` is `performance.now()`). */
  exchangeDone(ex: ExchangeRecord, res: ServerResponse, now: number): void {
    const r = this.#count(ex, ex.status || res.statusCode, now);
    if (r.cacheNeedle !== undefined) {
      const c = cacheResult(res, r.cacheNeedle, r.cacheHeader);
      if (c >= 0) r.cache[c]!++;
    }
  }

  /**
   * Records a WebSocket upgrade refused with a local reply written straight to the socket (there is no
   * ServerResponse): counted like every other local reply, by route, code and status.
   */
  upgradeRefused(ex: ExchangeRecord, now: number): void {
    this.#count(ex, ex.status, now);
  }

  #count(ex: ExchangeRecord, status: number, now: number): RouteStats {
    const name = ex.route ?? '';
    let r = this.#routes.get(name);
    if (r === undefined) r = this.#route(name);
    const code = ex.code;
    if (code === undefined) {
      r.statuses[status < MAX_STATUS ? status : 0]!++;
    } else {
      let ci = this.#codes.get(code);
      if (ci === undefined) ci = this.#codeIndex(code);
      const key = ci * 1000 + status;
      r.replies.set(key, (r.replies.get(key) ?? 0) + 1);
    }
    const ms = now - ex.startedAt;
    let b = 0;
    while (b < BOUNDS_MS.length && ms > BOUNDS_MS[b]!) b++;
    r.buckets[b]!++;
    r.sumMs += ms;
    const up = r.upstream;
    if (up !== undefined && ex.target !== undefined) {
      up.outcomes[outcomeOf(ex, status)]!++;
      if (ex.retries !== 0) {
        up.outcomes[O_RETRIED]! += ex.retries;
        up.retries += ex.retries;
      }
    }
    return r;
  }

  #route(name: string): RouteStats {
    let r = this.#routes.get(name);
    if (r === undefined) {
      r = new RouteStats();
      this.#routes.set(name, r);
    }
    return r;
  }

  #upstream(name: string): UpstreamStats {
    let u = this.#upstreams.get(name);
    if (u === undefined) {
      u = new UpstreamStats();
      this.#upstreams.set(name, u);
    }
    return u;
  }

  #codeIndex(code: string): number {
    const i = this.#codeNames.length;
    this.#codeNames.push(code);
    this.#codes.set(code, i);
    return i;
  }

  // --- scrape time ---

  #requestSamples(): Sample[] {
    const out: Sample[] = [];
    for (const [route, r] of this.#routes) {
      for (let s = 0; s < MAX_STATUS; s++) {
        const n = r.statuses[s]!;
        if (n !== 0) out.push({ labels: { route, status: s }, value: n });
      }
      for (const [key, n] of r.replies) {
        out.push({ labels: { route, status: key % 1000, code: this.#codeNames[Math.floor(key / 1000)]! }, value: n });
      }
    }
    return out;
  }

  #durationSamples(): Sample[] {
    const out: Sample[] = [];
    for (const [route, r] of this.#routes) {
      histogramSamples(HTTP_METRICS.duration.name, { route }, DURATION_BUCKETS, r.buckets, r.sumMs / 1000, out);
    }
    return out;
  }

  #localReplySamples(): Sample[] {
    const byCode = new Map<string, number>();
    for (const r of this.#routes.values()) {
      for (const [key, n] of r.replies) {
        const code = this.#codeNames[Math.floor(key / 1000)]!;
        byCode.set(code, (byCode.get(code) ?? 0) + n);
      }
    }
    return [...byCode].map(([code, value]) => ({ labels: { code }, value }));
  }

  #attemptSamples(): Sample[] {
    const out: Sample[] = [];
    for (const [upstream, u] of this.#upstreams) {
      for (let i = 0; i < ATTEMPT_OUTCOMES.length; i++) {
        const n = u.outcomes[i]!;
        if (n !== 0) out.push({ labels: { upstream, outcome: ATTEMPT_OUTCOMES[i]! }, value: n });
      }
    }
    return out;
  }

  #cacheSamples(): Sample[] {
    const out: Sample[] = [];
    for (const [route, r] of this.#routes) {
      if (r.cacheNeedle === undefined && r.cache.every((n) => n === 0)) continue;
      for (let i = 0; i < CACHE_RESULTS.length; i++) {
        out.push({ labels: { route, result: CACHE_RESULTS[i]! }, value: r.cache[i]! });
      }
    }
    return out;
  }

  #targetSamples(): Sample[] {
    const out: Sample[] = [];
    for (const [upstream, pool] of this.#sources.pools() ?? []) {
      const counts = [0, 0, 0, 0];
      for (const t of pool.targets) counts[TARGET_STATES.indexOf(targetState(t))]!++;
      for (let i = 0; i < TARGET_STATES.length; i++) {
        out.push({ labels: { upstream, state: TARGET_STATES[i]! }, value: counts[i]! });
      }
    }
    return out;
  }

  #poolSamples(read: (pool: UpstreamPool) => number): Sample[] {
    const out: Sample[] = [];
    for (const [upstream, pool] of this.#sources.pools() ?? []) out.push({ labels: { upstream }, value: read(pool) });
    return out;
  }
}

/** A target's state as the admin API and the targets gauge show it. */
export function targetState(t: UpstreamPool['targets'][number]): (typeof TARGET_STATES)[number] {
  if (t.draining) return 'draining';
  if (!t.healthy) return 'unhealthy';
  if (t.isEjected()) return 'ejected';
  return 'healthy';
}

/** How the exchange's last try ended, from what the forwarder recorded. */
function outcomeOf(ex: ExchangeRecord, status: number): number {
  if (ex.clientAborted) return O_CANCELLED;
  switch (ex.code) {
    case undefined:
      // A body cut mid-way, or a stale entry served because the upstream failed.
      if (ex.details !== '' && (ex.details.startsWith('aborted_after') || ex.details.startsWith('stale_if_error')))
        return O_RESET;
      return status >= 500 ? O_5XX : O_RESPONSE;
    case 'GW_UPSTREAM_CONNECT_FAILED':
      return O_CONNECT;
    case 'GW_UPSTREAM_CONNECT_TIMEOUT':
    case 'GW_UPSTREAM_TIMEOUT':
      return O_TIMEOUT;
    case 'GW_UPSTREAM_RESET':
    case 'GW_UPSTREAM_BAD_RESPONSE':
      return O_RESET;
    default:
      // A local reply after the upstream answered (response-phase policy, body over a limit).
      return O_RESPONSE;
  }
}

/**
 * The cache result the response carried in its status header, or -1 when it has none (the exchange ended
 * before the cache step). HTTP/1 responses written with writeHead(obj) keep their header only in the
 * serialised head, so that is searched; HTTP/2 compat responses answer getHeader.
 */
function cacheResult(res: ServerResponse, needle: string, header: string): number {
  const head = (res as unknown as { _header?: unknown })._header;
  let c: number;
  if (typeof head === 'string') {
    const at = head.indexOf(needle);
    if (at < 0) return -1;
    c = head.charCodeAt(at + needle.length);
  } else {
    const v = res.getHeader(header);
    if (v === undefined) return -1;
    c = String(v).charCodeAt(0);
  }
  switch (c) {
    case 72: // H
      return C_HIT;
    case 77: // M
      return C_MISS;
    case 83: // S
      return C_STALE;
    case 66: // B
      return C_BYPASS;
    case 82: // R
      return C_REVALIDATED;
    default:
      return -1;
  }
}

const ATTACHED = new WeakMap<Logger, Metrics>();

/** Makes `metrics` record every exchange whose access log goes to `logger` (one Metrics per logger). */
export function attachMetrics(logger: Logger, metrics: Metrics): void {
  ATTACHED.set(logger, metrics);
}

/** The metrics attached to `logger`, if any (read by the access log once per exchange). */
export function metricsOf(logger: Logger): Metrics | undefined {
  return ATTACHED.get(logger);
}
