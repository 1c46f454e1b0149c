/**
 * @module The runtime's `tcp` and `tls` listeners (the L4 load balancer). Like HTTP listeners, they keep
 * their sockets across reloads: a reload hands them the new generation's pools; one whose address or
 * protocol changed is drained and reopened.
 */
import type { Config, ListenerConfig } from '../config/schema.ts';
import { type L4Deps, l4Settings, startL4Listener } from '../l4/from-config.ts';
import type { L4Listener, TcpSettings, TlsSettings } from '../l4/types.ts';
import type { Logger } from '../observe/logger.ts';
import type { Pool } from '../upstream/types.ts';

type AnyL4Listener = L4Listener<TcpSettings> | L4Listener<TlsSettings>;

export function isL4Listener(lc: ListenerConfig): boolean {
  return lc.protocol === 'tcp' || lc.protocol === 'tls';
}

export class L4Listeners {
  readonly #log: Logger;
  readonly #open = new Map<string, { config: ListenerConfig; listener: AnyL4Listener }>();

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Client connections open now over every tcp/tls listener (metrics). */
  connections(): number {
    let n = 0;
    for (const { listener } of this.#open.values()) n += listener.connections;
    return n;
  }

  ports(out: Record<string, number>): void {
    for (const [name, { listener }] of this.#open) out[name] = listener.address.port;
  }

  /** Opens every tcp/tls listener of `config`; on failure closes what it opened and throws. */
  async start(config: Config, pools: ReadonlyMap<string, Pool>): Promise<void> {
    const deps = this.#deps(config, pools);
    try {
      for (const lc of config.listeners.filter(isL4Listener)) {
        this.#open.set(lc.name, { config: lc, listener: await startL4Listener(lc, deps) });
      }
    } catch (err) {
      await this.closeAll();
      throw err;
    }
  }

  /** Moves the listeners to `config`: same address → new settings in place; otherwise drain and reopen. */
  async reload(config: Config, pools: ReadonlyMap<string, Pool>, drainMs: number): Promise<void> {
    const deps = this.#deps(config, pools);
    const wanted = new Map(config.listeners.filter(isL4Listener).map((l) => [l.name, l]));
    // Compute every new settings object first, so a bad one fails the reload before anything changes.
    const updates = new Map<string, TcpSettings | TlsSettings>();
    for (const [name, lc] of wanted) {
      const open = this.#open.get(name);
      if (open !== undefined && sameSocket(open.config, lc)) updates.set(name, l4Settings(lc, deps));
    }
    for (const [name, open] of this.#open) {
      if (!updates.has(name)) {
        this.#open.delete(name);
        open.listener.drain(drainMs).catch(() => {});
        await open.listener.close().catch(() => {});
      }
    }
    for (const [name, lc] of wanted) {
      const settings = updates.get(name);
      const open = this.#open.get(name);
      if (settings !== undefined && open !== undefined) {
        (open.listener as L4Listener<TcpSettings | TlsSettings>).update(settings);
        this.#open.set(name, { config: lc, listener: open.listener });
      } else {
        this.#open.set(name, { config: lc, listener: await startL4Listener(lc, deps) });
      }
    }
  }

  /** Shutdown: stop accepting and let connections finish until `deadlineMs`. */
  async drainAll(deadlineMs: number): Promise<void> {
    const all = [...this.#open.values()];
    this.#open.clear();
    await Promise.allSettled(all.map((o) => o.listener.drain(deadlineMs)));
  }

  async closeAll(): Promise<void> {
    const all = [...this.#open.values()];
    this.#open.clear();
    await Promise.allSettled(all.map((o) => o.listener.close()));
  }

  #deps(config: Config, pools: ReadonlyMap<string, Pool>): L4Deps {
    const connectTimeouts = new Map(config.upstreams.map((u) => [u.name, u.timeouts.connect]));
    return {
      pool: (name) => pools.get(name),
      upstreamConnectTimeoutMs: (name) => connectTimeouts.get(name) ?? 5000,
      log: this.#log,
    };
  }
}

function sameSocket(a: ListenerConfig, b: ListenerConfig): boolean {
  return a.address === b.address && a.protocol === b.protocol;
}
