/** @module Compiled, per-generation objects the HTTP data path reads on every request. */
import type { RouteConfig } from '../config/schema.ts';
import type { Pool, Target } from '../upstream/types.ts';
import type { RouteGateway } from './gateway-step.ts';
import type { HeaderRules } from './header-rules.ts';
import type { ResponseShaping } from './response-body.ts';
import type { RouteAction } from './route-action.ts';
import type { Router } from './router.ts';
import type { AccessCheck } from './shield.ts';
import type { UpstreamDispatcher } from './upstream-clients.ts';

/** Proxy-wide settings, precomputed from `proxy:` in the config. */
export interface ProxySettingsRuntime {
  /** Add `Via` to requests sent upstream. */
  readonly via: boolean;
  /** Add `Via` to responses too. */
  readonly viaOnResponses: boolean;
  /** What Portico adds for a message received over HTTP/1.1 (`1.1 portico`); see {@link viaFor}. */
  readonly viaValue: string;
  readonly serverHeader: string;
  /** Lower-case. */
  readonly requestIdHeader: string;
  readonly drainTimeout: number;
  /** Extra headers on local replies (e.g. Server). */
  readonly replyHeaders: Readonly<Record<string, string>> | undefined;
}

/** An upstream as the forwarder uses it: the balancer's pool plus one connection pool per target. */
export interface UpstreamRuntime {
  readonly name: string;
  readonly pool: Pool;
  dispatcher(target: Target): UpstreamDispatcher;
  /** The Host header for `target` (`host:port`, port omitted when default). */
  hostHeader(target: Target): string;
  /** `http2: true`: undici may speak HTTP/2 to the targets, where a request body must be a real stream. */
  readonly mayUseHttp2: boolean;
}

export interface CompiledRoute {
  readonly name: string;
  readonly config: RouteConfig;
  /** Where proxied requests go; undefined for routes that answer themselves (`action`). */
  readonly upstream: UpstreamRuntime | undefined;
  /** A fixed response or redirect instead of proxying. */
  readonly action: RouteAction | undefined;
  /** The route's allow / deny lists of client addresses. */
  readonly access: AccessCheck | undefined;
  readonly rewrite: ((path: string) => string) | undefined;
  readonly requestHeaders: HeaderRules | undefined;
  readonly responseHeaders: HeaderRules | undefined;
  /** Caching and compression of responses; undefined when the route does neither (the direct path). */
  readonly shaping: ResponseShaping | undefined;
  readonly preserveHost: boolean;
  readonly maxBodySize: number;
  /** The route's policy chain; undefined when it lists none (the plain reverse-proxy path). */
  readonly gateway: RouteGateway | undefined;
}

/** One config generation's HTTP data path. Immutable once built; a reload builds a new one. */
export interface ProxyRuntime {
  readonly settings: ProxySettingsRuntime;
  readonly router: Router;
  /** Compiled routes by index in the config's `routes`. */
  readonly routes: readonly CompiledRoute[];
  /** Requests in flight on this generation (to know when it may be closed). */
  inflight: number;
}
