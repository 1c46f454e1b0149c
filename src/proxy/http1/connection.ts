/**
 * @module One HTTP/1.1 connection to an upstream: writes a request, parses its response with llhttp, and goes
 * back to its pool when both ends of the exchange are complete and the response allows keep-alive.
 *
 * One request at a time (no pipelining). A response completes the request only when the bytes after it are
 * exactly none: a backend that sends more than it framed (a second response, or the start of one) has its
 * connection closed, so those bytes can never become the answer to the next request (response splitting).
 * Timers are three `Timeout`s per connection, refreshed rather than re-created; each checks on firing that
 * the state it guards still holds.
 */
import type { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import {
  aborted,
  headersOverflow,
  idleTimeout,
  requestBodyFailed,
  responseTimeout,
  UpstreamClientError,
  UpstreamClosedError,
} from './errors.ts';
import { createResponseParser, type ParserCallbacks, type ResponseParser } from './llhttp.ts';
import type { ReadBuffer } from './read-buffer.ts';
import { type Framing, type HeaderValue, InvalidRequestError, requestHead } from './request-head.ts';

/** A request body read through events: a client request relay, or any Readable. */
export interface BodySource extends EventEmitter {
  pause(): unknown;
  resume(): unknown;
  destroy?(err?: Error): unknown;
}

export interface DispatchOptions {
  readonly method: string;
  readonly path: string;
  readonly headers?: Readonly<Record<string, HeaderValue>> | null;
  readonly body?: Buffer | string | BodySource | null;
  /** Ask for a protocol switch (`websocket`): a 101 hands the socket to `onUpgrade`. */
  readonly upgrade?: string | null;
  readonly origin?: unknown;
}

/** undici's dispatch handler contract (its legacy callback API), which every handler in Portico implements. */
export interface DispatchHandler {
  onConnect?(abort: (err?: Error) => void): void;
  /** Interim (1xx) heads too; returning false pauses the response until `resume` is called. */
  onHeaders?(statusCode: number, rawHeaders: string[], resume: () => void, statusText: string): boolean;
  onData?(chunk: Buffer): boolean;
  /**
   * Portico's own, preferred to onData where a handler has it: body bytes as a view of the connection's read
   * buffer, which its next read overwrites (read-buffer.ts). The handler is done with `chunk` when it returns,
   * or calls `keep()` first to keep it (the connection then reads into a new buffer). Without this method a
   * handler is given a copy.
   */
  onDataView?(chunk: Buffer, keep: () => void): boolean;
  onComplete?(trailers: string[]): void;
  onError?(err: Error): void;
  onUpgrade?(statusCode: number, rawHeaders: string[], socket: Duplex): void;
}

/** One dispatched request: its options, its handler, and the abort function the handler is given. */
export class PendingRequest {
  readonly opts: DispatchOptions;
  readonly handler: DispatchHandler;
  connection: Http1Connection | undefined = undefined;
  readonly abort: (err?: Error) => void;
  /** Given to the handler with each head: reads on after a pause, and does nothing once this request is over. */
  readonly resume: () => void;
  /** Moved once to another connection before a byte of it was written (see Http1Connection#giveBack). */
  movedOnce = false;
  constructor(opts: DispatchOptions, handler: DispatchHandler) {
    this.opts = opts;
    this.handler = handler;
    this.abort = (err?: Error): void => this.connection?.abortRequest(this, err);
    this.resume = (): void => this.connection?.resumeRequest(this);
  }
}

/** What a connection needs from its pool. */
export interface ConnectionOwner {
  readonly host: string;
  readonly responseTimeout: number;
  readonly idleTimeout: number;
  readonly keepAliveTimeout: number;
  readonly maxHeaderSize: number;
  /** The connection finished an exchange and may serve another. */
  release(conn: Http1Connection): void;
  /** The connection is gone (closed, broken or handed to an upgrade). */
  remove(conn: Http1Connection): void;
  /** A request this connection never wrote a byte of goes first to another connection. */
  retry(req: PendingRequest): void;
}

const NO_TRAILERS: string[] = [];

export class Http1Connection implements ParserCallbacks {
  readonly socket: Socket;
  /** Set when the socket reads into a buffer of its own (`onread`, plain TCP): its reads come to onData as views. */
  readonly #reader: ReadBuffer | undefined;
  readonly #owner: ConnectionOwner;
  readonly #parser: ResponseParser;
  /** The request in flight; null while idle. */
  #request: PendingRequest | null = null;
  /** The final (non-1xx) head of the request in flight was delivered. */
  #final = false;
  #keepAlive = false;
  /** The server's own idle limit from `Keep-Alive: timeout=N` less a second, in ms (0: none said; -1: none left). */
  #serverKeepAlive = 0;
  #upgraded = false;
  #upgradeHeaders: string[] = NO_TRAILERS;
  /** A response completed inside the current `execute`. */
  #completed = false;
  /** The connection cannot serve another request (a protocol error, bytes nobody asked for, a close). */
  dead = false;
  #socketError: Error | undefined = undefined;
  /** Header pairs delivered apart from their head (long heads) or after the body (trailers). */
  #pairs: string[] = NO_TRAILERS;
  #body: BodySource | undefined = undefined;
  /**
   * The head of a request with a streamed body, held until the body's first bytes (or its end) so both leave
   * in one write, and so a body refused on its first chunk (over the route's limit) never reaches the upstream.
   */
  #heldHead: string | undefined = undefined;
  /** Bytes of a Content-Length body still to send; -1 when chunked. */
  #bodyRemaining = 0;
  #paused = false;
  /** The socket's bytesRead when the request in flight was given to it. */
  #readBefore = 0;
  /** Inside the handler's onConnect: an abort then has written nothing. */
  #handingOver = false;
  /** Bytes of a Content-Length response body still to relay without the parser (0: the parser reads). */
  #bodyLeft = 0;
  #responseTimer: NodeJS.Timeout | undefined = undefined;
  #idleTimer: NodeJS.Timeout | undefined = undefined;
  #keepAliveTimer: NodeJS.Timeout | undefined = undefined;

  /**
   * `reader`: the buffer the socket was connected with as its `onread` (whose callback is {@link onSocketRead}).
   * Such a connection never carries an upgrade: after a 101 the socket is handed on, and one reading through
   * `onread` emits no 'data' for its new owner.
   */
  constructor(socket: Socket, owner: ConnectionOwner, reader?: ReadBuffer) {
    this.socket = socket;
    this.#owner = owner;
    this.#reader = reader;
    this.#parser = createResponseParser(this, owner.maxHeaderSize);
    (socket as Socket & { [kConnection]?: Http1Connection })[kConnection] = this;
    if (reader === undefined) socket.on('data', onSocketData);
    socket.on('error', onSocketError);
    socket.on('close', onSocketClose);
    socket.on('drain', onSocketDrain);
  }

  get busy(): boolean {
    return this.#request !== null;
  }

  /**
   * Sends `req` on this (connected, idle) connection. Returns whether the connection was taken: false when
   * `req` was given up before a byte of it was written (its client left while it queued, its head was
   * invalid), and the connection is still free. The pool then offers it to the next request in a loop: a
   * queue of thousands of cancelled requests must not become a recursion thousands deep.
   */
  run(req: PendingRequest): boolean {
    this.#request = req;
    this.#final = false;
    this.#completed = false;
    this.#serverKeepAlive = 0;
    this.#readBefore = this.socket.bytesRead;
    req.connection = this;
    this.#handingOver = true;
    req.handler.onConnect?.(req.abort);
    this.#handingOver = false;
    // Given up in onConnect: free again, unless that broke the connection.
    if (this.#request !== req) return this.dead;
    const { method, path, headers, body, upgrade } = req.opts;
    let framing: Framing = NO_BODY;
    let stream: BodySource | undefined;
    let head: string;
    try {
      if (body != null) {
        if (Buffer.isBuffer(body)) framing = body.length > 0 ? { kind: 'length', length: body.length } : NO_BODY;
        else if (typeof body === 'string') framing = { kind: 'length', length: Buffer.byteLength(body) };
        else {
          stream = body;
          const declared = headers?.['content-length'] ?? headers?.['Content-Length'];
          framing = declared === undefined ? CHUNKED : { kind: 'length', length: declaredLength(declared) };
        }
      }
      head = requestHead(method, path, headers, framing, this.#owner.host, upgrade ?? undefined);
    } catch (err) {
      this.#request = null;
      req.connection = undefined;
      req.handler.onError?.(err as Error);
      return false;
    }
    // After a switch was asked for, the upstream's parser may be in any state: never reused.
    if (upgrade != null) this.dead = true;
    const socket = this.socket;
    if (stream === undefined) {
      if (framing.kind === 'length') {
        socket.cork();
        socket.write(head, 'latin1');
        socket.write(body as Buffer | string);
        socket.uncork();
      } else socket.write(head, 'latin1');
      this.#armResponseTimer();
    } else {
      this.#heldHead = head;
      this.#body = stream;
      this.#bodyRemaining = framing.kind === 'length' ? framing.length : -1;
      (stream as BodySource & { [kConnection]?: Http1Connection })[kConnection] = this;
      stream.on('data', onBodyData);
      stream.on('end', onBodyEnd);
      stream.on('error', onBodyError);
      stream.on('close', onBodyClose);
      stream.resume();
    }
    return true;
  }

  /** The handler gave up on `req` (or a per-try timeout did): the connection cannot be trusted with the rest. */
  abortRequest(req: PendingRequest, err: Error | undefined): void {
    if (this.#request !== req) return;
    if (this.#handingOver) {
      // Given up before a byte was written (its client left while it queued): the connection stays good, and
      // `run` tells the pool so.
      this.#request = null;
      req.connection = undefined;
      req.handler.onError?.(err ?? aborted());
      return;
    }
    this.#fail(err ?? aborted());
  }

  /** Fails the request in flight, if any, with `err` and closes the connection (pool destroy). */
  destroy(err: Error): void {
    if (this.#request !== null) this.#fail(err);
    else this.close();
  }

  /** Closes an idle connection (keep-alive expiry, pool close). */
  close(): void {
    this.dead = true;
    this.socket.destroy();
  }

  // llhttp callbacks

  onHeaders(pairs: string[]): void {
    if (this.#request === null) return;
    if (this.#pairs === NO_TRAILERS) this.#pairs = pairs;
    else for (const p of pairs) this.#pairs.push(p);
  }

  onHeadersComplete(
    major: number,
    minor: number,
    given: string[] | undefined,
    _method: unknown,
    _url: unknown,
    status: number,
    statusText: string,
    _upgrade: boolean,
    keepAlive: boolean,
  ): number {
    const req = this.#request;
    if (req === null) {
      // A response after the one that was asked for: a misframed or hostile backend.
      this.dead = true;
      return 0;
    }
    if (major !== 1 || minor > 1) {
      // llhttp takes any digit pair; only HTTP/1.0 and 1.1 can answer on this connection (RFC 9112 §2.3).
      this.#fail(new UpstreamClientError('HPE_INVALID_VERSION', 'response version is not HTTP/1.x'));
      return 0;
    }
    if (status < 100) {
      // llhttp reads any three digits; `000` or `099` is no status at all (RFC 9110 §15), and taken for an
      // interim response it would leave the request waiting for a final one until the response timeout.
      this.#fail(new UpstreamClientError('HPE_INVALID_STATUS', 'response status below 100'));
      return 0;
    }
    let headers = given;
    if (headers === undefined) {
      headers = this.#pairs;
      this.#pairs = NO_TRAILERS;
    }
    if (minor === 0 && hasField(headers, 'transfer-encoding')) {
      // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing (an HTTP/1.0 recipient
      // would read the chunk framing as body), so the response is refused, as Portico refuses such a request.
      this.#fail(new UpstreamClientError('HPE_INVALID_TRANSFER_ENCODING', 'transfer-encoding in HTTP/1.0'));
      return 0;
    }
    if (status === 101) {
      if (req.opts.upgrade == null) {
        this.#fail(new UpstreamClosedError('bad upgrade', this.socket.bytesRead));
        return 0;
      }
      this.#upgraded = true;
      this.#upgradeHeaders = headers;
      return 0;
    }
    if (status < 200) {
      req.handler.onHeaders?.(status, headers, req.resume, statusText);
      return 0;
    }
    this.#final = true;
    this.#keepAlive = keepAlive;
    if (keepAlive) {
      this.#serverKeepAlive = keepAliveHint(headers);
      // `timeout=1`: the server may close as soon as this response ends; reusing it would race that close.
      if (this.#serverKeepAlive < 0) this.#keepAlive = false;
    }
    const more = req.handler.onHeaders?.(status, headers, req.resume, statusText);
    if (this.#request !== req) return 0;
    if (more === false) this.#pause();
    if (req.opts.method === 'HEAD') {
      // A backend may send the body anyway, in a later read where it would pass for the next response:
      // a HEAD's connection is not reused (as undici does).
      this.dead = true;
      return 1;
    }
    const length = contentLength(headers);
    if (status === 204 || status === 304) {
      // Never a body (RFC 9110 §6.4.1); one announced anyway (a length, a transfer coding) may still come, so
      // the connection goes after it.
      if (length !== 0 && (length > 0 || hasField(headers, 'transfer-encoding'))) this.dead = true;
      return 0;
    }
    // A Content-Length body is relayed as slices of the socket's reads (relayBody) rather than through
    // llhttp, which copies every body chunk: told to stop after the head (2), the parser ends the message there.
    if (length > 0) {
      this.#bodyLeft = length;
      return 2;
    }
    return 0;
  }

  onBody(chunk: Buffer): void {
    const req = this.#request;
    if (req === null || !this.#final) return;
    if (req.handler.onData?.(chunk) === false && this.#request === req) this.#pause();
  }

  onMessageComplete(): void {
    const req = this.#request;
    // With a body left to relay, this is llhttp ending the head it was told to stop after.
    if (req === null || !this.#final || this.#bodyLeft > 0) return;
    this.#complete(req);
  }

  #complete(req: PendingRequest): void {
    this.#request = null;
    req.connection = undefined;
    // Paused for a slow client on the last read: the response is whole, and the connection reads for the next.
    if (this.#paused) this.#resumeReading();
    const trailers = this.#pairs;
    this.#pairs = NO_TRAILERS;
    // llhttp reads framing and connection fields in a trailer section as if they were in the head (a
    // `Connection: close` there makes it refuse whatever the connection brings next, the next request's
    // response). RFC 9110 §6.5.1 forbids them there: such a response's connection is closed, not reused.
    if (trailers.length > 0 && hasHopField(trailers)) this.dead = true;
    if (this.#body !== undefined) {
      // Answered before the upload ended (RFC 9112 §9.3): the connection is mid-request, never reused.
      this.dead = true;
      this.#detachBody(true);
    }
    this.#completed = true;
    req.handler.onComplete?.(trailers);
  }

  // socket events

  onData(chunk: Buffer): void {
    if (this.#request === null) {
      // Bytes on an idle connection: nothing can make sense of them later.
      this.close();
      return;
    }
    if (this.#heldHead !== undefined) {
      // Nothing of the request went out yet, so these bytes answer nobody: as on an idle connection.
      this.#giveBack();
      return;
    }
    if (this.#bodyLeft > 0) {
      this.#relayBody(chunk);
      return;
    }
    this.#completed = false;
    const parsed = this.#parser.execute(chunk);
    if (typeof parsed !== 'number') {
      this.#fail(parsed.code === 'HPE_HEADER_OVERFLOW' ? headersOverflow() : parsed);
      return;
    }
    if (this.#upgraded) {
      this.#handOver(chunk.subarray(parsed));
      return;
    }
    if (this.#bodyLeft > 0 && this.#request !== null) {
      if (parsed < chunk.length) this.#relayBody(chunk.subarray(parsed));
      else this.#armIdleTimer();
      return;
    }
    if (this.#completed) {
      this.#completed = false;
      // finish() fails when bytes after the response began another message.
      if (this.dead || !this.#keepAlive || this.#parser.finish() !== undefined) this.close();
      else this.#owner.release(this);
      return;
    }
    if (this.#final && this.#request !== null) this.#armIdleTimer();
  }

  onClose(): void {
    this.dead = true;
    this.#owner.remove(this);
    if (this.#upgraded) return;
    const req = this.#request;
    if (req !== null && this.#heldHead !== undefined) this.#giveBack();
    else if (req !== null) {
      if (this.#socketError !== undefined) this.#fail(this.#socketError);
      else if (this.#final) {
        // A body read to EOF ends here; any other body cut short is an error.
        const err = this.#parser.finish();
        if (this.#request === req) this.#fail(err ?? new UpstreamClosedError('other side closed', this.#raceBytes()));
      } else this.#fail(new UpstreamClosedError('other side closed', this.#raceBytes()));
    }
    clearTimeout(this.#responseTimer);
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#keepAliveTimer);
    setImmediate(closeParser, this.#parser);
  }

  onError(err: Error): void {
    // How many bytes this connection had read tells a keep-alive race (it had answered before) from a fresh
    // connection failing (upstream-errors.ts isStaleConnectionError).
    if (this.#socketError === undefined) {
      this.#socketError = Object.assign(err, { socket: { bytesRead: this.#raceBytes() } });
    }
  }

  onDrain(): void {
    if (this.#body !== undefined) this.#body.resume();
  }

  /** Idle in the pool: closes after the keep-alive time (or the server's own limit, a second early). */
  startKeepAlive(): void {
    const ms =
      this.#serverKeepAlive > 0
        ? Math.min(this.#owner.keepAliveTimeout, this.#serverKeepAlive)
        : this.#owner.keepAliveTimeout;
    if (this.#keepAliveTimer === undefined || this.#serverKeepAlive > 0) {
      clearTimeout(this.#keepAliveTimer);
      this.#keepAliveTimer = setTimeout(onKeepAliveTimeout, ms, this);
      this.#keepAliveTimer.unref();
    } else this.#keepAliveTimer.refresh();
  }

  keepAliveExpired(): void {
    if (this.#request === null) this.close();
  }

  // request body events

  bodyData(chunk: Buffer): void {
    if (chunk.length === 0) return;
    const socket = this.socket;
    if (this.#bodyRemaining >= 0) {
      this.#bodyRemaining -= chunk.length;
      if (this.#bodyRemaining < 0) {
        this.#fail(requestBodyFailed());
        return;
      }
    }
    let ok: boolean;
    if (this.#bodyRemaining >= 0 && this.#heldHead === undefined) ok = socket.write(chunk);
    else {
      socket.cork();
      this.#writeHeldHead();
      if (this.#bodyRemaining < 0) {
        socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
        socket.write(chunk);
        ok = socket.write('\r\n', 'latin1');
      } else ok = socket.write(chunk);
      socket.uncork();
    }
    if (!this.#final) this.#armResponseTimer();
    if (!ok) this.#body?.pause();
  }

  bodyEnd(): void {
    if (this.#bodyRemaining > 0) {
      this.#fail(requestBodyFailed());
      return;
    }
    this.socket.cork();
    this.#writeHeldHead();
    if (this.#bodyRemaining < 0) this.socket.write('0\r\n\r\n', 'latin1');
    this.socket.uncork();
    this.#detachBody(false);
    if (!this.#final) this.#armResponseTimer();
  }

  #writeHeldHead(): void {
    const head = this.#heldHead;
    if (head === undefined) return;
    this.#heldHead = undefined;
    this.socket.write(head, 'latin1');
  }

  bodyFailed(err: Error | undefined): void {
    this.#fail(err ?? requestBodyFailed());
  }

  timedOut(kind: 'response' | 'idle'): void {
    // A timer left from an earlier request; a held head has not started the response timer yet.
    if (this.#request === null || this.#heldHead !== undefined) return;
    if (kind === 'response' && !this.#final) this.#fail(responseTimeout());
    else if (kind === 'idle' && this.#final && !this.#paused) this.#fail(idleTimeout());
  }

  // internals

  /**
   * What a failure reports as the connection's bytes read, from which upstream-errors.ts tells a keep-alive
   * race (a connection that had answered before, closed as this request went out) from a target failing: 0
   * when the request in flight had response bytes of its own (a 1xx, a partial head), since the upstream then
   * got it and died with it, which no resend on a fresh connection may hide.
   */
  #raceBytes(): number {
    const read = this.socket.bytesRead;
    return read > this.#readBefore ? 0 : read;
  }

  /** `length` bytes of a Content-Length body (or the start of one): on to the handler, then the next read. */
  #relayBody(chunk: Buffer): void {
    const req = this.#request!;
    let piece = chunk;
    let extra = false;
    if (chunk.length > this.#bodyLeft) {
      piece = chunk.subarray(0, this.#bodyLeft);
      extra = true;
    }
    this.#bodyLeft -= piece.length;
    const handler = req.handler;
    const reader = this.#reader;
    let more: boolean | undefined;
    if (reader === undefined) more = handler.onData?.(piece);
    else if (handler.onDataView !== undefined) more = handler.onDataView(piece, reader.keep);
    else more = handler.onData?.(Buffer.from(piece));
    if (this.#request !== req) return;
    if (this.#bodyLeft > 0) {
      if (more === false) this.#pause();
      this.#armIdleTimer();
      return;
    }
    // Bytes past the declared length are nobody's response: the connection goes.
    if (extra) this.dead = true;
    // The head was stopped with 2 (onHeadersComplete): the parser must start over (llhttp.ts `reset`).
    this.#parser.reset();
    this.#complete(req);
    if (this.dead || !this.#keepAlive) this.close();
    else this.#owner.release(this);
  }

  /**
   * The connection failed (closed, or sent bytes out of turn) while a streamed request's head was held back
   * for its body: not a byte was written, so the request goes to another connection, once, on a connection
   * that had served before (a fresh one failing is the target's failure).
   */
  #giveBack(): void {
    const req = this.#request!;
    if (req.movedOnce || this.socket.bytesRead === 0) {
      this.#fail(new UpstreamClosedError('other side closed', this.socket.bytesRead));
      return;
    }
    req.movedOnce = true;
    this.#request = null;
    this.#heldHead = undefined;
    req.connection = undefined;
    const body = this.#body;
    this.#detachBody(false);
    body?.pause();
    this.close();
    this.#owner.retry(req);
  }

  #fail(err: Error): void {
    const req = this.#request;
    this.#request = null;
    this.#bodyLeft = 0;
    this.#heldHead = undefined;
    this.close();
    if (this.#body !== undefined) this.#detachBody(true);
    if (req === null) return;
    req.connection = undefined;
    req.handler.onError?.(err);
  }

  #detachBody(destroy: boolean): void {
    const body = this.#body;
    if (body === undefined) return;
    this.#body = undefined;
    body.removeListener('data', onBodyData);
    body.removeListener('end', onBodyEnd);
    body.removeListener('error', onBodyError);
    body.removeListener('close', onBodyClose);
    if (destroy) body.destroy?.();
  }

  #pause(): void {
    this.#paused = true;
    this.socket.pause();
  }

  resumeRequest(req: PendingRequest): void {
    if (this.#request === req) this.#resumeReading();
  }

  #resumeReading(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#idleTimer?.refresh();
    this.socket.resume();
  }

  #armResponseTimer(): void {
    const ms = this.#owner.responseTimeout;
    if (ms <= 0) return;
    if (this.#responseTimer === undefined) {
      this.#responseTimer = setTimeout(onResponseTimeout, ms, this);
      this.#responseTimer.unref();
    } else this.#responseTimer.refresh();
  }

  #armIdleTimer(): void {
    const ms = this.#owner.idleTimeout;
    if (ms <= 0) return;
    if (this.#idleTimer === undefined) {
      this.#idleTimer = setTimeout(onIdleTimeout, ms, this);
      this.#idleTimer.unref();
    } else this.#idleTimer.refresh();
  }

  /** A 101: the socket leaves the pool for the handler, with the bytes that followed the head. */
  #handOver(rest: Buffer): void {
    const req = this.#request!;
    this.#request = null;
    req.connection = undefined;
    this.dead = true;
    const socket = this.socket;
    socket.removeListener('data', onSocketData);
    socket.removeListener('error', onSocketError);
    socket.removeListener('close', onSocketClose);
    socket.removeListener('drain', onSocketDrain);
    clearTimeout(this.#responseTimer);
    clearTimeout(this.#idleTimer);
    clearTimeout(this.#keepAliveTimer);
    this.#owner.remove(this);
    setImmediate(closeParser, this.#parser);
    socket.pause();
    if (rest.length > 0) socket.unshift(rest);
    if (req.handler.onUpgrade === undefined) {
      socket.destroy();
      req.handler.onError?.(new UpstreamClientError('UND_ERR_SOCKET', 'bad upgrade'));
      return;
    }
    req.handler.onUpgrade(101, this.#upgradeHeaders, socket);
  }
}

const kConnection = Symbol('portico.http1Connection');
const NO_BODY: Framing = { kind: 'none' };
const CHUNKED: Framing = { kind: 'chunked' };

function connectionOf(emitter: object): Http1Connection {
  return (emitter as { [kConnection]: Http1Connection })[kConnection];
}

function onSocketData(this: Socket, chunk: Buffer): void {
  connectionOf(this).onData(chunk);
}
/** `onread`'s callback: `nread` bytes at the start of the connection's read buffer. */
export function onSocketRead(this: Socket, nread: number, buffer: Buffer): boolean {
  connectionOf(this).onData(buffer.subarray(0, nread));
  return true;
}
function onSocketError(this: Socket, err: Error): void {
  connectionOf(this).onError(err);
}
function onSocketClose(this: Socket): void {
  connectionOf(this).onClose();
}
function onSocketDrain(this: Socket): void {
  connectionOf(this).onDrain();
}
function onBodyData(this: BodySource, chunk: Buffer): void {
  connectionOf(this).bodyData(chunk);
}
function onBodyEnd(this: BodySource): void {
  connectionOf(this).bodyEnd();
}
function onBodyError(this: BodySource, err: Error): void {
  connectionOf(this).bodyFailed(err);
}
function onBodyClose(this: BodySource): void {
  // A close before `end`: the body was cut off (its client went away).
  connectionOf(this).bodyFailed(undefined);
}
function onResponseTimeout(conn: Http1Connection): void {
  conn.timedOut('response');
}
function onIdleTimeout(conn: Http1Connection): void {
  conn.timedOut('idle');
}
function onKeepAliveTimeout(conn: Http1Connection): void {
  conn.keepAliveExpired();
}
function closeParser(parser: ResponseParser): void {
  parser.close();
}

/** A stream body's Content-Length as the caller gave it; anything but one decimal number fails the request. */
function declaredLength(value: HeaderValue): number {
  const text = String(value);
  if (!/^\d{1,15}$/.test(text)) throw new InvalidRequestError('invalid content-length');
  return Number(text);
}

/** Whether a field named `lower` (lower case) is among `headers`. */
function hasField(headers: string[], lower: string): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length === lower.length && name.toLowerCase() === lower) return true;
  }
  return false;
}

/** Fields llhttp acts on wherever they appear (RFC 9110 §6.5.1 keeps them out of trailers). */
const HOP_FIELDS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'upgrade',
  'transfer-encoding',
  'content-length',
]);

/** Whether a connection-management or framing field is among `fields`. */
function hasHopField(fields: string[]): boolean {
  for (let i = 0; i < fields.length; i += 2) if (HOP_FIELDS.has(fields[i]!.toLowerCase())) return true;
  return false;
}

/**
 * The response's Content-Length, or -1 when it has none or a Transfer-Encoding (llhttp has already refused
 * both together, and any malformed or repeated length), or one too large to count exactly.
 */
function contentLength(headers: string[]): number {
  let length = -1;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length === 14 && name.toLowerCase() === 'content-length') length = Number(headers[i + 1]);
    else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') return -1;
  }
  return Number.isSafeInteger(length) ? length : -1;
}

/**
 * `Keep-Alive: timeout=N` (RFC 2068 §19.7.1, still sent by many servers): the server closes idle connections
 * after N seconds, so the pool lets go one second earlier rather than race it: the time in ms, 0 when none is
 * said, -1 when one second early is no time at all.
 */
function keepAliveHint(headers: string[]): number {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.length !== 10 || name.toLowerCase() !== 'keep-alive') continue;
    const m = /timeout\s*=\s*(\d+)/i.exec(headers[i + 1]!);
    if (m === null) continue;
    const ms = Number(m[1]) * 1000 - 1000;
    return ms > 0 ? ms : -1;
  }
  return 0;
}
