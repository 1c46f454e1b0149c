/**
 * @module The config file's schema: the single source of truth for what a Portico YAML file may say.
 *
 * Every object is strict (an unknown key is an error). Durations and sizes are parsed here into milliseconds
 * and bytes, so the rest of the program sees numbers. Defaults live next to their fields.
 * Cross-references (a route naming an upstream, unique names) are checked in `references.ts`.
 */
import { z } from 'zod';
import { consumer, identitySettings, policyEntry } from '../gateway/schema.ts';
import { checkL4Listener, l4ListenerFields } from '../l4/schema.ts';
import { validateCidr } from '../lib/cidr.ts';
import { cacheSettings, DEFAULT_CACHE_SETTINGS, routeCache } from '../proxy/cache/schema.ts';
import { routeCompress } from '../proxy/compress/schema.ts';
import { stateConfig } from '../state/schema.ts';
import { upstream } from '../upstream/schema.ts';
import { address, duration, headerName, headerValue, name, size } from './primitives.ts';

/** Header edits: `set` replaces, `add` appends, `remove` deletes (applied remove → set → add). */
export const headerRules = z
  .strictObject({
    set: z.record(headerName, headerValue).optional(),
    add: z.record(headerName, headerValue).optional(),
    remove: z.array(headerName).optional(),
  })
  .meta({ description: 'Header edits: remove, then set (replace), then add (append)' });

const cidr = z
  .string()
  .superRefine((value, ctx) => {
    const problem = validateCidr(value);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  })
  .meta({ description: 'An IPv4 or IPv6 address or CIDR block, e.g. 10.0.0.0/8' });

/** Client addresses a listener or route accepts: `deny` wins over `allow`; an empty `allow` allows all. */
const addressLists = {
  allow: z.array(cidr).optional().meta({ description: 'Only these client addresses (CIDR) may use it' }),
  deny: z.array(cidr).optional().meta({ description: 'These client addresses (CIDR) are refused with 403' }),
};

/** Protection against slow and oversized clients on one listener. */
const listenerLimits = z.strictObject({
  maxHeaderSize: size.default(16 * 1024).meta({ description: 'Largest request head; larger → 431' }),
  headersTimeout: duration.default(10_000).meta({ description: 'Time for a client to send the request head' }),
  requestTimeout: duration
    .default(300_000)
    .meta({ description: 'Time for a client to send the whole request (0 disables)' }),
  idleTimeout: duration
    .default(60_000)
    .meta({ description: 'Keep-alive: how long an idle client connection stays open' }),
  maxRequestsPerConnection: z.number().int().nonnegative().default(0).meta({ description: '0 = unlimited' }),
  maxConnectionsPerClient: z.number().int().nonnegative().default(0).meta({
    description: 'Open connections one client address may hold; more are refused (429 on HTTP); 0 = unlimited',
  }),
  maxConnections: z
    .number()
    .int()
    .nonnegative()
    .default(0)
    .meta({ description: 'Open client connections (tcp/tls listeners); 0 = unlimited' }),
});

/** A PEM value: the PEM text itself (e.g. from `file:`), or a path to a PEM file that is watched and reloaded. */
const pem = z.string().min(1).meta({
  description:
    'PEM text (file:path inlines it) or a plain path to a PEM file, watched for changes (relative to the config file)',
});

const certificate = z.strictObject({ cert: pem, key: pem });

/**
 * TLS on `https` listeners (termination) and `tls` listeners (SNI passthrough or termination).
 * Certificates are chosen by SNI from the names they hold.
 */
const listenerTls = z.strictObject({
  /** `tls` listeners only: passthrough routes by SNI without decrypting; terminate decrypts here. */
  mode: z.enum(['passthrough', 'terminate']).optional(),
  /** The first certificate is the default, for clients that send no (or an unknown) server name. */
  certificates: z.array(certificate).default([]),
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
  /** mTLS: verify client certificates against `ca`; `required: false` lets clients without one in. */
  clientAuth: z.strictObject({ ca: pem, required: z.boolean().default(true) }).optional(),
});

/** Strict-Transport-Security (RFC 6797); sent on HTTPS responses only. */
export const hsts = z.strictObject({
  maxAge: duration.default(31_536_000_000).meta({ description: 'max-age (default 1 year)' }),
  includeSubDomains: z.boolean().default(false),
  preload: z.boolean().default(false),
});

/** Answer plain-HTTP requests with a redirect to the same URL on https. */
export const redirectToHttps = z.union([
  z.boolean(),
  z.strictObject({
    /** The https port, when not 443. */
    port: z.number().int().min(1).max(65535).optional(),
    /** Take the port from this https listener (useful when it binds port 0). */
    listener: name.optional(),
    status: z.union([z.literal(301), z.literal(302), z.literal(307), z.literal(308)]).default(308),
  }),
]);

export const listener = z
  .strictObject({
    name,
    protocol: z.enum(['http', 'https', 'tcp', 'tls']),
    address,
    /** For `tcp` / `tls` listeners: the upstream pool the connections go to. */
    upstream: name.optional(),
    /** Peers whose X-Forwarded-For / Forwarded headers are believed. Others have theirs replaced. */
    trustedProxies: z.array(cidr).default([]),
    ...addressLists,
    limits: listenerLimits.default(listenerLimits.parse({})),
    /** `https` listeners: certificates, versions, client certificates. */
    tls: listenerTls.optional(),
    /** `https` listeners: offer h2 by ALPN beside http/1.1. */
    http2: z.boolean().default(true),
    /** `http` listeners: also accept HTTP/2 with prior knowledge (h2c) on the same port. */
    h2c: z.boolean().default(false),
    /** `http` listeners: redirect every request to https instead of proxying it. */
    redirectToHttps: redirectToHttps.optional(),
    /** `https` listeners: add Strict-Transport-Security to every response. */
    hsts: hsts.optional(),
    /** `tcp` / `tls` listeners: PROXY protocol, SNI routes, timeouts. */
    proxyProtocol: l4ListenerFields.proxyProtocol,
    sni: l4ListenerFields.sni,
    timeouts: l4ListenerFields.timeouts,
  })
  .refine((l) => l.protocol !== 'https' || (l.tls !== undefined && l.tls.certificates.length > 0), {
    message: 'an https listener needs tls: { certificates: [ { cert, key } ] }',
    path: ['tls'],
  })
  .superRefine((l, ctx) => checkL4Listener(l, ctx));

const routeMatch = z.strictObject({
  /** `api.example.com` or `*.example.com`; a list matches any. */
  host: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
  /** `/exact`, `/users/:id`, `/static/*`. Default `/*`. */
  path: z.string().startsWith('/', 'paths start with "/"').default('/*'),
  methods: z
    .array(z.string().regex(/^[A-Z]+$/, 'methods are upper case, e.g. GET'))
    .min(1)
    .optional(),
  /** Header equality, case-insensitive names, exact values. */
  headers: z.record(headerName, headerValue).optional(),
});

const rewrite = z.strictObject({
  stripPrefix: z.string().startsWith('/').optional(),
  addPrefix: z.string().startsWith('/').optional(),
  /** Regex replace on the path; `$1` refers to captures. */
  regex: z.strictObject({ pattern: z.string(), replacement: z.string() }).optional(),
});

/** A fixed response a route answers itself, without an upstream. */
const respondAction = z.strictObject({
  status: z.number().int().min(200).max(599).default(200),
  body: z.string().default(''),
  contentType: z.string().default('text/plain; charset=utf-8'),
  headers: z.record(headerName, headerValue).default({}),
});

/**
 * Why `to` cannot be a redirect target, or undefined. Clients resolve Location against the request URL
 * (RFC 9110 §10.2.2), so `example.com/x` would be read as a relative path: only an absolute URL with a
 * scheme, a path starting with `/`, or a template starting with `{path}` (which is always `/…`) are taken.
 */
export function redirectTargetProblem(to: string): string | undefined {
  if (to.startsWith('{path}')) return undefined;
  if (to.startsWith('//')) return `must give the scheme, not a scheme-relative URL (did you mean "https:${to}"?)`;
  if (to.startsWith('/')) return undefined;
  // `host:8080/x` parses as scheme "host"; a port right after the colon says it is a host.
  if (/^[a-z][a-z0-9+.-]*:/i.test(to) && !/^[^:]*:\d/.test(to)) {
    if (/^https?:/i.test(to) && !/^https?:\/\/[^/?#{]/i.test(to)) return `"${to}" has no host after the scheme`;
    return undefined;
  }
  return `must be an absolute URL with a scheme or a path starting with "/" (did you mean "https://${to}"?)`;
}

/** A redirect a route answers itself. `to` may use {path} and {query} (the request's, normalised). */
const redirectAction = z.strictObject({
  to: z
    .string()
    .min(1)
    .superRefine((value, ctx) => {
      const problem = redirectTargetProblem(value);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
    })
    .meta({ description: 'Absolute URL (https://…) or path (/…); {path} and {query} are replaced' }),
  status: z.union([z.literal(301), z.literal(302), z.literal(303), z.literal(307), z.literal(308)]).default(302),
});

export const route = z
  .strictObject({
    name,
    match: routeMatch.default(routeMatch.parse({})),
    /** Where requests go. A route has exactly one of `upstream`, `respond` and `redirect`. */
    upstream: name.optional(),
    /** Answer with a fixed response instead of proxying. */
    respond: respondAction.optional(),
    /** Answer with a redirect instead of proxying. */
    redirect: redirectAction.optional(),
    ...addressLists,
    rewrite: rewrite.optional(),
    headers: z.strictObject({ request: headerRules.optional(), response: headerRules.optional() }).optional(),
    /** Send the client's Host upstream (true) or the target's (false, default). */
    preserveHost: z.boolean().default(false),
    limits: z
      .strictObject({ maxBodySize: size.default(100 * 1024 * 1024) })
      .default({ maxBodySize: 100 * 1024 * 1024 }),
    /** Cache responses (RFC 9111): `true` or options; the store is the top-level `cache`. */
    cache: routeCache.optional(),
    /** Compress responses (gzip, br, zstd) by Accept-Encoding: `true` or options. */
    compress: routeCompress.optional(),
    /** Policies by name, run in order (the gateway issue). */
    policies: z.array(name).default([]),
    /** WebSocket upgrades: allowed (default), refused (`false`), or allowed with an idle timeout. */
    websocket: z
      .union([z.boolean(), z.strictObject({ idleTimeout: duration.default(600_000) })])
      .default(true)
      .meta({ description: 'false refuses WebSocket upgrades; { idleTimeout } closes silent tunnels (default 10m)' }),
    /** Redirect plain-HTTP requests on this route to https. */
    redirectToHttps: redirectToHttps.optional(),
    /** Strict-Transport-Security on this route's HTTPS responses. */
    hsts: hsts.optional(),
  })
  .refine((r) => [r.upstream, r.respond, r.redirect].filter((a) => a !== undefined).length === 1, {
    message: 'a route needs exactly one of upstream, respond or redirect',
    path: ['upstream'],
  });

export const admin = z.strictObject({ address });

/** Settings that shape every proxied exchange. */
export const proxySettings = z.strictObject({
  /**
   * `Via` (RFC 9110 §7.6.3): `request` (default) adds it to requests sent upstream, which a gateway MUST do;
   * `both` also to responses; `off` never. `true` / `false` mean `both` / `off`.
   */
  via: z
    .union([z.enum(['request', 'both', 'off']), z.boolean()])
    .default('request')
    .transform((v) => (v === true ? 'both' : v === false ? 'off' : v)),
  /** `Server` header on responses; empty string sends none. Upstream `Server` headers are always dropped. */
  serverHeader: z.string().default(''),
  /** Header carrying the request id both ways. */
  requestIdHeader: headerName.default('x-request-id'),
  /** Deadline for in-flight requests when shutting down. */
  drainTimeout: duration.default(30_000),
});

export const configSchema = z.strictObject({
  listeners: z.array(listener).min(1, 'at least one listener is needed'),
  upstreams: z.array(upstream).default([]),
  routes: z.array(route).default([]),
  consumers: z.array(consumer).default([]),
  policies: z.record(name, policyEntry).default({}),
  state: stateConfig.default({ store: 'memory' }),
  /** Headers that carry the identified consumer upstream (client-sent copies are always removed). */
  identity: identitySettings.default(identitySettings.parse({})),
  /** Where cached responses live (routes opt in with `cache:`). */
  cache: cacheSettings.default(DEFAULT_CACHE_SETTINGS),
  admin: admin.optional(),
  proxy: proxySettings.default(proxySettings.parse({})),
});

/** A checked, normalised config: units parsed, defaults filled. Frozen by the loader. */
export type Config = z.output<typeof configSchema>;
export type ListenerConfig = Config['listeners'][number];
export type UpstreamConfig = Config['upstreams'][number];
export type TargetConfig = UpstreamConfig['targets'][number];
export type RouteConfig = Config['routes'][number];
export type HeaderRulesConfig = z.output<typeof headerRules>;
export type ProxySettings = Config['proxy'];
