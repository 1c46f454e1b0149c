/**
 * @module The HTTP request entry: everything between "a request head arrived" and "the forwarder sends it".
 *
 * In order: request id → method checks → path normalisation → routing → body limits → upstream headers
 * (hop-by-hop removed, forwarding headers set, route header rules) → forwarder. Each refusal is a local reply.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { type LocalReply, localReply } from '../errors.ts';
import type { Verdict } from '../gateway/types.ts';
import { readCookie } from '../lib/cookie.ts';
import { stripHopByHop } from '../lib/hop-by-hop.ts';
import { ExchangeLog } from './access-log.ts';
import type { LookupResult } from './cache/cache.ts';
import type { CacheScheme } from './cache/key.ts';
import { lookup, revalidateInBackground } from './cache-step.ts';
import { sendFromCache } from './exchange-shaping.ts';
import { addVia, clientAddress, setForwardingHeaders, unmapAddress } from './forwarded.ts';
import { ProxyExchange } from './forwarder.ts';
import {
  answerFromPolicy,
  BODY_OVER_POLICY_LIMIT,
  CLIENT_GONE,
  GatewayExchange,
  type RouteGateway,
  readBody,
} from './gateway-step.ts';
import type { ListenerGeneration } from './listener-generation.ts';
import { ALLOWED_METHODS, sendLocalReply } from './local-reply.ts';
import { isValidHost, normalizePath } from './normalize-path.ts';
import { connectBody, LimitedBody, RelayedBody, type StreamedBody } from './request-body.ts';
import { requestIdFrom } from './request-id.ts';
import { answerWithAction } from './route-action.ts';
import { certificateSubjectOf } from './tls/client-cert.ts';
import type { CompiledRoute, ProxyRuntime, ProxySettingsRuntime } from './types.ts';

/**
 * Handles one request on an HTTP listener. `expectContinue` is true when the client sent
 * `Expect: 100-continue`: the interim response is sent only once the request is accepted, so a client about
 * to upload a body too large or to a wrong path is told before it sends a byte.
 */
export function handleRequest(
  req: IncomingMessage,
  res: ServerResponse,
  lg: ListenerGeneration,
  expectContinue: boolean,
): void {
  const rt = lg.runtime;
  const settings = rt.settings;
  const headers = req.headers;
  const id = requestIdFrom(headers[settings.requestIdHeader]);
  const peer = unmapAddress(req.socket.remoteAddress);
  const peerTrusted = lg.isTrusted(peer);
  const client = peerTrusted ? clientAddress(peer, headers, true, lg.isTrusted) : peer;
  const method = req.method!;
  const log = new ExchangeLog(lg.logger, id, client, method, req.url!, req.socket.bytesRead);
  if (lg.draining) res.shouldKeepAlive = false;

  if (lg.access !== undefined && !lg.access(client)) {
    refuse(req, res, log, settings, localReply('GW_ADDRESS_DENIED', 'listener_denies_address'), true);
    return;
  }
  if (method === 'TRACE' || method === 'CONNECT') {
    refuse(req, res, log, settings, localReply('GW_METHOD_NOT_ALLOWED', `method_refused:${method}`));
    return;
  }
  if (method === 'OPTIONS' && (asksAboutServer(req.url!) || headers['max-forwards'] !== undefined)) {
    if (answerOptionsHere(req, res, id, settings)) {
      log.status = 200;
      log.details = 'options_answered_locally';
      res.once('close', () => log.write(res));
      return;
    }
  }
  const target = normalizePath(req.url!);
  if (!target.ok) {
    refuse(req, res, log, settings, localReply('GW_BAD_PATH', `bad_path:${target.reason}`), true);
    return;
  }
  const host = target.authority ?? headers.host;
  const match = rt.router.match(method, host, target.path, headers);
  if (match === undefined) {
    refuse(req, res, log, settings, localReply('GW_ROUTE_NOT_FOUND', 'no_route'));
    return;
  }
  const route = rt.routes[match.index]!;
  log.route = route.name;
  if (route.access !== undefined && !route.access(client)) {
    refuse(req, res, log, settings, localReply('GW_ADDRESS_DENIED', 'route_denies_address'));
    return;
  }

  const contentLength = headers['content-length'];
  const chunked = headers['transfer-encoding'] !== undefined;
  if (contentLength !== undefined && Number(contentLength) > route.maxBodySize) {
    refuse(req, res, log, settings, localReply('GW_BODY_TOO_LARGE', 'content_length_over_limit'), true);
    return;
  }
  const hasBody = chunked || (contentLength !== undefined && contentLength !== '0');

  // Upstream headers: the client's, minus hop-by-hop (before ours are added, so none can be nominated away);
  // of TE only `trailers` goes on (RFC 9110 §7.6.1, §10.1.4).
  // `TE: trailers` promises the trailers will not be discarded (RFC 9110 §10.1.4): only HTTP/2 clients get them.
  stripHopByHop(headers, req.httpVersionMajor === 2);
  if (headers.expect !== undefined) delete headers.expect;
  setForwardingHeaders(headers, headers, { peer, peerTrusted, proto: lg.proto, host });
  headers[settings.requestIdHeader] = id;
  if (settings.via) addVia(headers, req.httpVersionMajor, req.httpVersionMinor);
  if (target.authority !== undefined) headers.host = target.authority;
  route.requestHeaders?.apply(headers as Record<string, string>);

  const start: ForwardStart = { req, res, rt, route, log, headers, client, host, hasBody, expectContinue };
  if (route.gateway !== undefined) {
    const failed = (err: unknown): void => {
      lg.logger.error({ msg: 'policy chain failed', requestId: id, error: String(err) });
      refuse(req, res, log, settings, localReply('GW_INTERNAL', 'policy_chain_failed'), true);
    };
    let pending: Promise<void> | undefined;
    try {
      pending = runPolicies(start, route.gateway, id, match.params, target.path, target.query);
    } catch (err) {
      failed(err);
      return;
    }
    pending?.catch(failed);
    return;
  }
  forward(start, target.path, target.query, null, undefined);
}

/** Ends a request Portico refuses with a local reply; the access-log line is written when it closes. */
function refuse(
  req: IncomingMessage,
  res: ServerResponse,
  log: ExchangeLog,
  settings: ProxySettingsRuntime,
  reply: LocalReply,
  close = false,
): void {
  log.status = reply.status;
  log.code = reply.code;
  log.details = reply.details;
  if (close || !req.complete) res.shouldKeepAlive = false;
  res.once('close', () => log.write(res));
  sendLocalReply(res, reply, log.id, settings.requestIdHeader, settings.replyHeaders);
}

/** Everything the forwarder needs that the entry already computed. */
interface ForwardStart {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly rt: ProxyRuntime;
  readonly route: CompiledRoute;
  readonly log: ExchangeLog;
  readonly headers: IncomingHttpHeaders;
  readonly client: string;
  /** The Host (or absolute-form authority) the client asked for. */
  readonly host: string | undefined;
  readonly hasBody: boolean;
  readonly expectContinue: boolean;
}

/** Hands the request to the forwarder: body streamed (or the buffer a policy produced), path rewritten. */
function forward(
  s: ForwardStart,
  normalizedPath: string,
  query: string,
  buffered: Buffer | null,
  gateway: GatewayExchange | undefined,
): void {
  const route = s.route;
  if (route.action !== undefined) {
    const settings = s.rt.settings;
    const extra = { [settings.requestIdHeader]: s.log.id, ...settings.replyHeaders, ...gateway?.replyHeaders };
    if (!s.req.complete) s.res.shouldKeepAlive = false;
    s.log.status = answerWithAction(s.res, route.action, normalizedPath, query, extra);
    s.log.details = `route_${route.action.kind}`;
    s.res.once('close', () => s.log.write(s.res));
    return;
  }
  const path =
    (route.rewrite === undefined ? normalizedPath : route.rewrite(normalizedPath)) + (query === '' ? '' : `?${query}`);
  let body: StreamedBody | Buffer | null = null;
  if (buffered !== null) {
    // The body may have been rewritten: undici frames it anew.
    delete s.headers['content-length'];
    delete s.headers['transfer-encoding'];
    body = buffered;
  } else if (s.hasBody) {
    body = route.upstream!.mayUseHttp2 ? new LimitedBody(route.maxBodySize) : new RelayedBody(s.req, route.maxBodySize);
  }
  const hashKey = hashKeyFor(route, s.client, normalizedPath, s.headers);
  const exchange = new ProxyExchange(s.req, s.res, s.rt, route, s.log, s.headers, path, body, hashKey, gateway);
  const shaping = route.shaping;
  if (shaping !== undefined) {
    exchange.acceptEncoding = s.headers['accept-encoding'];
    exchange.cacheUrl = query === '' ? normalizedPath : `${normalizedPath}?${query}`;
    exchange.cacheHost = s.host ?? '';
    exchange.cacheScheme = cacheSchemeOf(s.headers['x-forwarded-proto']);
    // Policies that rewrite the response body see the upstream's answer, so such routes bypass the cache.
    if (shaping.cache !== undefined && !(gateway !== undefined && route.gateway!.chain.needsResponseBody > 0)) {
      lookup(shaping.cache, s.req.method!, exchange.cacheScheme, s.host, exchange.cacheUrl, s.headers).then(
        (result) => afterLookup(s, exchange, result),
        () => {
          // A failing cache store is a miss: serve from the upstream.
          exchange.cacheBypass = true;
          send(s, exchange, body);
        },
      );
      return;
    }
  }
  send(s, exchange, body);
}

/** Acts on the cache's answer: serve it, or go upstream with a ticket (or marked as a bypass). */
function afterLookup(s: ForwardStart, exchange: ProxyExchange, result: LookupResult): void {
  if (s.res.destroyed) {
    if (result.kind === 'miss' || result.kind === 'revalidate') result.ticket.onError();
    return;
  }
  switch (result.kind) {
    case 'hit':
    case 'stale': {
      s.log.details = result.kind === 'hit' ? 'cache_hit' : 'cache_stale';
      s.res.once('close', () => s.log.write(s.res));
      if (s.expectContinue) s.res.writeContinue();
      sendFromCache(exchange, result.response);
      if (result.kind === 'stale' && result.revalidation !== undefined) {
        revalidateInBackground(exchange.upstream, exchange.path, s.headers, result.revalidation);
      }
      return;
    }
    case 'reply':
      // only-if-cached with nothing usable stored (RFC 9111 §5.2.1.7).
      exchange.fail(result.reply);
      return;
    case 'bypass':
      exchange.cacheBypass = true;
      break;
    default: {
      const ticket = result.ticket;
      exchange.cacheTicket = ticket;
      // Revalidation: the stored validators replace the client's own.
      if (ticket.upstreamHeaders !== undefined) Object.assign(s.headers, ticket.upstreamHeaders);
    }
  }
  send(s, exchange, exchange.body);
}

function send(s: ForwardStart, exchange: ProxyExchange, body: ProxyExchange['body']): void {
  if (body !== null && !Buffer.isBuffer(body)) connectBody(s.req, body, exchange);
  if (s.expectContinue) s.res.writeContinue();
  exchange.start();
}

/**
 * The request phase of the route's policies; forwards on `continue`, answers otherwise. Synchronous (no
 * promise) when no body is buffered and every policy answered synchronously; else the promise to watch.
 */
function runPolicies(
  s: ForwardStart,
  gw: RouteGateway,
  id: string,
  params: Readonly<Record<string, string>>,
  path: string,
  query: string,
): Promise<void> | undefined {
  // The connection's socket for HTTP/1 and HTTP/2 alike (h2-exchange.ts): its TLS identity is the client's.
  const socket = s.req.socket as import('node:tls').TLSSocket;
  const ex = new GatewayExchange(
    id,
    s.route.name,
    params,
    {
      address: s.client,
      port: socket.remotePort ?? 0,
      tls: socket.encrypted === true,
      certificateSubject: certificateSubjectOf(socket),
    },
    s.req.method!,
    path,
    query,
    s.headers,
  );
  gw.identity.strip(ex.request);
  if (s.hasBody && gw.chain.needsRequestBody > 0) return runPoliciesWithBody(s, gw, ex);
  const outcome = gw.chain.runRequest(ex);
  if (outcome instanceof Promise) return outcome.then((v) => afterPolicies(s, gw, ex, v, s.expectContinue));
  afterPolicies(s, gw, ex, outcome, s.expectContinue);
  return undefined;
}

async function runPoliciesWithBody(s: ForwardStart, gw: RouteGateway, ex: GatewayExchange): Promise<void> {
  if (s.expectContinue) s.res.writeContinue();
  const body = await readBody(s.req, Math.min(gw.chain.needsRequestBody, s.route.maxBodySize));
  if (body === CLIENT_GONE) {
    s.log.clientAborted = true;
    s.log.write(s.res);
    return;
  }
  if (body === undefined) {
    endWith(s, ex, { kind: 'reply', reply: BODY_OVER_POLICY_LIMIT }, true);
    return;
  }
  ex.body = body;
  const outcome = gw.chain.runRequest(ex);
  afterPolicies(s, gw, ex, outcome instanceof Promise ? await outcome : outcome, false);
}

function afterPolicies(
  s: ForwardStart,
  gw: RouteGateway,
  ex: GatewayExchange,
  verdict: Verdict,
  expectContinue: boolean,
): void {
  if (s.res.destroyed) {
    s.log.clientAborted = true;
    s.log.write(s.res);
    return;
  }
  if (verdict.kind !== 'continue') {
    endWith(s, ex, verdict, false);
    return;
  }
  gw.identity.forward(ex);
  // A copy of the start only when the interim 100 was already sent (body buffered for a policy).
  const start = expectContinue === s.expectContinue ? s : { ...s, expectContinue };
  forward(start, ex.request.path, ex.request.query, ex.body ?? null, ex);
}

function endWith(
  s: ForwardStart,
  ex: GatewayExchange,
  verdict: Exclude<Verdict, { kind: 'continue' }>,
  close: boolean,
): void {
  const { res, log } = s;
  if (close || !s.req.complete) res.shouldKeepAlive = false;
  const settings = s.rt.settings;
  const result = answerFromPolicy(res, verdict, ex, settings.requestIdHeader, settings.replyHeaders);
  log.status = result.status;
  log.code = result.code;
  log.details = result.details;
  log.consumer = ex.consumer?.name;
  res.once('close', () => log.write(res));
}

/**
 * The scheme a cache key holds: the one the upstream is told in X-Forwarded-Proto (this listener's, or a
 * trusted proxy's first), so an answer given for plain HTTP (a redirect to HTTPS, say) is kept apart.
 */
function cacheSchemeOf(forwardedProto: string | string[] | undefined): CacheScheme {
  const value = Array.isArray(forwardedProto) ? forwardedProto[0] : forwardedProto;
  if (value === undefined) return 'https';
  const comma = value.indexOf(',');
  return (comma === -1 ? value : value.slice(0, comma)).trim().toLowerCase() === 'http' ? 'http' : 'https';
}

/** The consistent-hash key for this request, when the route's upstream balances by hash. */
function hashKeyFor(
  route: CompiledRoute,
  client: string,
  path: string,
  headers: IncomingHttpHeaders,
): string | undefined {
  const on = route.upstream!.pool.hashOn;
  if (on === undefined) return undefined;
  if (on === 'client-ip') return client;
  if (on === 'path') return path;
  if ('header' in on) {
    const v = headers[on.header];
    return Array.isArray(v) ? v[0] : v;
  }
  return readCookie(headers.cookie, on.cookie);
}

/** The largest Max-Forwards passed on (RFC 9110 §7.6.2 lets a recipient cap it at what it supports). */
const MAX_FORWARDS = 2 ** 31;

/**
 * RFC 9110 §9.3.7 and §7.6.2: `OPTIONS *` asks about the server itself, and `Max-Forwards: 0` means "do not
 * forward": both are answered here, with the headers of every local reply. A positive Max-Forwards is
 * decremented on the way up.
 */
function answerOptionsHere(
  req: IncomingMessage,
  res: ServerResponse,
  id: string,
  settings: Pick<ProxySettingsRuntime, 'requestIdHeader' | 'replyHeaders'>,
): boolean {
  const maxForwards = req.headers['max-forwards'];
  if (!asksAboutServer(req.url!)) {
    // Max-Forwards = 1*DIGIT (RFC 9110 §7.6.2); anything else (empty, `0x10`, `1e3`, `-1`) is not one and
    // passes unchanged. A value past what a Number holds exactly is capped, never rounded up.
    const value = typeof maxForwards === 'string' ? maxForwards.trim() : '';
    if (!/^\d+$/.test(value)) return false;
    const n = Math.min(Number(value), MAX_FORWARDS);
    if (n > 0) {
      req.headers['max-forwards'] = String(n - 1);
      return false;
    }
  }
  res.writeHead(200, {
    allow: ALLOWED_METHODS,
    'content-length': 0,
    [settings.requestIdHeader]: id,
    ...settings.replyHeaders,
  });
  res.end();
  return true;
}

/**
 * `*`, or an absolute-form target with an empty path and no query (`OPTIONS http://a.example:8001`): RFC 9112
 * §3.2.4 has the last proxy send the latter as `OPTIONS *`, so both ask about the server itself.
 */
function asksAboutServer(url: string): boolean {
  if (url === '*') return true;
  if (url.charCodeAt(0) === 0x2f) return false;
  const at = url.indexOf('://');
  if (at < 0) return false;
  const authority = url.slice(at + 3);
  return authority !== '' && !/[/?#]/.test(authority) && isValidHost(authority);
}

export { sendLocalReply };
