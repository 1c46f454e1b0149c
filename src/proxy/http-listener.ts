/**
 * @module An HTTP/1.1 listener. The listening socket outlives config generations: a reload swaps the
 * generation it reads, and in-flight requests finish on the one they started with.
 */

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ListenerConfig } from '../config/schema.ts';
import { ERROR_CODES, type ErrorCode } from '../errors.ts';
import { handleRequest } from './handle-request.ts';
import type { ListenerGeneration } from './listener-generation.ts';
import { PROBLEM_JSON, problemBody } from './local-reply.ts';

export class HttpListener {
  readonly name: string;
  readonly server: Server;
  generation: ListenerGeneration;
  readonly #config: ListenerConfig;

  constructor(config: ListenerConfig, generation: ListenerGeneration) {
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
      (req: IncomingMessage, res: ServerResponse) => handleRequest(req, res, this.generation, false),
    );
    this.server.maxRequestsPerSocket = limits.maxRequestsPerConnection;
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) =>
      handleRequest(req, res, this.generation, true),
    );
    this.server.on('clientError', (err: Error & { code?: string }, socket: Socket) => this.#onClientError(err, socket));
    this.server.on('connect', (_req: IncomingMessage, socket: Socket) => {
      writeRawProblem(socket, 'GW_METHOD_NOT_ALLOWED');
    });
  }

  get address(): string {
    return this.#config.address;
  }

  listen(): Promise<void> {
    const { host, port } = splitAddress(this.#config.address);
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.server.once('error', onError);
      this.server.listen({ host: host || undefined, port, backlog: 1024 }, () => {
        this.server.off('error', onError);
        resolve();
      });
    });
  }

  /** The port actually bound (useful with port 0). */
  get port(): number {
    const a = this.server.address();
    return typeof a === 'object' && a !== null ? a.port : 0;
  }

  /** Stops accepting; idle keep-alive connections close now, busy ones after their response. */
  stopAccepting(): void {
    this.generation.draining = true;
    this.server.close();
    this.server.closeIdleConnections();
    // Connections busy now turn idle as their responses finish: close them as they do.
    const sweep = setInterval(() => this.server.closeIdleConnections(), 50);
    sweep.unref();
    this.server.once('close', () => clearInterval(sweep));
  }

  forceClose(): void {
    this.server.closeAllConnections();
  }

  #onClientError(err: Error & { code?: string }, socket: Socket): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    let code: ErrorCode = 'GW_BAD_REQUEST';
    if (err.code === 'HPE_HEADER_OVERFLOW') code = 'GW_HEADERS_TOO_LARGE';
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

function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const upgrade = req.headers.upgrade;
  return typeof upgrade === 'string' && upgrade.toLowerCase() === 'websocket';
}

/** A problem reply written straight to a socket the HTTP parser gave up on; the connection closes after it. */
function writeRawProblem(socket: Socket, code: ErrorCode): void {
  const { status, title } = ERROR_CODES[code];
  const body = problemBody({ status, code, details: '' }, randomUUID());
  socket.end(
    `HTTP/1.1 ${status} ${title}\r\ncontent-type: ${PROBLEM_JSON}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `cache-control: no-store\r\nconnection: close\r\n\r\n${body}`,
  );
}

export function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}
