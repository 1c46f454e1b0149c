/**
 * @module The running server: listeners that outlive config generations, and the atomic swap between them.
 *
 * Reload (Caddy's build → swap → retire): the new generation is built completely from a checked config; only
 * then do listeners switch to it. Requests already running finish on the generation they started with, whose
 * pools close gracefully once nothing uses them. A config with errors is reported and changes nothing.
 */
import { AdminServer, type AdminView } from '../admin/server.ts';
import type { Config, ListenerConfig } from '../config/schema.ts';
import { createAddressMatcher } from '../lib/cidr.ts';
import type { Logger } from '../observe/logger.ts';
import { attachMetrics, Metrics } from '../observe/metrics.ts';
import { Cache, createCacheStore } from '../proxy/cache/cache.ts';
import { HttpListener, type HttpListenerGeneration } from '../proxy/http-listener.ts';
import { compileEdgeRules } from '../proxy/redirect.ts';
import { createAccessCheck } from '../proxy/shield.ts';
import { UpstreamClients } from '../proxy/upstream-clients.ts';
import { createStore } from '../state/create-store.ts';
import type { Store } from '../state/types.ts';
import type { UpstreamPool } from '../upstream/pool.ts';
import { Registry } from '../upstream/registry.ts';
import { type BuiltProxy, buildProxy } from './build-proxy.ts';
import { L4Listeners } from './l4-listeners.ts';

interface Generation {
  readonly config: Config;
  readonly proxy: BuiltProxy;
}

export interface RuntimeOptions {
  /** Directory of the config file: relative certificate paths are read from it (default: the working directory). */
  readonly configDir?: string;
  /** Re-reads the config source and calls `reload` (the admin API's POST /reload; SIGHUP does the same). */
  readonly reloadFromSource?: () => Promise<void>;
  /** prom-client's process metrics (default true; tests that make many runtimes may turn them off). */
  readonly processMetrics?: boolean;
}

/** Listeners the HTTP data path serves (`tcp` / `tls` are L4's). */
function isHttpListener(lc: ListenerConfig): boolean {
  return lc.protocol === 'http' || lc.protocol === 'https';
}

export class Runtime {
  readonly #log: Logger;
  readonly #configDir: string | undefined;
  readonly #clients = new UpstreamClients();
  /** Target state (health, ejections, counters) that outlives generations. */
  readonly #registry = new Registry();
  readonly #http = new Map<string, HttpListener>();
  readonly #l4: L4Listeners;
  #current: Generation | undefined;
  /** Shared state for rate limits and quotas; kept across reloads while `state` is unchanged. */
  #store: { readonly key: string; readonly store: Store } | undefined;
  /** The response cache; its contents survive reloads while `cache` settings are unchanged. */
  #cache: { readonly key: string; readonly cache: Cache } | undefined;
  #stopping = false;
  // --- observability: metrics and the admin API (src/observe/, src/admin/) ---
  /** Counters of this process; every exchange logged through `log` is recorded here. */
  readonly metrics: Metrics;
  readonly #admin: AdminServer;

  constructor(log: Logger, options: RuntimeOptions = {}) {
    this.#log = log;
    this.#l4 = new L4Listeners(log);
    this.#configDir = options.configDir;
    const view = this.adminView(options.reloadFromSource);
    this.metrics = new Metrics(view, { processMetrics: options.processMetrics });
    attachMetrics(log, this.metrics);
    this.#admin = new AdminServer({ ...view, metrics: this.metrics }, log);
  }

  /** What metrics and the admin API read from the running server; every read sees the current state. */
  adminView(reload?: () => Promise<void>): Omit<AdminView, 'metrics'> {
    return {
      // createPool makes every pool; BuiltProxy types them as the narrower Pool.
      pools: () => this.#current?.proxy.pools as ReadonlyMap<string, UpstreamPool> | undefined,
      webSockets: () => this.openWebSockets(),
      l4Connections: () => this.#l4.connections(),
      config: () => this.#current?.config,
      cache: () => this.#cache?.cache,
      ready: () => this.#current !== undefined && !this.#stopping,
      draining: () => this.#stopping,
      reload,
    };
  }

  /** Where the admin API listens (`host:port`), when `admin` is configured. */
  adminAddress(): string | undefined {
    return this.#admin.address;
  }

  /** WebSockets open now, over all listeners. */
  openWebSockets(): number {
    let n = 0;
    for (const l of this.#http.values()) n += l.webSockets.open;
    return n;
  }

  get config(): Config | undefined {
    return this.#current?.config;
  }

  /** Bound ports by listener name (port 0 in config resolves here). */
  ports(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, l] of this.#http) out[name] = l.port;
    this.#l4.ports(out);
    return out;
  }

  /** Builds the first generation and opens every listener. Throws (with nothing left open) on failure. */
  async start(config: Config): Promise<void> {
    const gen = this.#build(config);
    try {
      for (const lc of config.listeners) {
        if (!isHttpListener(lc)) continue;
        const listener = this.#newListener(lc, gen);
        this.#http.set(lc.name, listener);
        await listener.listen();
      }
      await this.#l4.start(config, gen.proxy.pools);
      await this.#admin.apply(config.admin?.address);
    } catch (err) {
      await this.#l4.closeAll();
      for (const l of this.#http.values()) l.stopAccepting();
      this.#http.clear();
      gen.proxy.release();
      throw err;
    }
    this.metrics.configure(config);
    this.#current = gen;
  }

  /**
   * Swaps in `config`. Listeners whose address, protocol or parser limits changed are reopened; an https
   * listener whose certificates changed keeps its socket and gets them for new handshakes. New certificates
   * are all loaded before anything changes, so a reload with a bad one fails whole.
   */
  async reload(config: Config): Promise<void> {
    const previous = this.#current;
    const gen = this.#build(config);
    const wanted = new Map(config.listeners.filter(isHttpListener).map((l) => [l.name, l]));
    const reopen = new Set<string>();
    const commits: Array<() => void> = [];
    const created = new Map<string, HttpListener>();
    try {
      for (const lc of wanted.values()) {
        const existing = this.#http.get(lc.name);
        if (
          existing !== undefined &&
          !mustReopen(
            previous?.config.listeners.find((l) => l.name === lc.name),
            lc,
          )
        ) {
          commits.push(existing.prepareTls(lc));
        } else {
          if (existing !== undefined) reopen.add(lc.name);
          created.set(lc.name, this.#newListener(lc, gen));
        }
      }
    } catch (err) {
      for (const l of created.values()) l.certificates?.close();
      gen.proxy.release();
      throw err;
    }
    // Listeners that must be reopened or removed go first, so their addresses are free.
    for (const [name, listener] of this.#http) {
      if (!wanted.has(name) || reopen.has(name)) {
        listener.stopAccepting();
        this.#http.delete(name);
      }
    }
    for (const commit of commits) commit();
    for (const lc of wanted.values()) {
      const fresh = created.get(lc.name);
      if (fresh !== undefined) {
        this.#http.set(lc.name, fresh);
        await fresh.listen();
        continue;
      }
      const existing = this.#http.get(lc.name)!;
      applyTimeouts(existing, lc);
      existing.generation = this.#listenerGeneration(lc, gen);
    }
    await this.#l4.reload(config, gen.proxy.pools, config.proxy.drainTimeout);
    this.metrics.configure(config);
    this.#current = gen;
    await this.#admin.reapply(config.admin?.address);
    // In-flight requests hold their own references: undici pools close after their last request.
    previous?.proxy.release();
  }

  /** Graceful stop: refuse new connections, let in-flight requests finish up to the drain deadline. */
  async shutdown(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    const deadline = this.#current?.config.proxy.drainTimeout ?? 30_000;
    const closed = [...this.#http.values()].map(
      (l) =>
        new Promise<void>((resolve) => {
          l.closed().then(resolve);
          l.stopAccepting();
        }),
    );
    const timer = setTimeout(() => {
      for (const l of this.#http.values()) l.forceClose();
    }, deadline);
    timer.unref();
    await Promise.all([...closed, this.#l4.drainAll(deadline)]);
    clearTimeout(timer);
    this.#current?.proxy.release();
    await this.#clients.closeAll(1000);
    await this.#store?.store.close().catch(() => {});
    await this.#cache?.cache.close().catch(() => {});
    await this.#admin.close();
  }

  #build(config: Config): Generation {
    const store = this.#storeFor(config);
    const cache = this.#cacheFor(config);
    return { config, proxy: buildProxy(config, this.#clients, this.#registry, { store, cache, log: this.#log }) };
  }

  /** The cache for `config.cache`: the current one when unchanged, else a new one (the old closes later). */
  #cacheFor(config: Config): Cache {
    const key = JSON.stringify(config.cache);
    if (this.#cache?.key === key) return this.#cache.cache;
    const previous = this.#cache;
    const settings = config.cache;
    const store = createCacheStore(settings, (err) => this.#log.warn({ msg: 'cache store error', error: err.message }));
    this.#cache = {
      key,
      cache: new Cache({ store, statusHeader: settings.header, coalesceTimeout: settings.coalesceTimeout }),
    };
    if (previous !== undefined) setTimeout(() => previous.cache.close().catch(() => {}), 5000).unref();
    return this.#cache.cache;
  }

  /** The store for `config.state`: the current one when unchanged, else a new one (the old closes). */
  #storeFor(config: Config): Store {
    const key = JSON.stringify(config.state);
    if (this.#store?.key === key) return this.#store.store;
    const previous = this.#store;
    this.#store = { key, store: createStore(config.state, { log: this.#log }) };
    // Requests still running on the old generation may touch the old store for a moment: close it later.
    if (previous !== undefined) setTimeout(() => previous.store.close().catch(() => {}), 5000).unref();
    return this.#store.store;
  }

  #newListener(lc: ListenerConfig, gen: Generation): HttpListener {
    return new HttpListener(lc, this.#listenerGeneration(lc, gen), { logger: this.#log, baseDir: this.#configDir });
  }

  #listenerGeneration(lc: ListenerConfig, gen: Generation): HttpListenerGeneration {
    return {
      runtime: gen.proxy.runtime,
      isTrusted: createAddressMatcher(lc.trustedProxies),
      access: createAccessCheck(lc.allow, lc.deny),
      proto: lc.protocol === 'https' ? 'https' : 'http',
      logger: this.#log,
      draining: this.#stopping,
      edge: compileEdgeRules(lc, gen.config.routes, (name) => this.#http.get(name)?.port),
    };
  }
}

function mustReopen(before: ListenerConfig | undefined, after: ListenerConfig): boolean {
  if (before === undefined) return true;
  return (
    before.address !== after.address ||
    before.protocol !== after.protocol ||
    before.limits.maxHeaderSize !== after.limits.maxHeaderSize ||
    before.h2c !== after.h2c ||
    (after.protocol === 'https' && before.http2 !== after.http2)
  );
}

function applyTimeouts(listener: HttpListener, lc: ListenerConfig): void {
  const s = listener.server;
  s.headersTimeout = lc.limits.headersTimeout;
  s.requestTimeout = lc.limits.requestTimeout;
  s.keepAliveTimeout = lc.limits.idleTimeout;
  listener.maxRequestsPerConnection = lc.limits.maxRequestsPerConnection;
  listener.perClient.max = lc.limits.maxConnectionsPerClient;
}
