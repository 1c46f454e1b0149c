/**
 * @module The forwarder: one object per proxied exchange; each try against a target is an Attempt (attempt.ts).
 *
 * Bodies stream both ways with backpressure: the client request is undici's request body, and each upstream
 * chunk is written to the client as it arrives (undici pauses when the client is slow). Failures before the
 * response started become local replies (502/504); after it started, the client connection is aborted so a
 * truncated body can never look complete. A client that goes away aborts the upstream request.
 *
 * Methods are on the prototype and listeners are module functions, so an exchange allocates no closures.
 *
 * This file is the core exchange; the rest are module functions over it, called only when a response needs
 * them: interim (1xx) responses in exchange-interim.ts, cache and compression of the response in
 * exchange-shaping.ts, the policies' response phase in exchange-gateway.ts.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { type ErrorCode, type LocalReply, localReply } from '../errors.ts';
import { isIdempotent } from '../upstream/retry.ts';
import type { AttemptOutcome, Target } from '../upstream/types.ts';
import type { ExchangeLog } from './access-log.ts';
import { Attempt, onPerTryTimeout } from './attempt.ts';
import type { Ticket } from './cache/cache.ts';
import type { CacheScheme } from './cache/key.ts';
import { gatewayHeaders, type HeldBody, holdChunk, releaseHeld } from './exchange-gateway.ts';
import { onInterim } from './exchange-interim.ts';
import { onSinkDrain, sendFromCache, shapedHeaders } from './exchange-shaping.ts';
import type { GatewayExchange } from './gateway-step.ts';
import { forwardTrailers } from './h2-exchange.ts';
import { sendLocalReply } from './local-reply.ts';
import { RelayedBody, type StreamedBody } from './request-body.ts';
import { filterResponseHeaders, type RawHeaders } from './response-headers.ts';
import { NO_HINT, noTargetReply, pinnedTarget, stickyCookie } from './target-choice.ts';
import type { CompiledRoute, ProxyRuntime, UpstreamRuntime } from './types.ts';
import { BadUpstreamResponseError, isStaleConnectionError, replyForUpstreamError } from './upstream-errors.ts';

const kExchange = Symbol('portico.exchange');
/** A view chunk that must outlive its callback is copied below this size; at or above it, it keeps the buffer. */
const COPY_BELOW = 16384;

export class ProxyExchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly rt: ProxyRuntime;
  readonly route: CompiledRoute;
  /** The route's upstream (a forwarder exists only for routes that proxy). */
  readonly upstream: UpstreamRuntime;
  readonly log: ExchangeLog;
  /** Request headers to send (already filtered and extended). */
  readonly headers: IncomingHttpHeaders;
  readonly path: string;
  /** Path and query as the cache keys them (normalised, before rewrites). */
  cacheUrl = '';
  /** The Host (or absolute-form authority) the cache keys by: the client's, before the upstream's replaced it. */
  cacheHost = '';
  cacheScheme: CacheScheme = 'https';
  /** A stream (sent once; retried only when never read), a buffer a policy read (replayable), or none. */
  body: StreamedBody | Buffer | null;
  /** The policies' view of this exchange, on routes with policies. */
  readonly gateway: GatewayExchange | undefined;
  /** The cache's ticket for this request (a miss or a revalidation); ended with the upstream's answer. */
  cacheTicket: Ticket | undefined = undefined;
  /** The request did not use the cache: say so in the response. */
  cacheBypass = false;
  /** The client's Accept-Encoding, for compression. */
  acceptEncoding: string | undefined = undefined;
  /** Capture and/or compressor in front of the client, when the route caches or compresses (exchange-shaping.ts). */
  sink: NodeJS.WritableStream | undefined = undefined;
  /** The response body held back for policies that read it (exchange-gateway.ts). */
  held: HeldBody | undefined = undefined;
  /** The try in progress; callbacks from older ones are ignored. */
  attempt: Attempt | undefined = undefined;
  finished = false;
  /** Set when the request body outgrew the route limit. */
  bodyTooLarge = false;
  target: Target | undefined = undefined;
  #tries = 0;
  /** Interim (1xx) responses seen for this exchange (exchange-interim.ts). */
  interimCount = 0;
  /** Keep-alive races retried for this exchange. */
  #staleRetries = 0;
  #tried: Set<Target> | undefined = undefined;
  #hashKey: string | undefined;
  #setCookie: string | undefined = undefined;
  #end: ((outcome: AttemptOutcome) => void) | undefined = undefined;
  #resume: (() => void) | undefined = undefined;
  /** A drain listener is waiting on the client (or the sink) to resume the upstream. */
  #awaitingDrain = false;
  /** The HTTP/1 client's socket is corked from the response head until the end of the tick (or the first chunk). */
  #corked = false;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    rt: ProxyRuntime,
    route: CompiledRoute,
    log: ExchangeLog,
    headers: IncomingHttpHeaders,
    path: string,
    body: StreamedBody | Buffer | null,
    hashKey: string | undefined,
    gateway: GatewayExchange | undefined,
  ) {
    this.req = req;
    this.res = res;
    this.rt = rt;
    this.route = route;
    this.upstream = route.upstream!;
    this.log = log;
    this.headers = headers;
    this.path = path;
    this.body = body;
    this.#hashKey = hashKey;
    this.gateway = gateway;
    (res as unknown as Record<symbol, ProxyExchange>)[kExchange] = this;
    res.on('close', onClientClose);
  }

  /** Picks a target (the sticky one when the client has a valid cookie) and sends the request. */
  start(next?: Target): void {
    const pool = this.upstream.pool;
    let target = next;
    const sticky = pool.sticky;
    if (sticky !== undefined && target === undefined) target = pinnedTarget(sticky, this.req.headers);
    const pinned = next === undefined ? target : undefined;
    if (target === undefined) {
      const hint =
        this.#tried === undefined && this.#hashKey === undefined
          ? NO_HINT
          : { hashKey: this.#hashKey, exclude: this.#tried };
      target = pool.pick(hint);
      if (target === undefined) {
        this.fail(noTargetReply(pool, hint, this.#tries > 0));
        return;
      }
    }
    // A client pinned by a valid cookie keeps it; anyone else (or a client moved by a retry) gets a new one.
    if (sticky !== undefined && (next !== undefined || pinned === undefined)) {
      this.#setCookie = stickyCookie(sticky, target, this.headers);
    }
    this.target = target;
    this.log.target = target.key;
    this.#end = pool.begin(target, this.#tries > 0);
    this.#tries++;
    if (!this.route.preserveHost) this.headers.host = this.upstream.hostHeader(target);
    if (this.log.upstreamStart === 0) this.log.upstreamStart = performance.now();
    const attempt = new Attempt(this);
    this.attempt = attempt;
    const perTry = pool.retry.perTryTimeout;
    if (perTry > 0) attempt.timer = setTimeout(onPerTryTimeout, perTry, attempt);
    this.upstream.dispatcher(target).dispatch(
      {
        origin: target.origin,
        method: this.req.method!,
        path: this.path,
        headers: this.headers,
        body: this.body as never,
      },
      attempt,
    );
  }

  onHeaders(statusCode: number, rawHeaders: RawHeaders, resume: () => void): boolean {
    if (statusCode < 200) return onInterim(this, statusCode, rawHeaders);
    if (statusCode >= 500) {
      // RFC 9110 §15: codes past 599 are not HTTP (a client treats them as a server error); never forwarded.
      if (statusCode > 599) return this.refuse('status_out_of_range');
      if (this.#retry({ kind: 'response', status: statusCode })) return false;
    }
    this.#resume = resume;
    this.log.status = statusCode;
    this.log.upstreamHeadersAt = performance.now();
    const h2 = this.req.httpVersionMajor === 2;
    const headers = filterResponseHeaders(rawHeaders, this.rt.settings, this.log.id, h2);
    if (headers.length === 0) return this.refuse('transfer_coding_not_chunked');
    // RFC 9110 §8.6: no Content-Length on a 204 (Node would pass the upstream's on).
    if (statusCode === 204) dropContentLength(headers);
    if (this.#setCookie !== undefined) headers.push('set-cookie', this.#setCookie);
    const gateway = this.gateway;
    // Policies that only add reply headers (no response hook, no buffered body) take the plain path below.
    if (gateway !== undefined && (this.route.gateway!.chain.hasResponseWork || this.route.shaping !== undefined)) {
      return gatewayHeaders(this, statusCode, headers);
    }
    if (this.route.shaping !== undefined) return shapedHeaders(this, statusCode, headers);
    const res = this.res;
    // Head, first chunk and end usually arrive in one tick: cork so they leave in one write (HTTP/2 frames are
    // batched by the session instead).
    if (!h2) {
      res.cork();
      this.#corked = true;
      process.nextTick(uncork, this);
    }
    try {
      if (this.route.responseHeaders) {
        const rewritten = this.route.responseHeaders.applyToFlat(headers);
        if (gateway !== undefined) Object.assign(rewritten, gateway.replyHeaders);
        res.writeHead(statusCode, rewritten);
      } else {
        res.writeHead(statusCode, gateway === undefined ? headers : withReplyHeaders(headers, gateway.replyHeaders));
      }
    } catch (err) {
      // Headers Node refuses to write (invalid characters): the upstream's fault.
      this.attempt?.abort?.(err as Error);
      return false;
    }
    return true;
  }

  /** Ends the try with a response undici parsed but that cannot be forwarded: 502 (or the next target). */
  refuse(reason: string): false {
    this.attempt?.abort?.(new BadUpstreamResponseError(reason));
    return false;
  }

  onData(chunk: Buffer): boolean {
    if (this.held !== undefined) return holdChunk(this, chunk);
    this.log.bytesOut += chunk.length;
    const sink = this.sink;
    if (sink !== undefined) {
      if (sink.write(chunk)) return true;
      // One listener however many chunks the rest of an upstream read brings while waiting.
      if (!this.#awaitingDrain) {
        this.#awaitingDrain = true;
        sink.once('drain', onSinkDrain);
      }
      return false;
    }
    if (this.res.write(chunk)) return true;
    return this.#waitForClient();
  }

  /**
   * A chunk that is a view of the upstream connection's read buffer (http1/read-buffer.ts). Written to an
   * HTTP/1 client (with the head, when it is the first), it has usually gone to the kernel when this returns,
   * and the buffer serves the next read; what Node still holds (a partial write) keeps it. Whatever would hold
   * the chunk itself gets a copy of a small one, and the buffer with a large one: held bodies, sinks, HTTP/2
   * streams, TLS clients (a TLS write completes later, so every response would keep a buffer), and a client
   * that has not taken the last bytes yet (each small read kept as a view would pin a whole buffer until it
   * reads; while corked behind the head, what Node holds is the head).
   */
  onDataView(chunk: Buffer, keep: () => void): boolean {
    const res = this.res;
    if (
      this.held !== undefined ||
      this.sink !== undefined ||
      this.req.httpVersionMajor === 2 ||
      (res.socket as { encrypted?: boolean } | null)?.encrypted === true ||
      (!this.#corked && res.writableLength > 0)
    ) {
      if (chunk.length < COPY_BELOW) return this.onData(Buffer.from(chunk));
      keep();
      return this.onData(chunk);
    }
    this.log.bytesOut += chunk.length;
    // Corked around the write (or still corked behind the head), the chunk leaves in this call: Node's own cork
    // would hold it, and so the buffer, until the end of the tick.
    if (!this.#corked) res.cork();
    const fits = res.write(chunk);
    this.#corked = false;
    res.uncork();
    const left = res.writableLength;
    if (left === 0) return true;
    keep();
    // Written while corked, `fits` may say full of bytes the uncork has since sent.
    if (fits || left < res.writableHighWaterMark) return true;
    return this.#waitForClient();
  }

  /** Sends what the head's cork holds (once; the end of the tick does it otherwise). */
  uncorkClient(): void {
    if (!this.#corked) return;
    this.#corked = false;
    const res = this.res;
    res.uncork();
    // Node holds a written head until the first body byte: a head that came alone (an event stream, a body
    // that stalls) goes now, as nginx sends it, so the client sees the response start (and a later failure
    // as a cut response, not as none at all).
    if (this.log.bytesOut === 0 && !res.writableEnded && !res.destroyed) res.flushHeaders();
  }

  /** The client is slow: the upstream pauses until it drains (one listener however many chunks arrive meanwhile). */
  #waitForClient(): false {
    if (!this.#awaitingDrain) {
      this.#awaitingDrain = true;
      this.res.once('drain', onClientDrain);
    }
    return false;
  }

  /** `trailers`: undici's, a flat list (HTTP/1.1 upstream, empty without trailers) or an object (HTTP/2). */
  onComplete(trailers?: unknown): void {
    if (this.held !== undefined) {
      releaseHeld(this);
      return;
    }
    if (this.sink !== undefined) this.sink.end();
    else {
      // Trailers go on to HTTP/2 clients (gRPC's status is one); HTTP/1 clients get none.
      if (this.req.httpVersionMajor === 2 && trailers != null) forwardTrailers(this.res as never, trailers);
      if (this.#corked) {
        // Node's end() writes the last chunk before the chunks a corked response still holds (the second and
        // later of a tick): release them first, into the socket corked here so it all leaves in one write.
        this.#corked = false;
        this.res.socket?.cork();
        this.res.uncork();
      }
      this.res.end();
    }
    this.settle({ kind: 'response', status: this.log.status });
    if (!this.req.complete) discardRequestRest(this.req);
  }

  onError(err: Error & { code?: string }): void {
    if (this.finished) {
      // The client went away first; the upstream abort that follows is expected.
      this.settle({ kind: 'cancelled' });
      return;
    }
    if (this.bodyTooLarge) {
      this.settle({ kind: 'cancelled' });
      this.fail(localReply('GW_BODY_TOO_LARGE', 'body_too_large'), true);
      return;
    }
    // Nothing of a response accepted yet (a held body for policies counts as accepted): a new try may still answer.
    const fresh = !this.res.headersSent && this.log.upstreamHeadersAt === 0;
    if (fresh && this.#retryStale(err)) return;
    const { reply, outcome } = replyForUpstreamError(err);
    if (fresh && this.#retry(outcome)) return;
    if (err.code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' && this.#bodilessComplete()) return;
    this.settle(outcome);
    if (this.res.headersSent) {
      this.log.details = `aborted_after_headers:${reply.details}`;
      // Destroying the sink first tells the cache capture to store nothing.
      (this.sink as NodeJS.WritableStream & { destroy?(err?: Error): void })?.destroy?.(err);
      // With an error, an HTTP/2 client's stream is reset with INTERNAL_ERROR: NO_ERROR, what a bare destroy
      // sends, is how a server ends a complete response early (RFC 9113 §8.1), and Node clients read it so.
      this.res.destroy(this.req.httpVersionMajor === 2 ? err : undefined);
      return;
    }
    const ticket = this.cacheTicket;
    this.cacheTicket = undefined;
    const stale = ticket?.onError();
    if (stale !== undefined) {
      this.log.details = `stale_if_error:${reply.details}`;
      sendFromCache(this, stale);
      return;
    }
    // A stored response that must be revalidated turns the failure into 504 (RFC 9111 §5.2.2.2).
    this.fail(ticket === undefined ? reply : ticket.failureReply(reply));
  }

  /**
   * RFC 9112 §9.6: a server may close an idle keep-alive connection at any time, so a request sent on a pooled
   * connection can meet the close. Like nginx (a cached connection's error is not counted as a try) and Go's
   * client, Portico sends it again on a fresh connection to the same target, but only when resending is safe:
   * an idempotent method (RFC 9110 §9.2.2) whose body, if any, is replayable. A POST is never resent: its
   * bytes may have reached the upstream. Not reported to passive health; not counted against `retries`.
   */
  #retryStale(err: Error & { code?: string }): boolean {
    if (this.#staleRetries >= MAX_STALE_RETRIES || this.finished) return false;
    if ((this.body !== null && !Buffer.isBuffer(this.body)) || !isIdempotent(this.req.method!)) return false;
    if (!isStaleConnectionError(err)) return false;
    this.#staleRetries++;
    this.endAttempt({ kind: 'cancelled' });
    this.#tries--;
    this.log.retries++;
    this.start(this.target);
    return true;
  }

  /**
   * undici holds a 204 or 304 to its Content-Length although no body may follow (RFC 9110 §6.4.1, §8.6: a
   * 304's Content-Length is the stored representation's), and fails the request. Nothing is missing: the
   * response is complete. undici has closed the connection, so bytes the upstream sent after it never leak
   * into another response.
   */
  #bodilessComplete(): boolean {
    const status = this.log.status;
    if ((status !== 204 && status !== 304) || this.log.bytesOut !== 0 || this.log.upstreamHeadersAt === 0) return false;
    this.onComplete();
    return true;
  }

  /**
   * Tries another target when the pool's retry policy allows it: nothing reached the client yet, the request
   * has no body to replay, and the budget has room. Returns false when the caller must report the failure.
   */
  #retry(outcome: AttemptOutcome): boolean {
    if (this.finished) return false;
    // A streamed body is gone once read; a buffered one can be sent again, and so can a stream undici never
    // read (its connection failed): the client's bytes are all still unread.
    let fresh: RelayedBody | undefined;
    if (this.body !== null && !Buffer.isBuffer(this.body)) {
      fresh = this.body instanceof RelayedBody ? this.body.unreadCopy() : undefined;
      if (fresh === undefined) return false;
    }
    const pool = this.upstream.pool;
    if (!pool.retry.canRetry(this.req.method!, outcome, this.#tries)) return false;
    if (this.#tried === undefined) this.#tried = new Set();
    const tried = this.#tried;
    tried.add(this.target!);
    const next = pool.pick({ hashKey: this.#hashKey, exclude: tried });
    if (next === undefined) return false;
    this.endAttempt(outcome);
    this.log.retries++;
    if (fresh !== undefined) {
      fresh.owner = this;
      this.body = fresh;
    }
    this.start(next);
    return true;
  }

  /** Ends the exchange with a local reply (or an abort when the response already started). */
  fail(reply: LocalReply, closeConnection = false): void {
    this.log.status = reply.status;
    this.log.code = reply.code;
    this.log.details ||= reply.details;
    if (closeConnection || !this.req.complete) this.res.shouldKeepAlive = false;
    const base = this.rt.settings.replyHeaders;
    const fromPolicies = this.gateway?.replyHeaders;
    const extra = fromPolicies === undefined ? base : { ...base, ...fromPolicies };
    sendLocalReply(this.res, reply, this.log.id, this.rt.settings.requestIdHeader, extra);
  }

  /** Reports how the try in progress ended to the pool (health, in-flight count), once. */
  settle(outcome: AttemptOutcome): void {
    const end = this.#end;
    if (end !== undefined) {
      this.#end = undefined;
      end(outcome);
    }
  }

  /** Stops the try in progress (its late callbacks are ignored) and reports `outcome` for it. */
  endAttempt(outcome: AttemptOutcome): void {
    const failed = this.attempt;
    this.attempt = undefined;
    failed?.abort?.();
    this.settle(outcome);
  }

  resumeUpstream(): void {
    this.#awaitingDrain = false;
    this.#resume?.();
  }

  clientClosed(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.cacheTicket !== undefined) {
      // Requests coalesced behind this one must not wait for an answer that will never be stored.
      this.cacheTicket.onError();
      this.cacheTicket = undefined;
    }
    if (!this.res.writableFinished) {
      // The client left (or we aborted it) before the response was complete: stop the upstream work.
      this.log.clientAborted = !this.res.writableEnded;
      this.attempt?.abort?.(new Error('client closed'));
    }
    this.log.write(this.res);
  }
}

/** A pooled connection that died as a request went out is retried this often, each time on a fresh one. */
const MAX_STALE_RETRIES = 2;

/**
 * The upstream answered before the request body was all sent (a 413 or 401 mid-upload, RFC 9112 §9.3) and
 * undici dropped that connection. The rest of the body is read and discarded, as nginx does, so the client
 * can finish sending, read the answer, and keep its connection; unread, it would stall the upload, and a
 * close would meet the client's writes with a reset that can destroy the answer before it is read. The
 * listener's `requestTimeout` bounds how long this may take.
 */
function discardRequestRest(req: IncomingMessage): void {
  req.unpipe();
  req.resume();
}

/** Removes Content-Length from a flat header list (204 responses). */
function dropContentLength(flat: string[]): void {
  for (let i = 0; i < flat.length; i += 2) {
    if (flat[i]!.length === 14 && flat[i]!.toLowerCase() === 'content-length') {
      flat.splice(i, 2);
      i -= 2;
    }
  }
}

function onClientClose(this: ServerResponse): void {
  (this as unknown as Record<symbol, ProxyExchange>)[kExchange]!.clientClosed();
}

function uncork(exchange: ProxyExchange): void {
  exchange.uncorkClient();
}

function onClientDrain(this: ServerResponse): void {
  (this as unknown as Record<symbol, ProxyExchange>)[kExchange]!.resumeUpstream();
}

/**
 * The policies' reply headers (RateLimit, …) added to a flat upstream header list; like the object path's
 * Object.assign they replace upstream headers of the same name (reply names are lower case; upstream names
 * keep the case they came in).
 */
function withReplyHeaders(flat: string[], reply: Readonly<Record<string, string>>): string[] {
  for (const name in reply) {
    for (let i = 0; i < flat.length; i += 2) {
      const upstream = flat[i]!;
      if (upstream.length === name.length && upstream.toLowerCase() === name) {
        flat.splice(i, 2);
        i -= 2;
      }
    }
    flat.push(name, reply[name]!);
  }
  return flat;
}

export type { ErrorCode };
