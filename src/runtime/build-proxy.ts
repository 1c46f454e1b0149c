/**
 * @module Builds one generation's HTTP data path from a checked config: pools, dispatchers, router and
 * compiled routes. Everything per-request code needs is computed here, once.
 */
import type { Config, RouteConfig, UpstreamConfig } from '../config/schema.ts';
import { createChain } from '../gateway/chain.ts';
import { createConsumerDirectory } from '../gateway/consumers.ts';
import { createIdentity, type IdentityOptions } from '../gateway/identity.ts';
import { buildPolicies, closePolicies, routePolicies } from '../gateway/registry.ts';
import type { Policy } from '../gateway/types.ts';
import type { Logger } from '../observe/logger.ts';
import type { Cache } from '../proxy/cache/cache.ts';
import { compileCompressOptions } from '../proxy/compress/options.ts';
import type { RouteGateway } from '../proxy/gateway-step.ts';
import { compileHeaderRules } from '../proxy/header-rules.ts';
import { compileRewrite } from '../proxy/rewrite.ts';
import { compileRouteAction } from '../proxy/route-action.ts';
import { createRouter } from '../proxy/router.ts';
import { createAccessCheck } from '../proxy/shield.ts';
import { resolveUpstreamTls } from '../proxy/tls/upstream-tls.ts';
import type { CompiledRoute, ProxyRuntime, ProxySettingsRuntime, UpstreamRuntime } from '../proxy/types.ts';
import type { ClientSettings, UpstreamClients, UpstreamDispatcher } from '../proxy/upstream-clients.ts';
import type { Store } from '../state/types.ts';
import { createPool } from '../upstream/pool.ts';
import type { Registry } from '../upstream/registry.ts';
import type { Pool, Target } from '../upstream/types.ts';

export interface BuiltProxy {
  readonly runtime: ProxyRuntime;
  readonly pools: ReadonlyMap<string, Pool>;
  /** Releases this generation's dispatchers and pools (after a newer generation took over). */
  release(): void;
}

export function buildProxySettings(config: Config): ProxySettingsRuntime {
  const p = config.proxy;
  return {
    via: p.via !== 'off',
    viaOnResponses: p.via === 'both',
    viaValue: '1.1 portico',
    serverHeader: p.serverHeader,
    requestIdHeader: p.requestIdHeader.toLowerCase(),
    drainTimeout: p.drainTimeout,
    replyHeaders: p.serverHeader === '' ? undefined : { server: p.serverHeader },
  };
}

export interface GatewayDeps {
  readonly store: Store;
  /** The response cache (its store outlives generations); routes opt in with `cache:`. */
  readonly cache: Cache;
  readonly log: Logger;
}

export function buildProxy(config: Config, clients: UpstreamClients, registry: Registry, gw: GatewayDeps): BuiltProxy {
  const pools = new Map<string, Pool>();
  const upstreams = new Map<string, UpstreamRuntime & { releaseAll(): void }>();
  for (const u of config.upstreams) {
    const pool = createPool(u, { registry });
    pools.set(u.name, pool);
    // Upstreams of `address` targets serve L4 listeners only: no HTTP dispatchers.
    if (u.targets.some((t) => t.url !== undefined)) upstreams.set(u.name, createUpstreamRuntime(u, pool, clients));
  }
  const policies =
    Object.keys(config.policies).length === 0
      ? new Map<string, Policy>()
      : buildPolicies(config, {
          consumers: createConsumerDirectory(config.consumers),
          store: gw.store,
          now: Date.now,
          log: gw.log,
        });
  const identity = { consumerHeader: config.identity.consumerHeader, groupsHeader: config.identity.groupsHeader };
  const routes = config.routes.map((r) => {
    const routeGateway =
      r.policies.length === 0 ? undefined : compileGateway(routePolicies(r.policies, policies), identity, gw.log);
    return compileRoute(r, r.upstream === undefined ? undefined : upstreams.get(r.upstream), routeGateway, gw);
  });
  const runtime: ProxyRuntime = {
    settings: buildProxySettings(config),
    router: createRouter(config.routes),
    routes,
    inflight: 0,
  };
  return {
    runtime,
    pools,
    release() {
      for (const u of upstreams.values()) u.releaseAll();
      for (const p of pools.values()) p.close();
      closePolicies(policies).then((failures) => {
        for (const f of failures) gw.log.warn({ msg: 'policy close failed', error: String(f) });
      });
    },
  };
}

function createUpstreamRuntime(
  config: UpstreamConfig,
  pool: Pool,
  clients: UpstreamClients,
): UpstreamRuntime & { releaseAll(): void } {
  const t = config.timeouts;
  const settings: ClientSettings = {
    connectTimeout: t.connect,
    responseTimeout: t.response,
    idleTimeout: t.idle,
    keepAlive: t.keepAlive,
    connections: config.maxConnectionsPerTarget,
    tls: resolveUpstreamTls(config.tls),
    http2: config.http2,
  };
  const dispatchers = new Map<Target, UpstreamDispatcher>();
  const hostHeaders = new Map<Target, string>();
  const acquired: UpstreamDispatcher[] = [];
  return {
    name: config.name,
    pool,
    mayUseHttp2: config.http2,
    dispatcher(target: Target): UpstreamDispatcher {
      let d = dispatchers.get(target);
      if (d === undefined) {
        d = clients.acquire(target.origin, settings);
        acquired.push(d);
        dispatchers.set(target, d);
      }
      return d;
    },
    hostHeader(target: Target): string {
      let h = hostHeaders.get(target);
      if (h === undefined) {
        const origin = new URL(target.origin);
        // Discovered targets dial an IP but keep the name they were found by.
        if (target.hostname !== undefined) origin.hostname = target.hostname;
        h = origin.host;
        hostHeaders.set(target, h);
      }
      return h;
    },
    releaseAll() {
      for (const d of acquired) clients.release(d);
      acquired.length = 0;
      dispatchers.clear();
    },
  };
}

function compileGateway(policies: Policy[], identity: IdentityOptions, log: Logger): RouteGateway {
  return {
    chain: createChain(policies, {
      log: { error: (obj, msg) => log.error({ ...obj, msg: msg ?? 'policy failed' }) },
    }),
    identity: createIdentity(policies, identity),
  };
}

function compileRoute(
  config: RouteConfig,
  upstream: UpstreamRuntime | undefined,
  gateway: RouteGateway | undefined,
  gw: GatewayDeps,
): CompiledRoute {
  return {
    name: config.name,
    config,
    upstream,
    action: compileRouteAction(config),
    access: createAccessCheck(config.allow, config.deny),
    rewrite: compileRewrite(config.rewrite),
    requestHeaders: compileHeaderRules(config.headers?.request),
    responseHeaders: compileHeaderRules(config.headers?.response),
    shaping:
      config.cache === undefined && config.compress === undefined
        ? undefined
        : {
            cache: config.cache === undefined ? undefined : gw.cache.forRoute(config.cache),
            compress: config.compress === undefined ? undefined : compileCompressOptions(config.compress),
          },
    preserveHost: config.preserveHost,
    maxBodySize: config.limits.maxBodySize,
    gateway,
  };
}
