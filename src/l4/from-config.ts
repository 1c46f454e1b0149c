/**
 * @module The runtime's entry to L4: turns a parsed `tcp`/`tls` listener config into listener settings,
 * and starts a listener. On reload the runtime calls `l4Settings` again and `listener.update(...)`.
 *
 * ```ts
 * const l = await startL4Listener(cfg, { pool: (n) => generation.pools.get(n), upstreamConnectTimeout, log });
 * l.update(l4Settings(nextCfg, nextDeps));   // reload; the port stays bound
 * ```
 */
import type { Pool } from '../upstream/types.ts';
import type { L4ListenerConfig } from './schema.ts';
import { startTcpListener } from './tcp-listener.ts';
import { startTlsListener } from './tls-listener.ts';
import type { L4Listener, L4Log, ListenOptions, TcpSettings, TlsSettings } from './types.ts';

export interface L4Deps {
  /** The generation's pool by upstream name (references were checked at load, so it exists). */
  readonly pool: (upstream: string) => Pool | undefined;
  /** Connect timeout of the upstream, used when the listener sets none. */
  readonly upstreamConnectTimeoutMs: (upstream: string) => number;
  readonly log: L4Log;
}

const DEFAULT_IDLE_MS = 3_600_000;

function poolRef(deps: L4Deps, upstream: string): () => Pool {
  const pool = deps.pool(upstream);
  if (pool === undefined) throw new Error(`unknown upstream "${upstream}"`);
  return () => pool;
}

/** `host:port`, `[v6]:port` or `:port` → host and port (empty host = all interfaces). */
export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  return { host: host === '' ? '::' : host, port: Number(address.slice(i + 1)) };
}

/** Settings for a `tcp` listener or a `tls` listener, from its config. Throws on an unknown upstream. */
export function l4Settings(cfg: L4ListenerConfig, deps: L4Deps): TcpSettings | TlsSettings {
  const first = cfg.upstream ?? cfg.sni?.[0]?.upstream ?? '';
  const common = {
    connectTimeoutMs: cfg.timeouts?.connect ?? deps.upstreamConnectTimeoutMs(first),
    idleTimeoutMs: cfg.timeouts?.idle ?? DEFAULT_IDLE_MS,
    handshakeTimeoutMs: cfg.timeouts?.handshake,
    maxConnections: cfg.limits.maxConnections ?? 0,
    proxyProtocol: cfg.proxyProtocol,
    log: deps.log,
  };
  if (cfg.protocol === 'tcp') return { ...common, pool: poolRef(deps, cfg.upstream!) };
  return {
    ...common,
    mode: cfg.tls?.mode ?? 'passthrough',
    sni: (cfg.sni ?? []).map((r) => ({ names: r.names, pool: poolRef(deps, r.upstream) })),
    defaultPool: cfg.upstream === undefined ? undefined : poolRef(deps, cfg.upstream),
    certificates: cfg.tls?.certificates,
  };
}

/** Starts the listener a `tcp` or `tls` config describes. */
export function startL4Listener(
  cfg: L4ListenerConfig,
  deps: L4Deps,
  extra: { reusePort?: boolean } = {},
): Promise<L4Listener<TcpSettings> | L4Listener<TlsSettings>> {
  const listen: ListenOptions = { name: cfg.name, ...splitAddress(cfg.address), reusePort: extra.reusePort };
  const settings = l4Settings(cfg, deps);
  if (cfg.protocol === 'tcp') return startTcpListener({ ...listen, ...(settings as TcpSettings) });
  if (cfg.protocol === 'tls') return startTlsListener({ ...listen, ...(settings as TlsSettings) });
  throw new Error(`listener ${cfg.name} is not an L4 listener (protocol ${cfg.protocol})`);
}
