/**
 * @module HTTP→HTTPS redirects and Strict-Transport-Security (RFC 6797), as listener or route options.
 *
 * Compiled once per (listener, generation) into an `EdgeRules` object the listener reads before the request
 * enters the proxy. Listener-level rules cost one property read per request; route-level rules need the
 * route, so only when some route asks for them is the request routed here first (the request entry routes it
 * again). HSTS is sent on HTTPS only (RFC 6797 §7.2); a redirect never leaves the host the client named.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ListenerConfig, RouteConfig } from '../config/schema.ts';
import { localReply } from '../errors.ts';
import { handleRequest } from './handle-request.ts';
import type { ListenerGeneration } from './listener-generation.ts';
import { sendLocalReply } from './local-reply.ts';
import { normalizePath } from './normalize-path.ts';
import { requestIdFrom } from './request-id.ts';
import type { ProxyRuntime } from './types.ts';

type RedirectOption = NonNullable<ListenerConfig['redirectToHttps']>;
type HstsOption = NonNullable<ListenerConfig['hsts']>;

/** A compiled redirect: status and the port to put in Location (443 → none). */
export interface HttpsRedirect {
  readonly status: number;
  /** The https port now (a listener bound to port 0 is resolved when asked). */
  port(): number;
}

export interface EdgeRules {
  /** Plain-HTTP listener: redirect everything. */
  readonly redirect: HttpsRedirect | undefined;
  /** HTTPS listener: this STS value on every response. */
  readonly hsts: string | undefined;
  /** Per route index, when any route sets `redirectToHttps` or `hsts`; else undefined. */
  readonly routes: readonly (RouteEdge | undefined)[] | undefined;
}

interface RouteEdge {
  readonly redirect: HttpsRedirect | undefined;
  readonly hsts: string | undefined;
}

/** Where ACME http-01 challenges are answered: never redirected, so certificates can be issued. */
const ACME_PREFIX = '/.well-known/acme-challenge/';
/** A Host we are willing to echo into Location: a name or address, an optional port. */
const SAFE_HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

export function hstsValue(o: HstsOption): string {
  let v = `max-age=${Math.floor(o.maxAge / 1000)}`;
  if (o.includeSubDomains) v += '; includeSubDomains';
  if (o.preload) v += '; preload';
  return v;
}

/**
 * Compiles the rules for one listener and generation. `portOf(name)` gives a listener's bound port (for
 * `redirectToHttps: { listener }`). Returns undefined when nothing applies, the common case.
 */
export function compileEdgeRules(
  listener: ListenerConfig,
  routes: readonly RouteConfig[],
  portOf: (listener: string) => number | undefined,
): EdgeRules | undefined {
  const https = listener.protocol === 'https';
  const redirect = !https && listener.redirectToHttps ? compileRedirect(listener.redirectToHttps, portOf) : undefined;
  const hsts = https && listener.hsts ? hstsValue(listener.hsts) : undefined;
  let perRoute: (RouteEdge | undefined)[] | undefined;
  routes.forEach((r, i) => {
    const rr = !https && r.redirectToHttps ? compileRedirect(r.redirectToHttps, portOf) : undefined;
    const rh = https && r.hsts ? hstsValue(r.hsts) : undefined;
    if (rr === undefined && rh === undefined) return;
    perRoute ??= new Array(routes.length).fill(undefined);
    perRoute[i] = { redirect: rr, hsts: rh };
  });
  if (redirect === undefined && hsts === undefined && perRoute === undefined) return undefined;
  return { redirect, hsts, routes: perRoute };
}

function compileRedirect(
  o: RedirectOption,
  portOf: (listener: string) => number | undefined,
): HttpsRedirect | undefined {
  if (o === false) return undefined;
  if (o === true) return { status: 308, port: () => 443 };
  const fixed = o.port ?? 443;
  const name = o.listener;
  return { status: o.status, port: name === undefined ? () => fixed : () => portOf(name) ?? fixed };
}

/**
 * Applies `rules` to a request before it is proxied. Returns true when the request was answered here (a
 * redirect, or a 400 for a Host that cannot be redirected to); false to go on with the proxy.
 */
export function applyEdgeRules(rules: EdgeRules, rt: ProxyRuntime, req: IncomingMessage, res: ServerResponse): boolean {
  let redirect = rules.redirect;
  let hsts = rules.hsts;
  if (rules.routes !== undefined) {
    const target = normalizePath(req.url ?? '/');
    if (target.ok) {
      const match = rt.router.match(req.method!, target.authority ?? req.headers.host, target.path, req.headers);
      const edge = match === undefined ? undefined : rules.routes[match.index];
      if (edge !== undefined) {
        // The route's own settings are the more specific ones.
        redirect = edge.redirect ?? redirect;
        hsts = edge.hsts ?? hsts;
      }
    }
  }
  if (hsts !== undefined) res.setHeader('strict-transport-security', hsts);
  if (redirect === undefined) return false;
  const url = req.url ?? '/';
  if (url.startsWith(ACME_PREFIX)) return false;
  const location = httpsLocation(req.headers.host, url, redirect.port());
  const s = rt.settings;
  const id = requestIdFrom(req.headers[s.requestIdHeader]);
  if (location === undefined) {
    sendLocalReply(res, localReply('GW_BAD_REQUEST', 'redirect_bad_host'), id, s.requestIdHeader, s.replyHeaders);
    return true;
  }
  res.writeHead(redirect.status, {
    location,
    'content-length': 0,
    'cache-control': 'no-store',
    [s.requestIdHeader]: id,
    ...s.replyHeaders,
  });
  res.end();
  return true;
}

/**
 * `https://host[:port]/path?query`, or undefined when the host is missing or not a plain host[:port]. The
 * host is the authority of an absolute-form target (`GET http://a.example/x`), which wins over `Host`
 * (RFC 9112 §3.2.2), else `Host`; path and query are kept as the client sent them.
 */
export function httpsLocation(host: string | undefined, url: string, port: number): string | undefined {
  let path = url;
  if (!url.startsWith('/')) {
    const absolute = ABSOLUTE_FORM.exec(url);
    if (absolute !== null) {
      host = absolute[1]!;
      path = absolute[2]!;
    }
    if (!path.startsWith('/')) path = `/${path.startsWith('?') ? path : ''}`;
  }
  if (host === undefined || !SAFE_HOST.test(host)) return undefined;
  const colon = host.lastIndexOf(':');
  const bare = colon > host.lastIndexOf(']') ? host.slice(0, colon) : host;
  return `https://${bare}${port === 443 ? '' : `:${port}`}${path}`;
}

/** `http://authority/rest`: the authority and the rest (path and query, possibly empty). */
const ABSOLUTE_FORM = /^https?:\/\/([^/?#]*)([^#]*)/i;

/** The request entry of HTTP listeners (HTTP/1 and HTTP/2): edge rules when the generation has any, then the proxy. */
export function serveRequest(
  lg: ListenerGeneration & { readonly edge?: EdgeRules | undefined },
  req: IncomingMessage,
  res: ServerResponse,
  expectContinue: boolean,
): void {
  const edge = lg.edge;
  if (edge !== undefined && applyEdgeRules(edge, lg.runtime, req, res)) return;
  handleRequest(req, res, lg, expectContinue);
}
