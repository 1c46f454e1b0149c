/**
 * @module Config schema of an upstream: its targets and how they are balanced, checked and protected.
 * Composed into the whole file's schema by src/config/schema.ts. Everything but `name` and `targets` is
 * optional; docs/load-balancing.md explains each setting and its default.
 */
import { z } from 'zod';
import { address, duration, headerName, name } from '../config/primitives.ts';

const target = z
  .strictObject({
    /** `http://host:port` for HTTP upstreams. */
    url: z.url({ protocol: /^https?$/ }).optional(),
    /** `host:port` for TCP upstreams. */
    address: address.optional(),
    weight: z.number().int().min(1).max(1000).default(1),
  })
  .refine((t) => (t.url === undefined) !== (t.address === undefined), {
    message: 'a target has either url (HTTP) or address (TCP), not both',
  });

const upstreamTimeouts = z.strictObject({
  connect: duration.default(5_000).meta({ description: 'TCP (and TLS) connect' }),
  response: duration.default(60_000).meta({ description: 'From request sent to response headers received' }),
  idle: duration.default(60_000).meta({ description: 'Longest silence while a body streams, either way' }),
  keepAlive: duration.default(4_000).meta({ description: 'How long an idle pooled connection is kept' }),
});

const cookieName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid cookie name');

const hashOn = z
  .union([
    z.enum(['client-ip', 'path']),
    z.strictObject({ header: headerName }),
    z.strictObject({ cookie: cookieName }),
  ])
  .meta({ description: 'What consistent-hash keys on: client-ip (default), path, { header: x } or { cookie: x }' });

/** `200` or a range `200-399`. */
const statusMatch = z.union([
  z.number().int().min(100).max(599),
  z.string().regex(/^[1-5]\d\d-[1-5]\d\d$/, 'expected a status or a range such as 200-399'),
]);

const activeHealth = z.strictObject({
  type: z
    .enum(['http', 'tcp'])
    .optional()
    .meta({ description: 'http for url targets, tcp for address targets unless set' }),
  path: z.string().startsWith('/').default('/').meta({ description: 'HTTP check path' }),
  host: z.string().optional().meta({ description: 'Host header of HTTP checks (default: the target)' }),
  expectedStatuses: z.array(statusMatch).min(1).default(['200-399']),
  interval: duration.default(10_000),
  timeout: duration.default(2_000),
  healthyThreshold: z.number().int().min(1).default(2).meta({ description: 'Passes in a row to return' }),
  unhealthyThreshold: z.number().int().min(1).default(3).meta({ description: 'Failures in a row to leave' }),
});

const passiveHealth = z.strictObject({
  consecutiveFailures: z
    .number()
    .int()
    .nonnegative()
    .default(5)
    .meta({ description: 'Connect failures, resets, timeouts or 5xx in a row that eject a target (0 = off)' }),
  ejectFor: duration.default(30_000).meta({ description: 'First ejection; the n-th lasts n times as long' }),
  maxEjectFor: duration.default(300_000).meta({ description: 'Longest ejection' }),
  maxEjectionPercent: z.number().int().min(0).max(100).default(50).meta({
    description: 'Most of the pool ejected at once (at least one target may always be ejected)',
  }),
});

const health = z.strictObject({
  active: activeHealth.optional(),
  passive: passiveHealth.default(passiveHealth.parse({})),
});

const slowStart = z.strictObject({
  window: duration.meta({ description: 'Time over which a new or returning target ramps up to full weight' }),
  minWeightPercent: z.number().int().min(1).max(100).default(10),
});

const retryOn = z.union([z.enum(['connect-failure', 'reset', 'timeout']), z.number().int().min(100).max(599)]);

const retries = z.strictObject({
  attempts: z
    .number()
    .int()
    .min(1)
    .max(10)
    .default(3)
    .meta({ description: 'Most tries of one request, the first included (1 = never retry)' }),
  on: z.array(retryOn).default(['connect-failure', 'reset']),
  perTryTimeout: duration.default(0).meta({ description: 'Deadline of each try (0 = none)' }),
  budget: z
    .strictObject({
      percent: z
        .number()
        .min(0)
        .max(100)
        .default(20)
        .meta({ description: 'Retries in flight ≤ this share of requests' }),
      minConcurrency: z.number().int().nonnegative().default(3),
    })
    .default({ percent: 20, minConcurrency: 3 }),
  nonIdempotent: z.boolean().default(false).meta({ description: 'Also retry POST/PATCH after bytes were sent' }),
});

const circuitBreaker = z.strictObject({
  maxRequests: z.number().int().positive().optional().meta({ description: 'In-flight requests/connections' }),
  maxPending: z
    .number()
    .int()
    .nonnegative()
    .optional()
    .meta({ description: 'Requests waiting for a connection (beyond maxConnectionsPerTarget)' }),
  maxConnections: z.number().int().positive().optional().meta({ description: 'Upstream connections in use' }),
  maxRequestsPerTarget: z.number().int().positive().optional(),
});

const sticky = z.strictObject({
  cookie: cookieName.default('portico_sticky'),
  ttl: duration.optional().meta({ description: 'Cookie Max-Age; a session cookie when unset' }),
  secret: z
    .string()
    .min(16)
    .optional()
    .meta({ description: 'HMAC key; set it when several workers or instances must accept the cookie' }),
});

const discovery = z.strictObject({
  resolveEvery: duration.default(30_000).meta({ description: 'How often host names are resolved again' }),
});

/** TLS to `https://` targets. PEM values are PEM text (`file:` inlines it) or a path to a PEM file. */
const upstreamTls = z.strictObject({
  ca: z.string().min(1).optional().meta({ description: 'CA bundle that signs the targets (default: the system CAs)' }),
  serverName: z.string().min(1).optional().meta({ description: 'SNI and the name verified (default: the URL host)' }),
  cert: z.string().min(1).optional().meta({ description: 'Client certificate, for upstreams that require mTLS' }),
  key: z.string().min(1).optional().meta({ description: 'Key of the client certificate' }),
  insecureSkipVerify: z.boolean().default(false).meta({ description: 'Accept any certificate (tests only)' }),
});

export const upstream = z
  .strictObject({
    name,
    tls: upstreamTls.optional(),
    /** Offer HTTP/2 to `https://` targets by ALPN (undici allowH2). */
    http2: z.boolean().default(false),
    balance: z
      .enum(['round-robin', 'weighted', 'least-connections', 'least-request', 'random', 'consistent-hash'])
      .default('least-request'),
    hashOn: hashOn.optional(),
    targets: z.array(target).min(1, 'an upstream needs at least one target'),
    timeouts: upstreamTimeouts.default(upstreamTimeouts.parse({})),
    /** Connections kept per target (undici pool size). */
    maxConnectionsPerTarget: z.number().int().positive().default(128),
    health: health.default(health.parse({})),
    slowStart: slowStart.optional(),
    retries: retries.default(retries.parse({})),
    circuitBreaker: circuitBreaker.optional(),
    sticky: sticky.optional(),
    discovery: discovery.optional(),
  })
  .refine((u) => u.hashOn === undefined || u.balance === 'consistent-hash', {
    message: 'hashOn needs balance: consistent-hash',
    path: ['hashOn'],
  })
  .refine((u) => (u.tls?.cert === undefined) === (u.tls?.key === undefined), {
    message: 'tls.cert and tls.key go together',
    path: ['tls'],
  });
