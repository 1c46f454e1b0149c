/**
 * @module The running server: listeners that outlive config generations, and the atomic swap between them.
 *
 * Reload (Caddy's build → swap → retire): the new generation is built completely from a checked config; only
 * then do listeners switch to it. Requests already running finish on the generation they started with, whose
 * pools close gracefully once nothing uses them. A config with errors is reported and changes nothing.
 */
import type { Config, ListenerConfig } from '../config/schema.ts';
import { createAddressMatcher } from '../lib/cidr.ts';
import type { Logger } from '../observe/logger.ts';
import { HttpListener } from '../proxy/http-listener.ts';
import type { ListenerGeneration } from '../proxy/listener-generation.ts';
import { UpstreamClients } from '../proxy/upstream-clients.ts';
import { createStore } from '../state/create-store.ts';
import type { Store } from '../state/types.ts';
import { Registry } from '../upstream/registry.ts';
import { type BuiltProxy, buildProxy } from './build-proxy.ts';

interface Generation {
  readonly config: Config;
  readonly proxy: BuiltProxy;
}

export class Runtime {
  readonly #log: Logger;
  readonly #clients = new UpstreamClients();
  /** Target state (health, ejections, counters) that outlives generations. */
  readonly #registry = new Registry();
  readonly #http = new Map<string, HttpListener>();
  #current: Generation | undefined;
  /** Shared state for rate limits and quotas; kept across reloads while `state` is unchanged. */
  #store: { readonly key: string; readonly store: Store } | undefined;
  #stopping = false;

  constructor(log: Logger) {
    this.#log = log;
  }

  get config(): Config | undefined {
    return this.#current?.config;
  }

  /** Bound ports by listener name (port 0 in config resolves here). */
  ports(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, l] of this.#http) out[name] = l.port;
    return out;
  }

  /** Builds the first generation and opens every listener. Throws (with nothing left open) on failure. */
  async start(config: Config): Promise<void> {
    const gen = this.#build(config);
    try {
      for (const lc of config.listeners) {
        if (lc.protocol !== 'http') continue;
        const listener = new HttpListener(lc, this.#listenerGeneration(lc, gen));
        await listener.listen();
        this.#http.set(lc.name, listener);
      }
    } catch (err) {
      for (const l of this.#http.values()) l.server.close();
      this.#http.clear();
      gen.proxy.release();
      throw err;
    }
    this.#current = gen;
  }

  /** Swaps in `config`. Listeners whose address or parser limits changed are reopened. */
  async reload(config: Config): Promise<void> {
    const previous = this.#current;
    const gen = this.#build(config);
    const wanted = new Map(config.listeners.filter((l) => l.protocol === 'http').map((l) => [l.name, l]));
    // Listeners that must be reopened or removed go first, so their addresses are free.
    for (const [name, listener] of this.#http) {
      const next = wanted.get(name);
      if (
        next === undefined ||
        mustReopen(
          previous?.config.listeners.find((l) => l.name === name),
          next,
        )
      ) {
        listener.stopAccepting();
        this.#http.delete(name);
      }
    }
    for (const lc of wanted.values()) {
      const existing = this.#http.get(lc.name);
      const lg = this.#listenerGeneration(lc, gen);
      if (existing !== undefined) {
        applyTimeouts(existing, lc);
        existing.generation = lg;
      } else {
        const listener = new HttpListener(lc, lg);
        await listener.listen();
        this.#http.set(lc.name, listener);
      }
    }
    this.#current = gen;
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
          l.server.once('close', () => resolve());
          l.stopAccepting();
        }),
    );
    const timer = setTimeout(() => {
      for (const l of this.#http.values()) l.forceClose();
    }, deadline);
    timer.unref();
    await Promise.all(closed);
    clearTimeout(timer);
    this.#current?.proxy.release();
    await this.#clients.closeAll(1000);
    await this.#store?.store.close().catch(() => {});
  }

  #build(config: Config): Generation {
    const store = this.#storeFor(config);
    return { config, proxy: buildProxy(config, this.#clients, this.#registry, { store, log: this.#log }) };
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

  #listenerGeneration(lc: ListenerConfig, gen: Generation): ListenerGeneration {
    return {
      runtime: gen.proxy.runtime,
      isTrusted: createAddressMatcher(lc.trustedProxies),
      proto: lc.protocol === 'https' ? 'https' : 'http',
      logger: this.#log,
      draining: this.#stopping,
    };
  }
}

function mustReopen(before: ListenerConfig | undefined, after: ListenerConfig): boolean {
  if (before === undefined) return true;
  return (
    before.address !== after.address ||
    before.protocol !== after.protocol ||
    before.limits.maxHeaderSize !== after.limits.maxHeaderSize
  );
}

function applyTimeouts(listener: HttpListener, lc: ListenerConfig): void {
  const s = listener.server;
  s.headersTimeout = lc.limits.headersTimeout;
  s.requestTimeout = lc.limits.requestTimeout;
  s.keepAliveTimeout = lc.limits.idleTimeout;
  s.maxRequestsPerSocket = lc.limits.maxRequestsPerConnection;
}
