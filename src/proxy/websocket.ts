/**
 * @module WebSocket proxying (RFC 6455 over HTTP/1.1 Upgrade, RFC 9110 §7.8): the listener's `upgrade` event
 * ends here (HTTP/1.1 requests with `Upgrade: websocket` and `Connection: upgrade` only).
 *
 * The opening handshake is checked (websocket-handshake.ts), then the request is routed like any request
 * (same normalisation and router), refused when the route says `websocket: false`, passed through the route's
 * policies (request phase: authentication, rate limits…), sent to a target of the route's pool through
 * undici's `upgrade` dispatch with the usual forwarding headers and request id. A `101` that is a valid
 * WebSocket switch joins the two sockets (websocket-tunnel.ts); any other answer is relayed to the client, and
 * the connection closes after it. Every refusal is a problem+json local reply.
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
import { requestIdFrom } from './request-id.ts';
import { filterResponseHeaders, flatToObject, type RawHeaders } from './response-headers.ts';
import { certificateSubjectOf } from './tls/client-cert.ts';
import type { CompiledRoute, ProxySettingsRuntime } from './types.ts';
import { replyForUpstreamError, unavailableReply } from './upstream-errors.ts';
import { checkClientHandshake, checkUpstreamSwitch } from './websocket-handshake.ts';
import { endAndLinger, type WebSocketTunnels, writeSocketReply } from './websocket-tunnel.ts';

/** Default idle timeout of a tunnel when the route says just `websocket: true`. */
export const DEFAULT_WEBSOCKET_IDLE_MS = 600_000;

const NO_HINT = Object.freeze({});

/** Handles one `upgrade` event of an HTTP/1 server (the listener only upgrades `Upgrade: websocket`). */
export function proxyWebSocket(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  lg: ListenerGeneration,
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
  lg: ListenerGeneration,
  tunnels: WebSocketTunnels,
  id: string,
  at: Refusal,
): LocalReply | undefined {
  const rt = lg.runtime;
  const settings = rt.settings;
  const headers = req.headers;
  if (lg.draining) return localReply('GW_SHUTTING_DOWN', 'draining');
  const invalid = checkClientHandshake(req);
  if (invalid !== undefined) return invalid;
  const target = normalizePath(req.url!);
  if (!target.ok) return localReply('GW_BAD_PATH', `bad_path:${target.reason}`);
  const host = target.authority ?? headers.host;
  const match = rt.router.match('GET', host, target.path, headers);
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
  return dispatchUpgrade(socket, head, lg, tunnels, id, route, client, path, ws, headers, undefined);
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

/** Picks a target and sends the upgrade; returns the local reply when no target can take it. */
function dispatchUpgrade(
  socket: Duplex,
  head: Buffer,
  lg: ListenerGeneration,
  tunnels: WebSocketTunnels,
  id: string,
  route: CompiledRoute,
  client: string,
  path: string,
  ws: CompiledRoute['config']['websocket'],
  headers: IncomingHttpHeaders,
  replyHeaders: Readonly<Record<string, string>> | undefined,
): LocalReply | undefined {
  const upstream = route.upstream!;
  const settings = lg.runtime.settings;
  const pool = upstream.pool;
  const picked = pool.pick(pool.hashOn === 'client-ip' ? { hashKey: client } : NO_HINT);
  if (picked === undefined) {
    const overloaded = pool.noTargetReason(NO_HINT) === 'overloaded';
    return overloaded
      ? localReply('GW_UPSTREAM_OVERLOADED', 'circuit_open')
      : unavailableReply(pool, 'no_available_target');
  }
  if (!route.preserveHost) headers.host = upstream.hostHeader(picked);
  const idle = typeof ws === 'object' ? ws.idleTimeout : DEFAULT_WEBSOCKET_IDLE_MS;
  const key = String(headers['sec-websocket-key'] ?? '');
  const handler = new UpgradeHandler(socket, head, route, picked, settings, lg, tunnels, id, client, idle, key);
  handler.replyHeaders = replyHeaders;
  handler.end = pool.begin(picked);
  upstream
    .dispatcher(picked)
    .dispatch(
      { origin: picked.origin, method: 'GET', path, headers: headers as Record<string, string>, upgrade: 'websocket' },
      handler,
    );
  return undefined;
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
  readonly #client: Duplex;
  readonly #head: Buffer;
  readonly #route: CompiledRoute;
  readonly #target: Target;
  readonly #settings: ProxySettingsRuntime;
  readonly #lg: ListenerGeneration;
  readonly #tunnels: WebSocketTunnels;
  readonly #id: string;
  readonly #clientAddress: string;
  readonly #idle: number;
  readonly #key: string;
  readonly #startedAt = performance.now();
  end: ((outcome: AttemptOutcome) => void) | undefined = undefined;
  /** Headers the route's policies add to their answers (rate-limit state…). */
  replyHeaders: Readonly<Record<string, string>> | undefined = undefined;
  #abort: ((err?: Error) => void) | undefined = undefined;
  #status = 0;
  #headSent = false;
  #upgraded = false;
  #resume: (() => void) | undefined = undefined;
  #awaitingDrain = false;

  constructor(
    client: Duplex,
    head: Buffer,
    route: CompiledRoute,
    target: Target,
    settings: ProxySettingsRuntime,
    lg: ListenerGeneration,
    tunnels: WebSocketTunnels,
    id: string,
    clientAddress: string,
    idle: number,
    key: string,
  ) {
    this.#client = client;
    this.#head = head;
    this.#route = route;
    this.#target = target;
    this.#settings = settings;
    this.#lg = lg;
    this.#tunnels = tunnels;
    this.#id = id;
    this.#clientAddress = clientAddress;
    this.#idle = idle;
    this.#key = key;
    client.once('close', () => {
      if (!this.#upgraded) this.#abort?.(new Error('client closed'));
    });
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#client.destroyed) abort(new Error('client closed'));
  }

  onUpgrade(statusCode: number, rawHeaders: RawHeaders | null, upstream: Duplex): void {
    this.#upgraded = true;
    const client = this.#client;
    const raw = rawHeaders ?? [];
    // RFC 6455 §4.1: what a client would fail the connection for. Refused here, it is a clear 502 and no
    // tunnel to a backend that is not speaking WebSocket.
    const invalid = checkUpstreamSwitch(raw, this.#key);
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
    client.write(`${head}\r\n`);
    // Bytes the client sent after its request, before the 101 (frames it did not wait to send).
    if (this.#head.length > 0) upstream.write(this.#head);
    const startedAt = this.#startedAt;
    this.#tunnels.connect(client, upstream, this.#idle, () => this.#log(performance.now() - startedAt));
  }

  onHeaders(statusCode: number, rawHeaders: RawHeaders, resume: () => void): boolean {
    if (statusCode < 200) return true;
    // Not upgraded: relay the answer; the client connection closes after it (it is in an unknown state).
    this.#status = statusCode;
    this.#resume = resume;
    this.#headSent = true;
    this.#client.write(
      `HTTP/1.1 ${statusCode} ${statusText(statusCode)}\r\n${this.#headerLines(rawHeaders)}connection: close\r\n\r\n`,
    );
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.#client.write(chunk)) return true;
    if (!this.#awaitingDrain) {
      this.#awaitingDrain = true;
      this.#client.once('drain', () => {
        this.#awaitingDrain = false;
        this.#resume?.();
      });
    }
    return false;
  }

  onComplete(): void {
    this.#settle({ kind: 'response', status: this.#status });
    endAndLinger(this.#client);
    this.#log(performance.now() - this.#startedAt);
  }

  onError(err: Error & { code?: string }): void {
    const { reply, outcome } = replyForUpstreamError(err);
    this.#settle(this.#client.destroyed ? { kind: 'cancelled' } : outcome);
    if (this.#headSent || this.#client.destroyed) {
      this.#client.destroy();
      return;
    }
    this.#refuse(reply);
  }

  /** The upstream's end-to-end headers as lines, plus the route's response header rules and ours. */
  #headerLines(raw: RawHeaders): string {
    const flat = filterResponseHeaders(raw, this.#settings, this.#id);
    let lines = '';
    if (this.#route.responseHeaders === undefined && this.replyHeaders === undefined) {
      for (let i = 0; i < flat.length; i += 2) lines += `${flat[i]}: ${flat[i + 1]}\r\n`;
      return lines;
    }
    const headers: Record<string, string | string[]> =
      this.#route.responseHeaders === undefined ? flatToObject(flat) : this.#route.responseHeaders.applyToFlat(flat);
    if (this.replyHeaders !== undefined) Object.assign(headers, this.replyHeaders);
    for (const name in headers) {
      const value = headers[name]!;
      if (Array.isArray(value)) for (const v of value) lines += `${name}: ${v}\r\n`;
      else lines += `${name}: ${value}\r\n`;
    }
    return lines;
  }

  #refuse(reply: LocalReply): void {
    this.#status = reply.status;
    this.#lg.logger.info({
      msg: 'websocket',
      requestId: this.#id,
      route: this.#route.name,
      target: this.#target.key,
      status: reply.status,
      code: reply.code,
      details: reply.details,
    });
    countRefusal(this.#lg, this.#route.name, this.#target.key, reply, this.#startedAt);
    const extra =
      this.replyHeaders === undefined
        ? this.#settings.replyHeaders
        : { ...this.#settings.replyHeaders, ...this.replyHeaders };
    writeSocketReply(this.#client, reply, this.#id, this.#settings.requestIdHeader, extra);
  }

  #settle(outcome: AttemptOutcome): void {
    const end = this.end;
    if (end === undefined) return;
    this.end = undefined;
    end(outcome);
  }

  #log(durationMs: number): void {
    this.#lg.logger.info({
      msg: 'websocket',
      requestId: this.#id,
      client: this.#clientAddress,
      route: this.#route.name,
      target: this.#target.key,
      status: this.#status,
      durationMs: Math.round(durationMs),
    });
  }
}

function statusText(status: number): string {
  return STATUS_CODES[status] ?? 'Status';
}
