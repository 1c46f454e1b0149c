/**
 * @module An HTTP listener: HTTP/1.1, plus HTTP/2 by ALPN on `https` listeners (TLS front, certificates by SNI)
 * or by prior knowledge on `http` listeners with `h2c: true`. The listening socket outlives config
 * generations: a reload swaps the generation it reads, and in-flight requests finish on the one they started
 * with. WebSocket upgrades go to websocket.ts; redirect and HSTS rules (redirect.ts) run before the proxy.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { Server as TlsServer } from 'node:tls';
import type { ListenerConfig } from '../config/schema.ts';
import { ERROR_CODES, type ErrorCode, localReply } from '../errors.ts';
import type { Logger } from '../observe/logger.ts';
import { createH2Side, destroyH2, drainH2, type H2Side } from './h2-server.ts';
import { createH2cFront } from './h2c.ts';
import { applyClientAuth, createTlsFront } from './https-listener.ts';
import type { ListenerGeneration } from './listener-generation.ts';
import { PROBLEM_JSON, problemBody, sendLocalReply } from './local-reply.ts';
import { type EdgeRules, serveRequest } from './redirect.ts';
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
        requireHostHeader: true,
        joinDuplicateHeaders: false,
        noDelay: true,
        // Only WebSocket upgrades become tunnels; `Upgrade: h2c` and others are served as plain requests.
        shouldUpgradeCallback: (req: IncomingMessage) => isWebSocketUpgrade(req),
      } as Parameters<typeof createServer>[0],
      (req: IncomingMessage, res: ServerResponse) => serveRequest(this.generation, req, res, false),
    );
    this.server.maxRequestsPerSocket = limits.maxRequestsPerConnection;
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) =>
      serveRequest(this.generation, req, res, true),
    );
    this.server.on('clientError', (err: Error & { code?: string }, socket: Socket) => this.#onClientError(err, socket));
    this.server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
      // RFC 9110 §10.1.1: only 100-continue is defined; anything else cannot be met.
      const id = randomUUID();
      const gen = this.generation;
      gen.logger.info({
        msg: 'request',
        requestId: id,
        method: req.method,
        path: req.url,
        status: 417,
        code: 'GW_EXPECTATION_FAILED',
      });
      res.shouldKeepAlive = false;
      sendLocalReply(
        res,
        localReply('GW_EXPECTATION_FAILED', 'unsupported_expectation'),
        id,
        gen.runtime.settings.requestIdHeader,
      );
    });
    this.server.on('connect', (_req: IncomingMessage, socket: Socket) => {
      writeRawProblem(socket, 'GW_METHOD_NOT_ALLOWED');
    });
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) =>
      proxyWebSocket(req, socket, head, this.generation, this.webSockets),
    );

    const https = config.protocol === 'https';
    this.#h2 = (https && config.http2) || (!https && config.h2c) ? createH2Side(config, this) : undefined;
    if (https) {
      this.certificates = new CertStore(config.tls!, {
        listener: config.name,
        baseDir: options.baseDir,
        logger: options.logger ?? generation.logger,
      });
      this.#front = createTlsFront(config, this.certificates, this.server, this.#h2?.server);
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
      else writeRawProblem(socket, 'GW_TOO_MANY_CONNECTIONS');
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

  #onClientError(err: Error & { code?: string }, socket: Socket): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    let code: ErrorCode = 'GW_BAD_REQUEST';
    if (err.code === 'HPE_HEADER_OVERFLOW') code = requestLineTooLong(err) ? 'GW_URI_TOO_LONG' : 'GW_HEADERS_TOO_LARGE';
    else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') code = 'GW_REQUEST_TIMEOUT';
    else if (err.code === 'HPE_UNEXPECTED_CONTENT_LENGTH' || err.code === 'HPE_INVALID_TRANSFER_ENCODING')
      code = 'GW_BAD_REQUEST';
    const httpMessage = (socket as unknown as { _httpMessage?: ServerResponse })._httpMessage;
    if (httpMessage?.headersSent) {
      socket.destroy();
      return;
    }
    this.generation.logger.info({
      msg: 'client error',
      listener: this.name,
      code: err.code,
      status: ERROR_CODES[code].status,
    });
    writeRawProblem(socket, code);
  }
}

/**
 * Whether the head overflowed in its request line: then the target is what is too long (414, RFC 9110
 * §15.5.15), not the header fields (431). The parser hands over the bytes it had seen.
 */
function requestLineTooLong(err: Error & { rawPacket?: Buffer }): boolean {
  const raw = err.rawPacket;
  if (raw === undefined) return false;
  const eol = raw.indexOf('\r\n');
  return eol === -1 || eol > 4096;
}

function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}

/** A problem reply written straight to a socket the HTTP parser gave up on; the connection closes after it. */
function writeRawProblem(socket: Socket, code: ErrorCode): void {
  const { status } = ERROR_CODES[code];
  const body = problemBody({ status, code, details: '' }, randomUUID());
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: ${PROBLEM_JSON}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `cache-control: no-store\r\nconnection: close\r\n\r\n${body}`,
  );
}

export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}
