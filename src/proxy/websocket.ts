/**
 * @module WebSocket proxying (RFC 6455 over HTTP/1.1 Upgrade, RFC 9110 §7.8): the listener's `upgrade` event
 * ends here (HTTP/1.1 requests with `Upgrade: websocket` and `Connection: upgrade` only).
 *
 * A listener's or route's HTTPS redirect answers first; then the opening handshake is checked
 * (websocket-handshake.ts), the request is routed like any request (same normalisation and router), refused
 * when the route says `websocket: false`, passed through the route's policies (request phase: authentication,
 * rate limits…), and sent to a target of the route's pool (sticky cookie honoured) through the `upgrade`
 * dispatch with the usual forwarding headers and request id; a failure before any answer is retried on another
 * target as the pool's retries allow. A `101` that is a valid WebSocket switch joins the two sockets
 * (websocket-tunnel.ts); any other answer is relayed to the client, and the connection closes after it. Every
 * refusal is a problem+json local reply.
 */
import { type IncomingHttpHeaders, type IncomingMessage, STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { type LocalReply, localReply } from '../errors.ts';
import { stripHopByHop } from '../lib/hop-by-hop.ts';
import { metricsOf } from '../observe/metrics.ts';
import type { AttemptOutcome, Target } from '../upstream/types.ts';
import { addVia, clientAddress, setForwardingHeaders, unmapAddress } from './forwarded.ts';
import { GatewayExchange } from './gateway-step.ts';
import type { ListenerGeneration } from './listener-generation.ts';
import { normalizePath } from './normalize-path.ts';
import { type EdgeRules, httpsLocation } from './redirect.ts';
import { requestIdFrom } from './request-id.ts';
import { filterResponseHeaders, flatToObject, type RawHeaders } from './response-headers.ts';
import { NO_HINT, noTargetReply, pinnedTarget, stickyCookie } from './target-choice.ts';
import { certificateSubjectOf } from './tls/client-cert.ts';
import type { CompiledRoute } from './types.ts';
import { replyForUpstreamError } from './upstream-errors.ts';
import { checkClientHandshake, checkUpstreamSwitch, type Offer, offerOf } from './websocket-handshake.ts';
import { endAndLinger, type WebSocketTunnels, writeSocketReply } from './websocket-tunnel.ts';

/** Default idle timeout of a tunnel when the route says just `websocket: true`. */
export const DEFAULT_WEBSOCKET_IDLE_MS = 600_000;

/** A listener generation with the redirect / HSTS rules of its listener and routes (redirect.ts). */
type UpgradeGeneration = ListenerGeneration & { readonly edge?: EdgeRules | undefined };

/** Handles one `upgrade` event of an HTTP/1 server (the listener only upgrades `Upgrade: websocket`). */
export function proxyWebSocket(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  lg: UpgradeGeneration,
  tunnels: WebSocketTunnels,
): void {
  const rt = lg.runtime;
  const settings = rt.settings;
  const headers = req.headers;
  const id = requestIdFrom(headers[settings.requestIdHeader]);
  socket.on('error', destroyOnError);
  tunnels.track(socket);
  const at: Refusal = { route: undefined, startedAt: performance.now() };
  const reply = startWebSocket(req, socket, head, lg, tunnels, id, at);
  if (reply === undefined) return;
  refuseUpgrade(req, socket, lg, id, reply, undefined, at);
}

/** What a refusal is counted under: the matched route (once known) and when the upgrade came in. */
interface Refusal {
  route: string | undefined;
  readonly startedAt: number;
}

/** Answers a refused upgrade with a problem reply, logs it and counts it in the metrics. */
function refuseUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  lg: ListenerGeneration,
  id: string,
  reply: LocalReply,
  extra: Readonly<Record<string, string>> | undefined,
  at: Refusal,
): void {
  const settings = lg.runtime.settings;
  lg.logger.info({
    msg: 'websocket',
    requestId: id,
    path: req.url,
    route: at.route,
    status: reply.status,
    code: reply.code,
    details: reply.details,
  });
  countRefusal(lg, at.route, undefined, reply, at.startedAt);
  writeSocketReply(
    socket,
    reply,
    id,
    settings.requestIdHeader,
    extra === undefined ? settings.replyHeaders : { ...settings.replyHeaders, ...extra },
  );
}

/** Routes the upgrade and dispatches it upstream; returns the local reply when it is refused here. */
function startWebSocket(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  lg: UpgradeGeneration,
  tunnels: WebSocketTunnels,
  id: string,
  at: Refusal,
): LocalReply | undefined {
  const rt = lg.runtime;
  const settings = rt.settings;
  const headers = req.headers;
  if (lg.draining) return localReply('GW_SHUTTING_DOWN', 'draining');
  const target = normalizePath(req.url!);
  const host = target.ok ? (target.authority ?? headers.host) : undefined;
  const match = target.ok ? rt.router.match('GET', host, target.path, headers) : undefined;
  // The listener's and route's HTTP→HTTPS redirect applies to upgrades as to any request (nginx's `return`,
  // Caddy's HTTPS redirect): a tunnel must not open over the plain-text listener meant to send clients away.
  const edge = lg.edge;
  if (edge !== undefined) {
    const redirect = (match === undefined ? undefined : edge.routes?.[match.index]?.redirect) ?? edge.redirect;
    if (redirect !== undefined) {
      const location = httpsLocation(headers.host, req.url!, redirect.port());
      if (location === undefined) return localReply('GW_BAD_REQUEST', 'redirect_bad_host');
      redirectUpgrade(
        req,
        socket,
        lg,
        id,
        redirect.status,
        location,
        match === undefined ? undefined : rt.routes[match.index]!.name,
      );
      return undefined;
    }
  }
  const invalid = checkClientHandshake(req);
  if (invalid !== undefined) return invalid;
  if (!target.ok) return localReply('GW_BAD_PATH', `bad_path:${target.reason}`);
  if (match === undefined) return localReply('GW_ROUTE_NOT_FOUND', 'no_route');
  const route = rt.routes[match.index]!;
  at.route = route.name;
  const ws = route.config.websocket;
  if (ws === false) return localReply('GW_FORBIDDEN', 'websocket_disabled');
  const upstream = route.upstream;
  if (upstream === undefined) return localReply('GW_FORBIDDEN', 'websocket_to_route_action');

  const peer = unmapAddress(req.socket.remoteAddress);
  const peerTrusted = lg.isTrusted(peer);
  const client = peerTrusted ? clientAddress(peer, headers, true, lg.isTrusted) : peer;
  if (lg.access !== undefined && !lg.access(client)) return localReply('GW_ADDRESS_DENIED', 'listener_denies_address');
  if (route.access !== undefined && !route.access(client))
    return localReply('GW_ADDRESS_DENIED', 'route_denies_address');
  // Upgrade and Connection are hop-by-hop; undici writes `connection: upgrade` and `upgrade: websocket` itself.
  stripHopByHop(headers);
  setForwardingHeaders(headers, headers, { peer, peerTrusted, proto: lg.proto, host });
  headers[settings.requestIdHeader] = id;
  if (settings.via) addVia(headers, req.httpVersionMajor, req.httpVersionMinor);
  if (target.authority !== undefined) headers.host = target.authority;
  route.requestHeaders?.apply(headers as Record<string, string>);
  const path =
    (route.rewrite === undefined ? target.path : route.rewrite(target.path)) +
    (target.query === '' ? '' : `?${target.query}`);

  if (route.gateway !== undefined) {
    runUpgradePolicies(
      req,
      socket,
      head,
      lg,
      tunnels,
      id,
      at,
      route,
      match.params,
      client,
      target.path,
      target.query,
      ws,
    );
    return undefined;
  }
  return dispatchUpgrade(req, socket, head, lg, tunnels, id, route, client, path, ws, headers, undefined);
}

/** Answers an upgrade on a redirecting listener or route with the redirect, and closes (like applyEdgeRules). */
function redirectUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  lg: ListenerGeneration,
  id: string,
  status: number,
  location: string,
  route: string | undefined,
): void {
  const settings = lg.runtime.settings;
  lg.logger.info({ msg: 'websocket', requestId: id, path: req.url, route, status, details: 'redirect_to_https' });
  let head = `HTTP/1.1 ${status} ${statusText(status)}\r\ndate: ${new Date().toUTCString()}\r\nlocation: ${location}\r\ncontent-length: 0\r\ncache-control: no-store\r\n${settings.requestIdHeader}: ${id}\r\nconnection: close\r\n`;
  for (const name in settings.replyHeaders) head += `${name}: ${settings.replyHeaders[name]}\r\n`;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  endAndLinger(socket, `${head}\r\n`);
}

/** The request phase of the route's policies on an upgrade; the tunnel opens only on `continue`. */
function runUpgradePolicies(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  lg: ListenerGeneration,
  tunnels: WebSocketTunnels,
  id: string,
  at: Refusal,
  route: CompiledRoute,
  params: Readonly<Record<string, string>>,
  client: string,
  normalizedPath: string,
  query: string,
  ws: CompiledRoute['config']['websocket'],
): void {
  const gw = route.gateway!;
  const conn = req.socket as import('node:tls').TLSSocket;
  const ex = new GatewayExchange(
    id,
    route.name,
    params,
    {
      address: client,
      port: conn.remotePort ?? 0,
      tls: conn.encrypted === true,
      certificateSubject: certificateSubjectOf(conn),
    },
    'GET',
    normalizedPath,
    query,
    req.headers,
  );
  gw.identity.strip(ex.request);
  Promise.resolve(gw.chain.runRequest(ex)).then(
    (verdict) => {
      if (verdict.kind === 'reply') return refuseUpgrade(req, socket, lg, id, verdict.reply, ex.replyHeaders, at);
      if (verdict.kind === 'respond') {
        return refuseUpgrade(
          req,
          socket,
          lg,
          id,
          localReply('GW_FORBIDDEN', 'policy_answered_upgrade'),
          ex.replyHeaders,
          at,
        );
      }
      gw.identity.forward(ex);
      const p = ex.request.path;
      const path =
        (route.rewrite === undefined ? p : route.rewrite(p)) + (ex.request.query === '' ? '' : `?${ex.request.query}`);
      const refused = dispatchUpgrade(
        req,
        socket,
        head,
        lg,
        tunnels,
        id,
        route,
        client,
        path,
        ws,
        req.headers,
        ex.replyHeaders,
      );
      if (refused !== undefined) refuseUpgrade(req, socket, lg, id, refused, ex.replyHeaders, at);
    },
    () => refuseUpgrade(req, socket, lg, id, localReply('GW_INTERNAL', 'policy_chain_failed'), undefined, at),
  );
}

/** What every attempt of one upgrade shares; a retry (connect failure…) sends the same request elsewhere. */
interface UpgradeRequest {
  readonly client: Duplex;
  readonly head: Buffer;
  readonly lg: UpgradeGeneration;
  readonly tunnels: WebSocketTunnels;
  readonly id: string;
  readonly route: CompiledRoute;
  readonly clientAddress: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly idle: number;
  readonly offer: Offer;
  readonly hint: { hashKey?: string; exclude?: Set<Target> };
  readonly replyHeaders: Readonly<Record<string, string>> | undefined;
  readonly startedAt: number;
  /** Attempts made so far. */
  tries: number;
  /** `Set-Cookie` for the 101 when the pool is sticky and the client was not (validly) pinned. */
  setCookie: string | undefined;
}

/** Picks a target and sends the upgrade; returns the local reply when no target can take it. */
function dispatchUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  lg: UpgradeGeneration,
  tunnels: WebSocketTunnels,
  id: string,
  route: CompiledRoute,
  client: string,
  path: string,
  ws: CompiledRoute['config']['websocket'],
  headers: IncomingHttpHeaders,
  replyHeaders: Readonly<Record<string, string>> | undefined,
): LocalReply | undefined {
  const pool = route.upstream!.pool;
  const up: UpgradeRequest = {
    client: socket,
    head,
    lg,
    tunnels,
    id,
    route,
    clientAddress: client,
    path,
    headers,
    idle: typeof ws === 'object' ? ws.idleTimeout : DEFAULT_WEBSOCKET_IDLE_MS,
    offer: offerOf(req),
    hint: pool.hashOn === 'client-ip' ? { hashKey: client } : {},
    replyHeaders,
    startedAt: performance.now(),
    tries: 0,
    setCookie: undefined,
  };
  // Session affinity holds for upgrades too (a Socket.IO client upgrades on the backend that served its
  // polling requests): a valid cookie pins the target, as for any request.
  const pinned = pool.sticky === undefined ? undefined : pinnedTarget(pool.sticky, headers);
  return attemptUpgrade(up, pinned, pinned !== undefined);
}

/**
 * Sends one attempt of `up` to `next` (or a picked target); returns the local reply when there is none.
 * `pinned`: `next` is the client's own sticky target (no new cookie).
 */
function attemptUpgrade(up: UpgradeRequest, next: Target | undefined, pinned = false): LocalReply | undefined {
  const upstream = up.route.upstream!;
  const pool = upstream.pool;
  const hint = up.hint.hashKey === undefined && up.hint.exclude === undefined ? NO_HINT : up.hint;
  const picked = next ?? pool.pick(hint);
  if (picked === undefined) return noTargetReply(pool, hint, up.tries > 0);
  if (pool.sticky !== undefined && !pinned) up.setCookie = stickyCookie(pool.sticky, picked, up.headers);
  if (!up.route.preserveHost) up.headers.host = upstream.hostHeader(picked);
  const handler = new UpgradeHandler(up, picked);
  handler.end = pool.begin(picked, up.tries > 0);
  up.tries++;
  upstream.dispatcher(picked).dispatch(
    {
      origin: picked.origin,
      method: 'GET',
      path: up.path,
      headers: up.headers as Record<string, string>,
      upgrade: 'websocket',
    },
    handler,
  );
  return undefined;
}

/** After a failed attempt that sent the client nothing: tries another target when the pool's retries allow. */
function retryUpgrade(up: UpgradeRequest, failed: Target, outcome: AttemptOutcome): boolean {
  const pool = up.route.upstream!.pool;
  if (up.client.destroyed || !pool.retry.canRetry('GET', outcome, up.tries)) return false;
  up.hint.exclude ??= new Set();
  up.hint.exclude.add(failed);
  const next = pool.pick(up.hint);
  if (next === undefined) return false;
  return attemptUpgrade(up, next) === undefined;
}

/** Counts a refused upgrade in the request metrics, like the access log does for every other local reply. */
function countRefusal(
  lg: ListenerGeneration,
  route: string | undefined,
  target: string | undefined,
  reply: LocalReply,
  startedAt: number,
): void {
  metricsOf(lg.logger)?.upgradeRefused(
    {
      route,
      status: reply.status,
      code: reply.code,
      details: reply.details,
      target,
      retries: 0,
      startedAt,
      clientAborted: false,
    },
    performance.now(),
  );
}

function destroyOnError(this: Duplex): void {
  this.destroy();
}

/** undici's dispatch handler for one upgrade attempt (legacy callback API, as the forwarder uses). */
class UpgradeHandler implements Dispatcher.DispatchHandler {
  readonly #up: UpgradeRequest;
  readonly #target: Target;
  end: ((outcome: AttemptOutcome) => void) | undefined = undefined;
  #abort: ((err?: Error) => void) | undefined = undefined;
  #status = 0;
  #headSent = false;
  #upgraded = false;
  #resume: (() => void) | undefined = undefined;
  #awaitingDrain = false;

  constructor(up: UpgradeRequest, target: Target) {
    this.#up = up;
    this.#target = target;
    up.client.once('close', () => {
      if (!this.#upgraded) this.#abort?.(new Error('client closed'));
    });
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#up.client.destroyed) abort(new Error('client closed'));
  }

  onUpgrade(statusCode: number, rawHeaders: RawHeaders | null, upstream: Duplex): void {
    this.#upgraded = true;
    const up = this.#up;
    const client = up.client;
    const raw = rawHeaders ?? [];
    // RFC 6455 §4.1: what a client would fail the connection for. Refused here, it is a clear 502 and no
    // tunnel to a backend that is not speaking WebSocket.
    const invalid = checkUpstreamSwitch(raw, up.offer);
    if (invalid !== undefined) {
      upstream.destroy();
      this.#settle({ kind: 'reset' });
      if (client.destroyed) return;
      this.#refuse(localReply('GW_UPSTREAM_BAD_RESPONSE', invalid));
      return;
    }
    this.#settle({ kind: 'response', status: statusCode });
    this.#status = statusCode;
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    // The upstream's headers (Sec-WebSocket-Accept / -Protocol / -Extensions as sent) minus hop-by-hop ones,
    // its Server and request id; Upgrade and Connection are this hop's (RFC 9110 §7.8).
    let head = 'HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n';
    head += this.#headerLines(raw);
    if (up.setCookie !== undefined) head += `set-cookie: ${up.setCookie}\r\n`;
    client.write(`${head}\r\n`);
    // Bytes the client sent after its request, before the 101 (frames it did not wait to send).
    if (up.head.length > 0) upstream.write(up.head);
    const startedAt = up.startedAt;
    up.tunnels.connect(client, upstream, up.idle, () => this.#log(performance.now() - startedAt));
  }

  onHeaders(statusCode: number, rawHeaders: RawHeaders, resume: () => void): boolean {
    if (statusCode < 200) return true;
    // Not upgraded: relay the answer; the client connection closes after it (it is in an unknown state).
    this.#status = statusCode;
    this.#resume = resume;
    this.#headSent = true;
    const cookie = this.#up.setCookie === undefined ? '' : `set-cookie: ${this.#up.setCookie}\r\n`;
    this.#up.client.write(
      `HTTP/1.1 ${statusCode} ${statusText(statusCode)}\r\n${this.#headerLines(rawHeaders)}${cookie}connection: close\r\n\r\n`,
    );
    return true;
  }

  onData(chunk: Buffer): boolean {
    const client = this.#up.client;
    if (client.write(chunk)) return true;
    if (!this.#awaitingDrain) {
      this.#awaitingDrain = true;
      client.once('drain', () => {
        this.#awaitingDrain = false;
        this.#resume?.();
      });
    }
    return false;
  }

  onComplete(): void {
    this.#settle({ kind: 'response', status: this.#status });
    endAndLinger(this.#up.client);
    this.#log(performance.now() - this.#up.startedAt);
  }

  onError(err: Error & { code?: string }): void {
    const client = this.#up.client;
    const { reply, outcome } = upgradeError(err);
    this.#settle(client.destroyed ? { kind: 'cancelled' } : outcome);
    if (this.#headSent || client.destroyed) {
      client.destroy();
      return;
    }
    // Nothing reached the client yet: another target may take it (nginx's proxy_next_upstream, Envoy's retries).
    if (retryUpgrade(this.#up, this.#target, outcome)) return;
    this.#refuse(reply);
  }

  /** The upstream's end-to-end headers as lines, plus the route's response header rules and ours. */
  #headerLines(raw: RawHeaders): string {
    const up = this.#up;
    const flat = filterResponseHeaders(raw, up.lg.runtime.settings, up.id);
    let lines = '';
    if (up.route.responseHeaders === undefined && up.replyHeaders === undefined) {
      for (let i = 0; i < flat.length; i += 2) lines += `${flat[i]}: ${flat[i + 1]}\r\n`;
      return lines;
    }
    const headers: Record<string, string | string[]> =
      up.route.responseHeaders === undefined ? flatToObject(flat) : up.route.responseHeaders.applyToFlat(flat);
    if (up.replyHeaders !== undefined) Object.assign(headers, up.replyHeaders);
    for (const name in headers) {
      const value = headers[name]!;
      if (Array.isArray(value)) for (const v of value) lines += `${name}: ${v}\r\n`;
      else lines += `${name}: ${value}\r\n`;
    }
    return lines;
  }

  #refuse(reply: LocalReply): void {
    const up = this.#up;
    const settings = up.lg.runtime.settings;
    this.#status = reply.status;
    up.lg.logger.info({
      msg: 'websocket',
      requestId: up.id,
      route: up.route.name,
      target: this.#target.key,
      status: reply.status,
      code: reply.code,
      details: reply.details,
    });
    countRefusal(up.lg, up.route.name, this.#target.key, reply, up.startedAt);
    const extra =
      up.replyHeaders === undefined ? settings.replyHeaders : { ...settings.replyHeaders, ...up.replyHeaders };
    writeSocketReply(up.client, reply, up.id, settings.requestIdHeader, extra);
  }

  #settle(outcome: AttemptOutcome): void {
    const end = this.end;
    if (end === undefined) return;
    this.end = undefined;
    end(outcome);
  }

  #log(durationMs: number): void {
    const up = this.#up;
    up.lg.logger.info({
      msg: 'websocket',
      requestId: up.id,
      client: up.clientAddress,
      route: up.route.name,
      target: this.#target.key,
      status: this.#status,
      retries: up.tries - 1,
      durationMs: Math.round(durationMs),
    });
  }
}

/**
 * An `http2: true` target that negotiated h2 and does not offer extended CONNECT (RFC 8441) cannot take the
 * upgrade: a 502, but not a failure of the target (it serves requests well; passive health must not eject it).
 */
function upgradeError(err: Error & { code?: string }): ReturnType<typeof replyForUpstreamError> {
  if (err.code === 'UND_ERR_INFO' && err.message.includes('Extended CONNECT')) {
    return {
      reply: localReply('GW_UPSTREAM_BAD_RESPONSE', 'websocket_h2_without_extended_connect'),
      outcome: { kind: 'cancelled' },
    };
  }
  return replyForUpstreamError(err);
}

function statusText(status: number): string {
  return STATUS_CODES[status] ?? 'Status';
}
