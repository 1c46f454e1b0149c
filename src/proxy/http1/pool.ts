/**
 * @module Portico's HTTP/1.1 client for one upstream origin: keep-alive connections, at most `connections` of
 * them, requests queued in order beyond that. It takes the same `dispatch(options, handler)` call and handler
 * callbacks as undici's Pool, which Portico uses where this client does not go (HTTP/2 upstreams).
 *
 * Why not undici here: on the proxy's hot path undici's layers (its request object, handler wrappers, the
 * WebAssembly parser's copies) cost about 60 CPU µs per request on the bench VM, more than everything Portico
 * itself does; this client writes a request in one system call and parses the answer with Node's own llhttp
 * (bench/RESULTS.md). The connection logic is in connection.ts.
 */
import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { UpstreamTls } from '../tls/upstream-tls.ts';
import {
  type ConnectionOwner,
  type DispatchHandler,
  type DispatchOptions,
  Http1Connection,
  onSocketRead,
  PendingRequest,
} from './connection.ts';
import { aborted, connectTimeout, UpstreamClientError } from './errors.ts';
import { ReadBuffer } from './read-buffer.ts';

export interface Http1PoolOptions {
  readonly connectTimeout: number;
  readonly responseTimeout: number;
  readonly idleTimeout: number;
  readonly keepAliveTimeout: number;
  readonly connections: number;
  readonly tls?: UpstreamTls | undefined;
  /** Largest response head accepted (undici's default, 16 KiB, unless set). */
  readonly maxHeaderSize?: number;
}

export class Http1Pool implements ConnectionOwner {
  /** `host[:port]` as a Host header, for requests that carry none. */
  readonly host: string;
  readonly responseTimeout: number;
  readonly idleTimeout: number;
  readonly keepAliveTimeout: number;
  readonly maxHeaderSize: number;
  readonly #hostname: string;
  readonly #port: number;
  readonly #tls: UpstreamTls | undefined;
  readonly #connectTimeout: number;
  readonly #limit: number;
  /** Idle connections, the most recently used last (reused first: it is the least likely to be closed). */
  readonly #idle: Http1Connection[] = [];
  readonly #connections = new Set<Http1Connection>();
  #connecting = 0;
  readonly #queue: PendingRequest[] = [];
  #closed = false;
  /** destroy(): connections still being made are dropped, not used. */
  #destroyed = false;
  #closing: Promise<void> | undefined = undefined;
  #onClosed: (() => void) | undefined = undefined;
  /** The newest TLS session ticket from this origin (`https://` targets). */
  #tlsSession: Buffer | undefined = undefined;

  constructor(origin: string, options: Http1PoolOptions) {
    const url = new URL(origin);
    const secure = url.protocol === 'https:';
    this.host = url.host;
    this.#hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.#port = Number(url.port) || (secure ? 443 : 80);
    this.#tls = secure ? (options.tls ?? DEFAULT_TLS) : undefined;
    this.#connectTimeout = options.connectTimeout;
    this.responseTimeout = options.responseTimeout;
    this.idleTimeout = options.idleTimeout;
    this.keepAliveTimeout = Math.max(options.keepAliveTimeout, 1);
    this.#limit = Math.max(options.connections, 1);
    this.maxHeaderSize = options.maxHeaderSize ?? 16384;
  }

  /** Sends a request; the handler hears how it goes. Always true (undici's signature: no back-pressure here). */
  dispatch(opts: DispatchOptions, handler: DispatchHandler): boolean {
    const req = new PendingRequest(opts, handler);
    if (this.#closed) {
      queueMicrotask(() => handler.onError?.(new UpstreamClientError('UND_ERR_CLOSED', 'client closed')));
      return true;
    }
    // An upgrade on a plain pool wants a connection of its own (#runOn): a new one while there is room.
    const conn = this.#needsOwnConnection(req) && this.#hasRoom() ? undefined : this.#takeIdle();
    if (conn !== undefined) {
      if (!this.#runOn(conn, req)) this.release(conn);
    } else if (this.#hasRoom()) this.#connect(req);
    else this.#queue.push(req);
    return true;
  }

  /** Stops taking requests; resolves once the ones in flight and queued are done and every connection is closed. */
  close(): Promise<void> {
    this.#closed = true;
    for (const conn of this.#idle.splice(0)) conn.close();
    this.#closing ??= new Promise((resolve) => {
      this.#onClosed = resolve;
    });
    this.#checkClosed();
    return this.#closing;
  }

  /** Closes everything now; queued requests fail. */
  destroy(): Promise<void> {
    this.#closed = true;
    this.#destroyed = true;
    for (const req of this.#queue.splice(0)) req.handler.onError?.(aborted());
    for (const conn of this.#connections) conn.destroy(aborted());
    return this.close();
  }

  release(conn: Http1Connection): void {
    // A loop, not a recursion: each queued request its client gave up on hands the connection straight back.
    for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) {
      if (this.#runOn(conn, next)) return;
    }
    if (this.#closed) {
      conn.close();
      return;
    }
    this.#idle.push(conn);
    conn.startKeepAlive();
  }

  retry(req: PendingRequest): void {
    if (this.#destroyed) {
      req.handler.onError?.(aborted());
      return;
    }
    this.#queue.unshift(req);
    this.#serveQueue();
  }

  remove(conn: Http1Connection): void {
    if (!this.#connections.delete(conn)) return;
    const at = this.#idle.indexOf(conn);
    if (at >= 0) this.#idle.splice(at, 1);
    this.#serveQueue();
    this.#checkClosed();
  }

  #takeIdle(): Http1Connection | undefined {
    let conn = this.#idle.pop();
    while (conn?.dead) conn = this.#idle.pop();
    return conn;
  }

  /** Starts queued requests on connections freed or made room for. */
  #serveQueue(): void {
    while (this.#queue.length > 0) {
      const conn = this.#takeIdle();
      if (conn !== undefined) {
        if (!this.#runOn(conn, this.#queue.shift()!)) this.release(conn);
      } else if (this.#hasRoom()) this.#connect(this.#queue.shift()!);
      else return;
    }
  }

  #hasRoom(): boolean {
    return this.#connections.size + this.#connecting < this.#limit;
  }

  /**
   * Plain connections read into buffers of their own, which a socket handed on after a 101 cannot keep
   * (connection.ts): an upgrade runs on a new connection, which leaves the pool at its 101 anyway.
   */
  #needsOwnConnection(req: PendingRequest): boolean {
    return req.opts.upgrade != null && this.#tls === undefined;
  }

  /**
   * Runs `req` on `conn`, an idle connection; an upgrade that needs its own connection takes its place. False
   * when `req` was given up at once and `conn` is still free (see Http1Connection.run).
   */
  #runOn(conn: Http1Connection, req: PendingRequest): boolean {
    if (!this.#needsOwnConnection(req)) return conn.run(req);
    this.#connections.delete(conn);
    conn.close();
    this.#connect(req);
    return true;
  }

  #connect(req: PendingRequest): void {
    this.#connecting++;
    const tls = this.#tls;
    // A plain connection reads into its own buffer (read-buffer.ts); TLS sockets take no `onread`.
    const reader = tls === undefined && req.opts.upgrade == null ? new ReadBuffer() : undefined;
    const socket: Socket =
      tls === undefined
        ? netConnect({
            host: this.#hostname,
            port: this.#port,
            onread: reader === undefined ? undefined : { buffer: reader.next, callback: onSocketRead },
          })
        : tlsConnect({
            host: this.#hostname,
            port: this.#port,
            servername: tls.servername ?? (isIP(this.#hostname) === 0 ? this.#hostname : undefined),
            ca: tls.ca,
            cert: tls.cert,
            key: tls.key,
            rejectUnauthorized: tls.rejectUnauthorized,
            ALPNProtocols: ['http/1.1'],
            // The last ticket the target gave: a new connection resumes rather than redoes the handshake.
            session: this.#tlsSession,
          });
    if (tls !== undefined) socket.on('session', (session: Buffer) => this.#rememberSession(session));
    socket.setNoDelay(true);
    const timer =
      this.#connectTimeout > 0 ? setTimeout(() => socket.destroy(connectTimeout()), this.#connectTimeout) : undefined;
    const onError = (err: Error): void => {
      clearTimeout(timer);
      this.#connecting--;
      socket.destroy();
      // Whatever failed before the connection existed (a refusal, a TLS handshake): nothing was sent.
      req.handler.onError?.(Object.assign(err, { connectFailure: true }));
      this.#serveQueue();
      this.#checkClosed();
    };
    socket.once(tls === undefined ? 'connect' : 'secureConnect', () => {
      clearTimeout(timer);
      this.#connecting--;
      socket.removeListener('error', onError);
      if (this.#destroyed) {
        socket.destroy();
        req.handler.onError?.(aborted());
        this.#checkClosed();
        return;
      }
      const conn = new Http1Connection(socket, this, reader);
      this.#connections.add(conn);
      if (!conn.run(req)) this.release(conn);
    });
    socket.once('error', onError);
  }

  #rememberSession(session: Buffer): void {
    this.#tlsSession = session;
  }

  #checkClosed(): void {
    if (!this.#closed || this.#onClosed === undefined) return;
    if (this.#connections.size > 0 || this.#connecting > 0 || this.#queue.length > 0) return;
    const done = this.#onClosed;
    this.#onClosed = undefined;
    done();
  }
}

const DEFAULT_TLS: UpstreamTls = {
  id: '',
  ca: undefined,
  servername: undefined,
  cert: undefined,
  key: undefined,
  rejectUnauthorized: true,
};
