/**
 * @module The forwarder: one object per proxied exchange; each try against a target is an Attempt (attempt.ts).
 *
 * Bodies stream both ways with backpressure: the client request is undici's request body, and each upstream
 * chunk is written to the client as it arrives (undici pauses when the client is slow). Failures before the
 * response started become local replies (502/504); after it started, the client connection is aborted so a
 * truncated body can never look complete. A client that goes away aborts the upstream request.
 *
 * Methods are on the prototype and listeners are module functions, so an exchange allocates no closures.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { type ErrorCode, type LocalReply, localReply } from '../errors.ts';
import type { Verdict } from '../gateway/types.ts';
import { readCookie } from '../lib/cookie.ts';
import { isIdempotent } from '../upstream/retry.ts';
import type { AttemptOutcome, Target } from '../upstream/types.ts';
import type { ExchangeLog } from './access-log.ts';
import { Attempt, onPerTryTimeout } from './attempt.ts';
import type { ServedResponse, Ticket } from './cache/cache.ts';
import type { CaptureStream } from './cache/capture.ts';
import { type GatewayExchange, RESPONSE_OVER_POLICY_LIMIT } from './gateway-step.ts';
import { forwardTrailers } from './h2-compat.ts';
import { sendLocalReply } from './local-reply.ts';
import { bodySink, compressorFor, sendServed } from './response-body.ts';
import { filterResponseHeaders, flatToObject } from './response-headers.ts';
import type { CompiledRoute, ProxyRuntime, UpstreamRuntime } from './types.ts';
import { BadUpstreamResponseError, isStaleConnectionError, replyForUpstreamError } from './upstream-errors.ts';

const kExchange = Symbol('portico.exchange');

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
  /** A stream (sent once, never retried), a buffer a policy read (replayable), or none. */
  readonly body: NodeJS.ReadableStream | Buffer | null;
  /** The policies' view of this exchange, on routes with policies. */
  readonly gateway: GatewayExchange | undefined;
  /** The cache's ticket for this request (a miss or a revalidation); ended with the upstream's answer. */
  cacheTicket: Ticket | undefined = undefined;
  /** The request did not use the cache: say so in the response. */
  cacheBypass = false;
  /** The client's Accept-Encoding, for compression. */
  acceptEncoding: string | undefined = undefined;
  /** Capture and/or compressor in front of the client, when the route caches or compresses. */
  #sink: NodeJS.WritableStream | undefined = undefined;
  /** Response chunks held back for policies that read the response body. */
  #held: Buffer[] | undefined = undefined;
  /** The cache capture chosen before the response phase ran (routes with policies). */
  #gatewayCapture: CaptureStream | undefined = undefined;
  #heldSize = 0;
  /** The try in progress; callbacks from older ones are ignored. */
  attempt: Attempt | undefined = undefined;
  finished = false;
  /** Set when the request body outgrew the route limit. */
  bodyTooLarge = false;
  target: Target | undefined = undefined;
  #tries = 0;
  /** Interim (1xx) responses seen, and keep-alive races retried, for this exchange. */
  #interimCount = 0;
  #staleRetries = 0;
  #tried: Set<Target> | undefined = undefined;
  #hashKey: string | undefined;
  #setCookie: string | undefined = undefined;
  #end: ((outcome: AttemptOutcome) => void) | undefined = undefined;
  #resume: (() => void) | undefined = undefined;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    rt: ProxyRuntime,
    route: CompiledRoute,
    log: ExchangeLog,
    headers: IncomingHttpHeaders,
    path: string,
    body: NodeJS.ReadableStream | Buffer | null,
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
    if (sticky !== undefined && target === undefined) {
      const pinned = readCookie(this.req.headers.cookie, sticky.cookie);
      target = pinned === undefined ? undefined : sticky.targetFromCookie(pinned);
    }
    const pinnedTarget = next === undefined ? target : undefined;
    if (target === undefined) {
      const hint =
        this.#tried === undefined && this.#hashKey === undefined
          ? NO_HINT
          : { hashKey: this.#hashKey, exclude: this.#tried };
      target = pool.pick(hint);
      if (target === undefined) {
        const overloaded = pool.noTargetReason(hint) === 'overloaded';
        this.fail(
          overloaded
            ? localReply('GW_UPSTREAM_OVERLOADED', 'circuit_open')
            : localReply(
                'GW_UPSTREAM_UNAVAILABLE',
                this.#tries === 0 ? 'no_available_target' : 'no_target_left_to_retry',
              ),
        );
        return;
      }
    }
    // A client pinned by a valid cookie keeps it; anyone else (or a client moved by a retry) gets a new one.
    if (sticky !== undefined && (next !== undefined || pinnedTarget === undefined)) {
      this.#setCookie = sticky.setCookieFor(target);
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

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return this.#interim(statusCode, rawHeaders);
    if (statusCode >= 500) {
      // RFC 9110 §15: codes past 599 are not HTTP (a client treats them as a server error); never forwarded.
      if (statusCode > 599) return this.#refuse('status_out_of_range');
      if (this.#retry({ kind: 'response', status: statusCode })) return false;
    }
    this.#resume = resume;
    this.log.status = statusCode;
    this.log.upstreamHeadersAt = performance.now();
    const headers = filterResponseHeaders(rawHeaders, this.rt.settings, this.log.id);
    if (headers.length === 0) return this.#refuse('transfer_coding_not_chunked');
    // RFC 9110 §8.6: no Content-Length on a 204 (Node would pass the upstream's on).
    if (statusCode === 204) dropContentLength(headers);
    if (this.#setCookie !== undefined) headers.push('set-cookie', this.#setCookie);
    const gateway = this.gateway;
    // Policies that only add reply headers (no response hook, no buffered body) take the plain path below.
    if (gateway !== undefined && (this.route.gateway!.chain.hasResponseWork || this.route.shaping !== undefined)) {
      return this.#gatewayHeaders(statusCode, headers);
    }
    if (this.route.shaping !== undefined) return this.#shapedHeaders(statusCode, headers);
    const res = this.res;
    const h2 = this.req.httpVersionMajor === 2;
    // Head, first chunk and end usually arrive in one tick: cork so they leave in one write (HTTP/2 frames are
    // batched by the session instead).
    if (!h2) {
      res.cork();
      process.nextTick(uncork, res);
    }
    try {
      if (this.route.responseHeaders) {
        const rewritten = this.route.responseHeaders.applyToFlat(headers);
        if (gateway !== undefined) Object.assign(rewritten, gateway.replyHeaders);
        res.writeHead(statusCode, rewritten);
      } else {
        const list = gateway === undefined ? headers : withReplyHeaders(headers, gateway.replyHeaders);
        // Node's HTTP/2 compat layer takes a flat list as a remove and an append per field; an object is one set.
        res.writeHead(statusCode, h2 ? flatToObject(list) : list);
      }
    } catch (err) {
      // Headers Node refuses to write (invalid characters): the upstream's fault.
      this.attempt?.abort?.(err as Error);
      return false;
    }
    return true;
  }

  /**
   * An interim response (RFC 9110 §15.2). A proxy forwards 1xx: 102 and 103 (its Link fields) go on to
   * HTTP/1.1 and later clients (never to HTTP/1.0 ones) until the final head; 100 is dropped (Portico answers
   * `Expect` itself and never sends it upstream, so an upstream 100 is unsolicited; undici-based clients,
   * fetch among them, refuse an unsolicited 100), and so are unassigned codes. 101 never reaches this handler.
   * An upstream that keeps sending 1xx is cut off: each one would otherwise restart the response timeout.
   */
  #interim(statusCode: number, rawHeaders: Buffer[]): boolean {
    if (++this.#interimCount > MAX_INTERIM_RESPONSES) return this.#refuse('too_many_interim_responses');
    const res = this.res;
    if (res.headersSent || (this.req.httpVersionMajor === 1 && this.req.httpVersionMinor === 0)) return true;
    if (statusCode === 103) this.#earlyHints(rawHeaders);
    else if (statusCode === 102 && typeof res.writeProcessing === 'function') res.writeProcessing();
    return true;
  }

  /** Ends the try with a response undici parsed but that cannot be forwarded: 502 (or the next target). */
  #refuse(reason: string): false {
    this.attempt?.abort?.(new BadUpstreamResponseError(reason));
    return false;
  }

  #earlyHints(rawHeaders: Buffer[]): void {
    const links: string[] = [];
    for (let i = 0; i < rawHeaders.length; i += 2) {
      if (rawHeaders[i]!.length === 4 && rawHeaders[i]!.toString('latin1').toLowerCase() === 'link') {
        links.push(rawHeaders[i + 1]!.toString('latin1'));
      }
    }
    if (links.length > 0) this.res.writeEarlyHints({ link: links });
  }

  onData(chunk: Buffer): boolean {
    if (this.#held !== undefined) return this.#hold(chunk);
    this.log.bytesOut += chunk.length;
    const sink = this.#sink;
    if (sink !== undefined) {
      if (sink.write(chunk)) return true;
      sink.once('drain', onSinkDrain);
      return false;
    }
    if (this.res.write(chunk)) return true;
    this.res.once('drain', onClientDrain);
    return false;
  }

  /** `trailers`: undici's, a flat list (HTTP/1.1 upstream, empty without trailers) or an object (HTTP/2). */
  onComplete(trailers?: unknown): void {
    if (this.#held !== undefined) {
      this.#releaseHeld();
      return;
    }
    if (this.#sink !== undefined) this.#sink.end();
    else {
      // Trailers go on to HTTP/2 clients (gRPC's status is one); HTTP/1 clients get none.
      if (this.req.httpVersionMajor === 2 && trailers != null) forwardTrailers(this.res as never, trailers);
      this.res.end();
    }
    this.#settle({ kind: 'response', status: this.log.status });
    if (!this.req.complete) discardRequestRest(this.req);
  }

  // --- caching and compression ---

  /** Headers of a route that caches or compresses: end the cache ticket, choose compression, start the body. */
  #shapedHeaders(status: number, flat: string[]): boolean {
    const headers = flatToObject(flat);
    const capture = this.#cacheOnResponse(status, headers);
    if (capture === false) return false;
    // The cache keeps `headers` as the upstream sent them; route rules and compression apply per client
    // (on hits too), so they edit a copy when the response is being stored.
    const out = capture === undefined ? headers : { ...headers };
    this.route.responseHeaders?.apply(out);
    return this.#writeShapedHead(status, out, capture);
  }

  /**
   * Gives the cache the upstream's answer. Returns the capture stream to pipe the body through (or
   * undefined), or false when the cache answered instead (304-refreshed entry, stale-if-error).
   */
  #cacheOnResponse(status: number, headers: Record<string, string | string[]>): CaptureStream | undefined | false {
    const ticket = this.cacheTicket;
    const cache = this.route.shaping?.cache;
    if (ticket === undefined) {
      if (cache !== undefined) {
        if (this.cacheBypass) headers[cache.statusHeader] = 'BYPASS';
        // RFC 9111 §4.4: a 2xx/3xx to an unsafe method invalidates the stored responses it names.
        const method = this.req.method!;
        if (method !== 'GET' && method !== 'HEAD') {
          const req = { method, host: this.cacheHost, url: this.cacheUrl, headers: this.req.headers };
          cache.afterUnsafe(req, status, headers).catch(() => {});
        }
      }
      return undefined;
    }
    this.cacheTicket = undefined;
    const out = ticket.onResponse(status, headers);
    if (out.kind === 'forward') return out.capture;
    const failed = this.attempt;
    this.attempt = undefined;
    failed?.abort?.();
    this.#settle({ kind: 'response', status });
    this.#sendServed(out.response);
    return false;
  }

  #writeShapedHead(
    status: number,
    headers: Record<string, string | string[]>,
    capture: CaptureStream | undefined,
  ): boolean {
    const compress = this.route.shaping?.compress;
    // `headers` is already this client's copy when the response is being stored (see #shapedHeaders).
    const out = headers;
    const compressor = compressorFor(compress, this.acceptEncoding, this.req.method!, status, out);
    this.log.status = status;
    try {
      this.res.writeHead(status, out);
    } catch (err) {
      capture?.destroy();
      this.attempt?.abort?.(err as Error);
      return false;
    }
    if (capture !== undefined || compressor !== undefined) {
      const sink = bodySink(this.res, capture, compressor);
      (sink as unknown as Record<symbol, ProxyExchange>)[kExchange] = this;
      this.#sink = sink;
    }
    return true;
  }

  /** Sends a complete response the cache made (a hit is sent before the forwarder exists; this is the rest). */
  #sendServed(served: ServedResponse): void {
    this.log.status = served.status;
    this.route.responseHeaders?.apply(served.headers);
    const extra = {
      [this.rt.settings.requestIdHeader]: this.log.id,
      ...this.rt.settings.replyHeaders,
      ...this.gateway?.replyHeaders,
    };
    this.log.bytesOut = sendServed(
      this.res,
      served,
      this.route.shaping?.compress,
      this.acceptEncoding,
      this.req.method!,
      extra,
    );
  }

  // --- response phase of the policy chain ---

  /** Headers of a route with policies: run the response phase now, or hold the body for policies that read it. */
  #gatewayHeaders(status: number, flat: string[]): boolean {
    const ex = this.gateway!;
    const headers = flatToObject(flat);
    const capture = this.#cacheOnResponse(status, headers);
    if (capture === false) return false;
    this.#gatewayCapture = capture;
    // As in #shapedHeaders: what is stored stays the upstream's; policies' reply headers (RateLimit, CORS)
    // belong to this client alone.
    const out = capture === undefined ? headers : { ...headers };
    this.route.responseHeaders?.apply(out);
    Object.assign(out, ex.replyHeaders);
    ex.response = { status, headers: out };
    const chain = this.route.gateway!.chain;
    if (chain.needsResponseBody > 0) {
      this.#held = [];
      return true;
    }
    if (!chain.hasResponsePhase) return this.#writeGatewayHead();
    const outcome = chain.runResponse(ex);
    if (!(outcome instanceof Promise)) return this.#afterResponsePhase(outcome);
    outcome.then(
      (v) => {
        if (this.#afterResponsePhase(v)) this.#resume?.();
      },
      () => this.#afterResponsePhase({ kind: 'reply', reply: localReply('GW_INTERNAL', 'response_phase_failed') }),
    );
    return false;
  }

  #afterResponsePhase(verdict: Verdict): boolean {
    if (this.finished) return false;
    if (verdict.kind === 'continue') return this.#writeGatewayHead();
    const failed = this.attempt;
    this.attempt = undefined;
    failed?.abort?.();
    this.#settle({ kind: 'response', status: this.log.status });
    this.fail(verdict.kind === 'reply' ? verdict.reply : localReply('GW_INTERNAL', 'response_phase_respond'));
    return false;
  }

  #writeGatewayHead(): boolean {
    const r = this.gateway!.response!;
    return this.#writeShapedHead(r.status, r.headers as Record<string, string | string[]>, this.#gatewayCapture);
  }

  #hold(chunk: Buffer): boolean {
    this.#heldSize += chunk.length;
    if (this.#heldSize > this.route.gateway!.chain.needsResponseBody) {
      this.#held = undefined;
      const failed = this.attempt;
      this.attempt = undefined;
      failed?.abort?.();
      this.#settle({ kind: 'response', status: this.log.status });
      this.fail(RESPONSE_OVER_POLICY_LIMIT);
      return false;
    }
    this.#held!.push(chunk);
    return true;
  }

  /** The whole response is here: let policies read and change it, then send it. */
  #releaseHeld(): void {
    const ex = this.gateway!;
    ex.responseBody = Buffer.concat(this.#held!, this.#heldSize);
    this.#held = undefined;
    this.#settle({ kind: 'response', status: this.log.status });
    const outcome = this.route.gateway!.chain.runResponse(ex);
    if (outcome instanceof Promise) {
      outcome.then(
        (v) => this.#sendHeld(v),
        () => this.#sendHeld({ kind: 'reply', reply: localReply('GW_INTERNAL', 'response_phase_failed') }),
      );
    } else {
      this.#sendHeld(outcome);
    }
  }

  #sendHeld(verdict: Verdict): void {
    if (this.finished) return;
    if (verdict.kind !== 'continue') {
      this.fail(verdict.kind === 'reply' ? verdict.reply : localReply('GW_INTERNAL', 'response_phase_respond'));
      return;
    }
    const ex = this.gateway!;
    const r = ex.response!;
    const body = ex.responseBody ?? Buffer.alloc(0);
    delete r.headers['transfer-encoding'];
    if (this.req.method !== 'HEAD' && r.status !== 204 && r.status !== 304) r.headers['content-length'] = body.length;
    this.log.status = r.status;
    this.log.bytesOut = body.length;
    try {
      this.res.writeHead(r.status, r.headers);
    } catch {
      this.fail(localReply('GW_UPSTREAM_BAD_RESPONSE', 'invalid_response_headers'));
      return;
    }
    this.res.end(body);
  }

  onError(err: Error & { code?: string }): void {
    if (this.finished) {
      // The client went away first; the upstream abort that follows is expected.
      this.#settle({ kind: 'cancelled' });
      return;
    }
    if (this.bodyTooLarge) {
      this.#settle({ kind: 'cancelled' });
      this.fail(localReply('GW_BODY_TOO_LARGE', 'body_too_large'), true);
      return;
    }
    // Nothing of a response accepted yet (a held body for policies counts as accepted): a new try may still answer.
    const fresh = !this.res.headersSent && this.log.upstreamHeadersAt === 0;
    if (fresh && this.#retryStale(err)) return;
    const { reply, outcome } = replyForUpstreamError(err);
    if (fresh && this.#retry(outcome)) return;
    if (err.code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' && this.#bodilessComplete()) return;
    this.#settle(outcome);
    if (this.res.headersSent) {
      this.log.details = `aborted_after_headers:${reply.details}`;
      // Destroying the sink first tells the cache capture to store nothing.
      (this.#sink as NodeJS.WritableStream & { destroy?(err?: Error): void })?.destroy?.(err);
      this.res.destroy();
      return;
    }
    const ticket = this.cacheTicket;
    this.cacheTicket = undefined;
    const stale = ticket?.onError();
    if (stale !== undefined) {
      this.log.details = `stale_if_error:${reply.details}`;
      this.#sendServed(stale);
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
    const failed = this.attempt;
    this.attempt = undefined;
    failed?.abort?.();
    this.#settle({ kind: 'cancelled' });
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
    // A streamed body is gone once sent; a buffered one can be sent again.
    if ((this.body !== null && !Buffer.isBuffer(this.body)) || this.finished) return false;
    const pool = this.upstream.pool;
    if (!pool.retry.canRetry(this.req.method!, outcome, this.#tries)) return false;
    if (this.#tried === undefined) this.#tried = new Set();
    const tried = this.#tried;
    tried.add(this.target!);
    const next = pool.pick({ hashKey: this.#hashKey, exclude: tried });
    if (next === undefined) return false;
    const failed = this.attempt;
    this.attempt = undefined;
    failed?.abort?.();
    this.#settle(outcome);
    this.log.retries++;
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

  #settle(outcome: AttemptOutcome): void {
    const end = this.#end;
    if (end !== undefined) {
      this.#end = undefined;
      end(outcome);
    }
  }

  resumeUpstream(): void {
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

const NO_HINT = Object.freeze({});

/** Go's HTTP client allows 5 interim responses before the final one; Portico is a little more lenient. */
const MAX_INTERIM_RESPONSES = 8;

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

function uncork(res: ServerResponse): void {
  res.uncork();
}

function onSinkDrain(this: NodeJS.WritableStream): void {
  (this as unknown as Record<symbol, ProxyExchange>)[kExchange]!.resumeUpstream();
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
