/**
 * @module Every metric Portico exports, declared in one list per component (Envoy's `ALL_*_STATS`): name,
 * type, help and labels. Names follow `portico_<component>_<thing>_<unit>`. docs/admin.md lists the same
 * metrics; test/unit/observe/metrics.test.ts keeps the two in sync.
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricSpec {
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly labels: readonly string[];
}

export const HTTP_METRICS = {
  requests: {
    name: 'portico_http_requests_total',
    type: 'counter',
    help: 'HTTP exchanges ended, by route, status and (for local replies only) error code',
    labels: ['route', 'status', 'code'],
  },
  duration: {
    name: 'portico_http_request_duration_seconds',
    type: 'histogram',
    help: 'Time from request head to the end of the response, by route',
    labels: ['route'],
  },
  localReplies: {
    name: 'portico_http_local_replies_total',
    type: 'counter',
    help: 'Responses Portico made itself (problem+json), by error code',
    labels: ['code'],
  },
} as const satisfies Record<string, MetricSpec>;

export const UPSTREAM_METRICS = {
  attempts: {
    name: 'portico_upstream_attempts_total',
    type: 'counter',
    help: 'Tries against an upstream target, by how they ended (retried = failed and tried again elsewhere)',
    labels: ['upstream', 'outcome'],
  },
  retries: {
    name: 'portico_upstream_retries_total',
    type: 'counter',
    help: 'Retries made, by upstream',
    labels: ['upstream'],
  },
  targets: {
    name: 'portico_upstream_targets',
    type: 'gauge',
    help: 'Targets of each upstream by state (healthy, ejected, draining, unhealthy)',
    labels: ['upstream', 'state'],
  },
  active: {
    name: 'portico_upstream_active_requests',
    type: 'gauge',
    help: 'Attempts (L7) or connections (L4) in flight, by upstream',
    labels: ['upstream'],
  },
  overloaded: {
    name: 'portico_upstream_overloaded_total',
    type: 'counter',
    help: 'Picks refused by an upstream-wide circuit-breaker limit',
    labels: ['upstream'],
  },
} as const satisfies Record<string, MetricSpec>;

export const CONNECTION_METRICS = {
  webSockets: {
    name: 'portico_websocket_connections',
    type: 'gauge',
    help: 'WebSocket tunnels open now, over all HTTP listeners',
    labels: [],
  },
  l4: {
    name: 'portico_l4_connections',
    type: 'gauge',
    help: 'Client connections open now on tcp and tls listeners',
    labels: [],
  },
} as const satisfies Record<string, MetricSpec>;

export const CACHE_METRICS = {
  requests: {
    name: 'portico_cache_requests_total',
    type: 'counter',
    help: 'Requests on caching routes, by cache result (HIT, MISS, STALE, BYPASS, REVALIDATED)',
    labels: ['route', 'result'],
  },
} as const satisfies Record<string, MetricSpec>;

export const CONFIG_METRICS = {
  reloads: {
    name: 'portico_config_reloads_total',
    type: 'counter',
    help: 'Config reloads (SIGHUP or POST /reload), by result: ok, invalid (config errors) or failed',
    labels: ['result'],
  },
} as const satisfies Record<string, MetricSpec>;

/** Every Portico metric (process metrics from prom-client's defaults come on top). */
export const ALL_METRICS: readonly MetricSpec[] = [
  ...Object.values(HTTP_METRICS),
  ...Object.values(UPSTREAM_METRICS),
  ...Object.values(CONNECTION_METRICS),
  ...Object.values(CACHE_METRICS),
  ...Object.values(CONFIG_METRICS),
];

/** Upper bounds of the duration histogram, in seconds: few buckets keep recording and scraping cheap. */
export const DURATION_BUCKETS = [0.005, 0.025, 0.1, 0.5, 2.5, 10] as const;

/** How the last try of an exchange ended; earlier tries of the same exchange are `retried`. */
export const ATTEMPT_OUTCOMES = [
  'response',
  'response_5xx',
  'connect_failure',
  'timeout',
  'reset',
  'cancelled',
  'retried',
] as const;

export const CACHE_RESULTS = ['HIT', 'MISS', 'STALE', 'BYPASS', 'REVALIDATED'] as const;

export const TARGET_STATES = ['healthy', 'ejected', 'draining', 'unhealthy'] as const;

export const RELOAD_RESULTS = ['ok', 'invalid', 'failed'] as const;
export type ReloadResult = (typeof RELOAD_RESULTS)[number];
