/**
 * @module The client's request body as undici's request body. Both forms count bytes against the route's limit
 * (chunked uploads have no Content-Length to check up front) and stand between the client request and undici,
 * so an upstream failure ends the upload and not the client's socket (which still needs its local reply).
 *
 * `RelayedBody` serves HTTP/1.1 upstreams: undici's HTTP/1 writer only listens for `data`, `end`, `error` and
 * `close` and calls `pause`, `resume` and `destroy`, so a small emitter relaying the client request's chunks is
 * enough — a Transform and a pipe per upload cost about 15 % more CPU per 16 KiB POST (bench/RESULTS.md).
 * `LimitedBody` is a real stream for upstreams that may speak HTTP/2, where undici hands the body to
 * `stream.pipeline`.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { BodyTooLargeError } from './upstream-errors.ts';

/** What a body reports to when it outgrows the route's limit (the exchange, which then answers 413). */
export interface BodyOwner {
  bodyTooLarge: boolean;
}

/** The request body as a stream-shaped emitter over the client request (HTTP/1.1 upstreams). */
export class RelayedBody extends EventEmitter {
  readonly #req: IncomingMessage;
  readonly #limit: number;
  #seen = 0;
  #attached = false;
  /** Whether undici ever asked for the client's bytes (a failed connect never does). */
  #started = false;
  owner: BodyOwner | undefined = undefined;
  destroyed = false;
  readableEnded = false;
  errored: Error | null = null;

  constructor(req: IncomingMessage, limit: number) {
    super();
    this.#req = req;
    this.#limit = limit;
  }

  /** undici tells a stream by its `pipe`; the body is only ever read through events. */
  pipe(): never {
    throw new Error('RelayedBody cannot be piped');
  }

  pause(): this {
    this.#req.pause();
    return this;
  }

  /** undici calls this once it listens: only then are the client's bytes read. */
  resume(): this {
    if (this.destroyed) return this;
    this.#started = true;
    if (!this.#attached) {
      this.#attached = true;
      const req = this.#req as IncomingMessage & { [kBody]?: RelayedBody };
      req[kBody] = this;
      req.on('data', onRequestData);
      req.on('end', onRequestEnd);
      req.on('error', onRequestError);
    }
    this.#req.resume();
    return this;
  }

  /** Called by undici when the upload ends, well or not; the client request itself is left alone. */
  destroy(err?: Error): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    if (err !== undefined) this.errored = err;
    // The rest of the upload is the exchange's to drain or cut off with its answer (forwarder.ts).
    this.#detach();
    process.nextTick(emitClose, this);
    return this;
  }

  /**
   * A fresh body over the same client request when this one was never read (its connection failed before
   * undici asked for a byte), so the request can go to another target; undefined once any byte was read.
   */
  unreadCopy(): RelayedBody | undefined {
    return this.#started ? undefined : new RelayedBody(this.#req, this.#limit);
  }

  /** A chunk from the client, counted against the limit before undici sees it. */
  relay(chunk: Buffer): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#limit) {
      if (this.owner !== undefined) this.owner.bodyTooLarge = true;
      this.#fail(new BodyTooLargeError('request body over limit'));
      return;
    }
    this.emit('data', chunk);
  }

  end(): void {
    this.readableEnded = true;
    this.#detach();
    this.emit('end');
  }

  /** The client connection failed mid-upload: stop relaying; the exchange sees the client close and aborts. */
  clientFailed(): void {
    this.#detach();
  }

  #fail(err: Error): void {
    this.errored = err;
    this.#detach();
    this.#req.pause();
    // undici listens for errors while it reads; past that nobody is left to tell.
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else this.destroy(err);
  }

  #detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    const req = this.#req;
    req.removeListener('data', onRequestData);
    req.removeListener('end', onRequestEnd);
    req.removeListener('error', onRequestError);
  }
}

const kBody = Symbol('portico.requestBody');

function bodyOf(req: IncomingMessage): RelayedBody {
  return (req as IncomingMessage & { [kBody]: RelayedBody })[kBody];
}

function onRequestData(this: IncomingMessage, chunk: Buffer): void {
  bodyOf(this).relay(chunk);
}

function onRequestEnd(this: IncomingMessage): void {
  bodyOf(this).end();
}

function onRequestError(this: IncomingMessage): void {
  bodyOf(this).clientFailed();
}

function emitClose(body: RelayedBody): void {
  body.emit('close');
}

/** The request body as a Transform the client request is piped into (upstreams that may speak HTTP/2). */
export class LimitedBody extends Transform {
  readonly #limit: number;
  #seen = 0;
  owner: BodyOwner | undefined = undefined;

  constructor(limit: number) {
    super();
    this.#limit = limit;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#limit) {
      if (this.owner !== undefined) this.owner.bodyTooLarge = true;
      done(new BodyTooLargeError('request body over limit'));
      return;
    }
    done(null, chunk);
  }
}

/** The client request's body, in the form the upstream's client reads. */
export type StreamedBody = RelayedBody | LimitedBody;

/** Starts the body's flow toward undici: piped for the Transform, on demand (undici's resume) for the relay. */
export function connectBody(req: IncomingMessage, body: StreamedBody, owner: BodyOwner): void {
  body.owner = owner;
  if (body instanceof LimitedBody) {
    req.on('error', onPipedRequestError);
    req.pipe(body);
  }
}

function onPipedRequestError(this: IncomingMessage): void {
  // The client connection failed mid-upload; the body stream's consumer (undici) sees the abort.
  this.unpipe();
}
