/**
 * @module An HTTP listener: HTTP/1.1, plus HTTP/2 by ALPN on `https` listeners (TLS front, certificates by SNI)
 * or by prior knowledge on `http` listeners with `h2c: true`. The listening socket outlives config
 * generations: a reload swaps the generation it reads, and in-flight requests finish on the one they started
 * with. WebSocket upgrades go to websocket.ts; redirect and HSTS rules (redirect.ts) run before the proxy.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import type { ListenerConfig } from '../config/schema.ts';
import { ERROR_CODES, type ErrorCode, type LocalReply, localReply } from '../errors.ts';
import type { Logger } from '../observe/logger.ts';
import { ExchangeLog, noteRefusal } from './access-log.ts';
import { unmapAddress } from './forwarded.ts';
import { createH2Side, destroyH2, drainH2, type H2Side } from './h2-server.ts';
import { createH2cFront } from './h2c.ts';
import { checkHttp1Request, clientErrorCode, MAX_HEADER_FIELDS } from './http1-checks.ts';
import { applyClientAuth, createTlsFront } from './https-listener.ts';
import type { ListenerGeneration } from './listener-generation.ts';
import { ALLOWED_METHODS, PROBLEM_JSON, problemBody, sendLocalReply } from './local-reply.ts';
import { type EdgeRules, serveRequest } from './redirect.ts';
import { newRequestId } from './request-id.ts';
import { ConnectionsPerClient } from './shield.ts';
import { CertStore } from './tls/cert-store.ts';
import { proxyWebSocket } from './websocket.ts';
import { WebSocketTunnels } from './websocket-tunnel.ts';

/** A listener generation plus the redirect / HSTS rules compiled for it (redirect.ts). */
export type HttpListenerGeneration = ListenerGeneration & { readonly edge?: EdgeRules | undefined };

export interface HttpListenerOptions {
  /** For `https` listeners: certificate changes are logged here. */
  readonly logger?: Logger;
  /** Directory relative certificate paths are read from (default: the working directory). */
  readonly baseDir?: string;
}

export class HttpListener {
  readonly name: string;
  /** The HTTP/1 server. It listens itself on plain listeners; behind a TLS or h2c front it never does. */
  readonly server: Server;
  generation: HttpListenerGeneration;
  /** Open WebSocket tunnels (count and forced close). */
  readonly webSockets = new WebSocketTunnels();
  /** The certificates of an `https` listener. */
  readonly certificates: CertStore | undefined;
  /** Open connections per client address (`limits.maxConnectionsPerClient`). */
  readonly perClient: ConnectionsPerClient;
  readonly #config: ListenerConfig;
  /** What listens: `server`, or the TLS / h2c front that hands connections to it and to `#h2`. */
  readonly #front: NetServer;
  readonly #h2: H2Side | undefined;
  /** Pipelined requests waiting for their turn, per connection. */
  readonly #pipelined = new WeakMap<Socket, number>();
  /** Connections whose parser failed and that were answered (or will be, after their queued responses). */
  readonly #failedSockets = new WeakSet<Socket>();
  /** Requests served per connection, for `maxRequestsPerConnection`. */
  readonly #served = new WeakMap<Socket, number>();
  /**
   * `limits.maxRequestsPerConnection`, counted here rather than by Node's `maxRequestsPerSocket`: Node sends
   * `Connection: close` on the last response but leaves the connection open, and answers a raw 503 to a
   * request pipelined past it. Here the last response closes the connection (nginx's `keepalive_requests`).
   */
  maxRequestsPerConnection: number;

  /** Throws when an https listener's certificates cannot be loaded. */
  constructor(config: ListenerConfig, generation: HttpListenerGeneration, options: HttpListenerOptions = {}) {
    this.name = config.name;
    this.#config = config;
    this.generation = generation;
    const limits = config.limits;
    const shortest = Math.min(limits.headersTimeout || 60_000, limits.requestTimeout || 60_000);
    this.server = createServer(
      {
        maxHeaderSize: limits.maxHeaderSize,
        headersTimeout: limits.headersTimeout,
        requestTimeout: limits.requestTimeout,
        keepAliveTimeout: limits.idleTimeout,
        // Slow-client timeouts are enforced by a periodic sweep; sweep often enough to honour short ones.
        connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(shortest / 4))),
        // Host is checked by http1-checks.ts, which answers problem+json (Node's own 400 has no body).
        requireHostHeader: false,
        joinDuplicateHeaders: false,
        noDelay: true,
        // Only WebSocket upgrades become tunnels; `Upgrade: h2c` and others are served as plain requests.
        shouldUpgradeCallback: (req: IncomingMessage) => isWebSocketUpgrade(req),
      } as Parameters<typeof createServer>[0],
      (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res, CONTINUE_NONE),
    );
    this.maxRequestsPerConnection = limits.maxRequestsPerConnection;
    // One more than allowed, so that a request with too many fields is seen (and refused), not truncated.
    this.server.maxHeadersCount = MAX_HEADER_FIELDS + 1;
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) =>
      this.#onRequest(req, res, CONTINUE_EXPECTED),
    );
    this.server.on('clientError', (err: Error & { code?: string }, socket: Socket) => this.#onClientError(err, socket));
    // RFC 9110 §10.1.1: only 100-continue is defined; anything else cannot be met (417).
    this.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) =>
      this.#onRequest(req, res, CONTINUE_UNMET),
    );
    this.server.on('connect', (req: IncomingMessage, socket: Socket) => {
      this.#rawRefusal(socket, 'GW_METHOD_NOT_ALLOWED', req);
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      // RFC 9112 §9.3: an upgrade pipelined behind a request still being answered waits for that answer (Node
      // hands it over at once); its 101 would go first, and the earlier answer into the tunnel.
      afterResponses(socket, () => {
        const refusal = checkHttp1Request(req);
        if (refusal === undefined) proxyWebSocket(req, socket, head, this.generation, this.webSockets);
        else this.#rawRefusal(socket, refusal.code, req);
      });
    });

    const https = config.protocol === 'https';
    this.#h2 = (https && config.http2) || (!https && config.h2c) ? createH2Side(config, this) : undefined;
    if (https) {
      this.certificates = new CertStore(config.tls!, {
        listener: config.name,
        baseDir: options.baseDir,
        logger: options.logger ?? generation.logger,
      });
      this.#front = createTlsFront(config, this.certificates, this.server, this.#h2?.server, (code, socket) =>
        this.generation.logger.info({ msg: 'client error', listener: this.name, client: socket.remoteAddress, code }),
      );
    } else {
      this.certificates = undefined;
      this.#front =
        this.#h2 === undefined
          ? this.server
          : createH2cFront({ http1: this.server, h2: this.#h2.server }, limits.headersTimeout);
    }
    this.perClient = new ConnectionsPerClient(limits.maxConnectionsPerClient);
    this.#front.prependListener('connection', (socket: Socket) => {
      if (this.perClient.admit(socket)) return;
      this.generation.logger.info({
        msg: 'connection refused',
        listener: this.name,
        client: socket.remoteAddress,
        code: 'GW_TOO_MANY_CONNECTIONS',
      });
      // A TLS client cannot read a plain-text answer: just close.
      if (https) socket.destroy();
      else this.#rawRefusal(socket, 'GW_TOO_MANY_CONNECTIONS');
    });
    // An HTTP server fed by a front never emits 'listening'; its idle and slow-client sweeps start on it.
    if (this.#front !== this.server) this.server.emit('listening');
  }

  get address(): string {
    return this.#config.address;
  }

  listen(): Promise<void> {
    const { host, port } = splitAddress(this.#config.address);
    const front = this.#front;
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      front.once('error', onError);
      front.listen({ host: host || undefined, port, backlog: 1024 }, () => {
        front.off('error', onError);
        resolve();
      });
    });
  }

  /** The port actually bound (useful with port 0). */
  get port(): number {
    const a = this.#front.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  /**
   * Resolves once the listener stopped accepting and its last connection (WebSockets included) closed.
   * Call it before `stopAccepting()`.
   */
  closed(): Promise<void> {
    return new Promise((resolve) => this.#front.once('close', () => resolve()));
  }

  /**
   * A reload changed this https listener's `tls` block: loads the new certificates (throws, changing
   * nothing, when they do not load) and returns the function that puts them in use.
   */
  prepareTls(config: ListenerConfig): () => void {
    const store = this.certificates;
    if (store === undefined || config.tls === undefined) return () => {};
    const commit = store.prepare(config.tls);
    return () => {
      commit();
      applyClientAuth(this.#front as TlsServer, config);
    };
  }

  /** Stops accepting; idle keep-alive connections close now, busy ones after their response. */
  stopAccepting(): void {
    this.generation.draining = true;
    if (this.#front !== this.server) this.#front.close();
    this.server.close();
    this.server.closeIdleConnections();
    this.certificates?.close();
    if (this.#h2 !== undefined) drainH2(this.#h2);
    // Connections busy now turn idle as their responses finish: close them as they do.
    const sweep = setInterval(() => this.server.closeIdleConnections(), 50);
    sweep.unref();
    this.#front.once('close', () => clearInterval(sweep));
  }

  forceClose(): void {
    this.server.closeAllConnections();
    if (this.#h2 !== undefined) destroyH2(this.#h2);
    this.webSockets.destroyAll();
  }

  /**
   * Every HTTP/1 request enters here. Pipelined requests are served one at a time, in order (RFC 9112 §9.3):
   * one that arrives while an earlier response is still being produced waits for its turn, so when that
   * earlier exchange ends the connection (a refusal, `Connection: close`) the later one is never forwarded.
   */
  #onRequest(req: IncomingMessage, res: ServerResponse, expect: ContinueMode): void {
    if (res.socket === null) {
      this.#queue(req, res, expect);
      return;
    }
    // The connection is closing after an earlier response (Node goes on parsing what the client already
    // sent): this request is never answered, so it must not be forwarded either.
    if (!req.socket.writable) return;
    const refusal =
      checkHttp1Request(req) ??
      (expect === CONTINUE_UNMET ? localReply('GW_EXPECTATION_FAILED', 'unsupported_expectation') : undefined);
    if (refusal !== undefined) {
      this.#refuse(req, res, refusal);
      return;
    }
    // RFC 9112 §6.1: no Transfer-Encoding in a response to HTTP/1.0 (Node would chunk one when the client
    // sent `TE: chunked`); a body of unknown length is delimited by closing the connection instead.
    if (req.httpVersionMinor === 0) res.useChunkedEncodingByDefault = false;
    // An Upgrade other than WebSocket is ignored (RFC 9110 §7.8) and served as a plain request, but the parser
    // stops reading the connection after it: close it once answered rather than leave it hanging.
    if (req.headers.upgrade !== undefined) res.shouldKeepAlive = false;
    const max = this.maxRequestsPerConnection;
    if (max > 0) {
      const served = (this.#served.get(req.socket) ?? 0) + 1;
      this.#served.set(req.socket, served);
      if (served >= max) res.shouldKeepAlive = false;
    }
    serveRequest(this.generation, req, res, expect === CONTINUE_EXPECTED);
  }

  /**
   * Holds a pipelined request until the responses before it are sent. Node parses everything the client sent
   * at once, so a client that pipelines more than {@link MAX_PIPELINED} requests is flooding: its connection
   * is dropped rather than letting it pile up memory.
   */
  #queue(req: IncomingMessage, res: ServerResponse, expect: ContinueMode): void {
    const socket = req.socket;
    const queued = (this.#pipelined.get(socket) ?? 0) + 1;
    if (queued > MAX_PIPELINED) {
      if (!socket.destroyed) {
        this.generation.logger.info({ msg: 'client error', listener: this.name, code: 'too_many_pipelined' });
        socket.destroy();
      }
      return;
    }
    this.#pipelined.set(socket, queued);
    res.once('socket', () => {
      this.#pipelined.set(socket, this.#pipelined.get(socket)! - 1);
      this.#onRequest(req, res, expect);
    });
  }

  /** A local reply to a request refused before it reached the proxy; the connection closes after it. */
  #refuse(req: IncomingMessage, res: ServerResponse, reply: LocalReply): void {
    const gen = this.generation;
    const settings = gen.runtime.settings;
    const socket = req.socket;
    const log = new ExchangeLog(
      gen.logger,
      newRequestId(),
      unmapAddress(socket.remoteAddress),
      req.method!,
      req.url!,
      socket.bytesRead,
    );
    log.status = reply.status;
    log.code = reply.code;
    log.details = reply.details;
    res.shouldKeepAlive = false;
    res.once('close', () => log.write(res));
    sendLocalReply(res, reply, log.id, settings.requestIdHeader, settings.replyHeaders);
  }

  /**
   * The parser gave up on the connection: answer once, then close. An error in a request that follows
   * complete ones still being answered (pipelining) is answered after them, so their responses are not lost.
   */
  #onClientError(err: Error & { code?: string }, socket: Socket): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    // A TLS error after the handshake (a forged record, a fatal alert, a refused renegotiation): the session
    // is dead, so no HTTP answer can reach the client.
    if (err.code?.startsWith('ERR_SSL_') === true) {
      this.generation.logger.info({ msg: 'client error', listener: this.name, code: err.code });
      socket.destroy();
      return;
    }
    // The parser stays failed: later bytes raise the error again.
    if (this.#failedSockets.has(socket)) return;
    this.#failedSockets.add(socket);
    const inFlight = (socket as unknown as { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
    if (err.code === 'HPE_CLOSED_CONNECTION') {
      // Bytes after a request with `Connection: close` (or HTTP/1.0): ignored, and the connection closes
      // once that request is answered (RFC 9112 §9.6).
      if (inFlight === undefined) socket.end();
      return;
    }
    const code = clientErrorCode(err);
    this.generation.logger.info({
      msg: 'client error',
      listener: this.name,
      code: err.code,
      status: ERROR_CODES[code].status,
    });
    if (inFlight !== undefined) {
      if (inFlight.req?.complete === true) {
        afterResponses(socket, () => this.#rawRefusal(socket, code));
        return;
      }
      // The error is in the body of the request being answered.
      if (inFlight.headersSent) {
        // A refusal already written in full is flushed; a response cut short is aborted, never passed off
        // as complete.
        if (inFlight.writableEnded) socket.end();
        else socket.destroy();
        return;
      }
      // A body too slow: the exchange sees its client go (and aborts its upstream request), but it was Portico
      // that ended it, so it logs the 408, not 499. (A body cut off by the client stays the client's 499.)
      if (code === 'GW_REQUEST_TIMEOUT') noteRefusal(inFlight, ERROR_CODES[code].status, code);
      writeRawProblem(socket, code, newRequestId());
      return;
    }
    this.#rawRefusal(socket, code);
  }

  /**
   * A problem reply written straight to the connection, outside any exchange (a head too slow, too large or
   * unreadable, a connection over the per-client limit), and its access-log line: such refusals are logged
   * like every other, as HAProxy logs its `<BADREQ>` ones. Without a parsed request there is no request line
   * to show: `-`.
   */
  #rawRefusal(socket: Socket, code: ErrorCode, req?: IncomingMessage): void {
    const id = newRequestId();
    const client = unmapAddress(socket.remoteAddress);
    const log = new ExchangeLog(this.generation.logger, id, client, req?.method ?? '-', req?.url ?? '-', 0);
    log.status = ERROR_CODES[code].status;
    log.code = code;
    writeRawProblem(socket, code, id);
    // No ServerResponse exists: the log reads only these (bytesIn from the connection).
    log.write({ headersSent: true, statusCode: log.status, socket, req: undefined } as unknown as ServerResponse);
  }
}

/** The most requests one connection may have waiting behind the one being answered (pipelining). */
const MAX_PIPELINED = 64;

/** What `Expect` asked of a request: nothing, `100-continue`, or an expectation that cannot be met. */
type ContinueMode = 0 | 1 | 2;
const CONTINUE_NONE = 0;
const CONTINUE_EXPECTED = 1;
const CONTINUE_UNMET = 2;

/** Runs `then` once every response queued on the connection has been sent (or the connection closed). */
function afterResponses(socket: Socket, then: () => void): void {
  const current = (socket as unknown as { _httpMessage?: ServerResponse | null })._httpMessage;
  if (current === null || current === undefined) {
    if (socket.writable) then();
    return;
  }
  // 'close' comes after Node's own 'finish' handler has handed the socket to the next queued response.
  current.once('close', () => afterResponses(socket, then));
}

function isWebSocketUpgrade(req: IncomingMessage): boolean {
  // RFC 9110 §7.8: Upgrade in an HTTP/1.0 request is ignored (served as a plain request).
  if (req.httpVersionMinor === 0) return false;
  const upgrade = req.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}

/** A problem reply written straight to a socket the HTTP parser gave up on; the connection closes after it. */
function writeRawProblem(socket: Socket, code: ErrorCode, id = newRequestId()): void {
  const { status } = ERROR_CODES[code];
  const body = problemBody({ status, code, details: '' }, id);
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ndate: ${new Date().toUTCString()}\r\ncontent-type: ${PROBLEM_JSON}\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\n${status === 405 ? `allow: ${ALLOWED_METHODS}\r\n` : ''}` +
      `${status === 429 ? 'retry-after: 1\r\n' : ''}connection: close\r\n\r\n${body}`,
  );
}

export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}
