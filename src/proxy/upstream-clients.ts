/**
 * @module Upstream connection pools, one per (target, connection settings), shared across config generations.
 *
 * HTTP/1.1 targets get Portico's own client (http1/pool.ts); targets that may speak HTTP/2 (`http2: true`) get
 * undici's Pool, which negotiates it by ALPN. Both take the same `dispatch(options, handler)` call.
 *
 * A reload that keeps a target with the same settings keeps its warm keep-alive connections. Pools are
 * reference-counted by generation; when the last generation using one retires, it is closed gracefully
 * (undici lets in-flight requests finish first).
 */
import type { Dispatcher } from 'undici';
import { Pool } from '../lib/undici-pool.ts';
import { Http1Pool } from './http1/pool.ts';
import type { UpstreamTls } from './tls/upstream-tls.ts';
import { acceptUnsolicitedContinue } from './undici-continue.ts';
import { resetUnfinishedRequestsOnAbort } from './undici-h2-abort.ts';

export interface ClientSettings {
  readonly connectTimeout: number;
  readonly responseTimeout: number;
  readonly idleTimeout: number;
  readonly keepAlive: number;
  readonly connections: number;
  /** `https://` targets: CA, server name, client certificate (resolved by tls/upstream-tls.ts). */
  readonly tls?: UpstreamTls | undefined;
  /** Offer h2 by ALPN to `https://` targets. */
  readonly http2?: boolean;
}

/** What the data path needs of a pool: dispatch with undici's handler contract, and a graceful close. */
export interface UpstreamDispatcher {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

interface Entry {
  readonly pool: UpstreamDispatcher;
  refs: number;
}

export class UpstreamClients {
  readonly #entries = new Map<string, Entry>();

  /** Takes a reference on the pool for `origin` with `settings`, creating it when needed. */
  acquire(origin: string, settings: ClientSettings): UpstreamDispatcher {
    const tls = settings.tls;
    const key = `${origin}|${settings.connectTimeout}|${settings.responseTimeout}|${settings.idleTimeout}|${settings.keepAlive}|${settings.connections}|${tls?.id ?? ''}|${settings.http2 === true}`;
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      const pool = settings.http2 === true ? undiciPool(origin, settings) : http1Pool(origin, settings);
      entry = { pool, refs: 0 };
      this.#entries.set(key, entry);
      (pool as unknown as { portico_key: string }).portico_key = key;
    }
    entry.refs++;
    return entry.pool;
  }

  /** Drops one reference; the last one closes the pool after its in-flight requests. */
  release(pool: UpstreamDispatcher): void {
    const key = (pool as unknown as { portico_key: string }).portico_key;
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    if (--entry.refs > 0) return;
    this.#entries.delete(key);
    pool.close().catch(() => {});
  }

  /** Shutdown: close everything, waiting at most `deadlineMs` before destroying. */
  async closeAll(deadlineMs: number): Promise<void> {
    const pools = [...this.#entries.values()].map((e) => e.pool);
    this.#entries.clear();
    const timer = setTimeout(() => {
      for (const p of pools) p.destroy().catch(() => {});
    }, deadlineMs);
    timer.unref();
    await Promise.allSettled(pools.map((p) => p.close()));
    clearTimeout(timer);
  }
}

function http1Pool(origin: string, settings: ClientSettings): UpstreamDispatcher {
  return new Http1Pool(origin, {
    connectTimeout: settings.connectTimeout,
    responseTimeout: settings.responseTimeout,
    idleTimeout: settings.idleTimeout,
    keepAliveTimeout: settings.keepAlive,
    connections: settings.connections,
    tls: settings.tls,
  }) as unknown as UpstreamDispatcher;
}

/** undici's Pool for `http2: true`: h2 by ALPN, HTTP/1.1 when the target offers only that. */
function undiciPool(origin: string, settings: ClientSettings): UpstreamDispatcher {
  acceptUnsolicitedContinue();
  resetUnfinishedRequestsOnAbort();
  const tls = settings.tls;
  return new Pool(origin, {
    connections: settings.connections,
    pipelining: 1,
    connect:
      tls === undefined
        ? { timeout: settings.connectTimeout }
        : {
            timeout: settings.connectTimeout,
            ca: tls.ca,
            servername: tls.servername,
            cert: tls.cert,
            key: tls.key,
            rejectUnauthorized: tls.rejectUnauthorized,
          },
    allowH2: true,
    // 0 disables a timeout in undici; the config's 0 means the same.
    headersTimeout: settings.responseTimeout,
    bodyTimeout: settings.idleTimeout,
    keepAliveTimeout: settings.keepAlive,
    keepAliveMaxTimeout: Math.max(settings.keepAlive, 1000),
    strictContentLength: true,
  });
}
