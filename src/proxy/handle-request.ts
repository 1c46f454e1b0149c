/**
 * @module The HTTP request entry: everything between "a request head arrived" and "the forwarder sends it".
 *
 * In order: request id → method checks → path normalisation → routing → body limits → upstream headers
 * (hop-by-hop removed, forwarding headers set, route header rules) → forwarder. Each refusal is a local reply.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { type LocalReply, localReply } from '../errors.ts';
import { stripHopByHop } from '../lib/hop-by-hop.ts';
import { ExchangeLog } from './access-log.ts';
import { clientAddress, setForwardingHeaders, unmapAddress } from './forwarded.ts';
import { BodyTooLargeError, ProxyExchange, readCookie } from './forwarder.ts';
import type { ListenerGeneration } from './listener-generation.ts';
import { sendLocalReply } from './local-reply.ts';
import { normalizePath } from './normalize-path.ts';
import { requestIdFrom } from './request-id.ts';
import type { CompiledRoute } from './types.ts';

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

  const refuse = (reply: LocalReply, close = false): void => {
    log.status = reply.status;
    log.code = reply.code;
    log.details = reply.details;
    if (close || !req.complete) res.shouldKeepAlive = false;
    res.once('close', () => log.write(res));
    sendLocalReply(res, reply, id, settings.requestIdHeader, settings.replyHeaders);
  };

  if (method === 'TRACE' || method === 'CONNECT') {
    refuse(localReply('GW_METHOD_NOT_ALLOWED', `method_refused:${method}`));
    return;
  }
  if (countHostHeaders(req.rawHeaders) > 1) {
    refuse(localReply('GW_BAD_REQUEST', 'duplicate_host'), true);
    return;
  }
  const target = normalizePath(req.url!);
  if (!target.ok) {
    refuse(localReply('GW_BAD_PATH', `bad_path:${target.reason}`), true);
    return;
  }
  const host = target.authority ?? headers.host;
  const match = rt.router.match(method, host, target.path, headers);
  if (match === undefined) {
    refuse(localReply('GW_ROUTE_NOT_FOUND', 'no_route'));
    return;
  }
  const route = rt.routes[match.index]!;
  log.route = route.name;

  const contentLength = headers['content-length'];
  const chunked = headers['transfer-encoding'] !== undefined;
  if (contentLength !== undefined && Number(contentLength) > route.maxBodySize) {
    refuse(localReply('GW_BODY_TOO_LARGE', 'content_length_over_limit'), true);
    return;
  }
  const hasBody = chunked || (contentLength !== undefined && contentLength !== '0');

  // Upstream headers: the client's, minus hop-by-hop (before ours are added, so none can be nominated away).
  stripHopByHop(headers);
  if (headers.expect !== undefined) delete headers.expect;
  setForwardingHeaders(headers, headers, { peer, peerTrusted, proto: lg.proto, host });
  headers[settings.requestIdHeader] = id;
  if (settings.via) headers.via = headers.via ? `${headers.via}, ${settings.viaValue}` : settings.viaValue;
  if (target.authority !== undefined) headers.host = target.authority;
  route.requestHeaders?.apply(headers as Record<string, string>);

  const path = (route.rewrite === undefined ? target.path : route.rewrite(target.path)) +
    (target.query === '' ? '' : `?${target.query}`);
  const body = hasBody ? new LimitedBody(route.maxBodySize) : null;
  const exchange = new ProxyExchange(req, res, rt, route, log, headers, path, body, hashKeyFor(route, client, target.path, headers));
  if (body !== null) {
    body.exchange = exchange;
    req.on('error', onRequestError);
    req.pipe(body);
  }
  if (expectContinue) res.writeContinue();
  exchange.start();
}

/** The consistent-hash key for this request, when the route's upstream balances by hash. */
function hashKeyFor(route: CompiledRoute, client: string, path: string, headers: IncomingHttpHeaders): string | undefined {
  const on = route.upstream.pool.hashOn;
  if (on === undefined) return undefined;
  if (on === 'client-ip') return client;
  if (on === 'path') return path;
  if ('header' in on) {
    const v = headers[on.header];
    return Array.isArray(v) ? v[0] : v;
  }
  return readCookie(headers.cookie, on.cookie);
}

/** Duplicate Host headers are ambiguous (RFC 9112 §3.2: respond 400). Node keeps only the first. */
function countHostHeaders(raw: string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') n++;
  }
  return n;
}

function onRequestError(this: IncomingMessage): void {
  // The client connection failed mid-upload; the body stream's consumer (undici) sees the abort.
  this.unpipe();
}

/**
 * The request body as sent upstream: counts bytes against the route's limit (chunked uploads have no
 * Content-Length to check up front) and stands between the client request and undici, so an upstream
 * failure destroys this stream and not the client's socket (which still needs its local reply).
 */
class LimitedBody extends Transform {
  readonly #limit: number;
  #seen = 0;
  exchange: ProxyExchange | undefined = undefined;

  constructor(limit: number) {
    super();
    this.#limit = limit;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#limit) {
      if (this.exchange) this.exchange.bodyTooLarge = true;
      done(new BodyTooLargeError('request body over limit'));
      return;
    }
    done(null, chunk);
  }
}

export { sendLocalReply };
