/**
 * @module The forwarder: one object per proxied exchange, which is also undici's dispatch handler.
 *
 * Bodies stream both ways with backpressure: the client request is undici's request body, and each upstream
 * chunk is written to the client as it arrives (undici pauses when the client is slow). Failures before the
 * response started become local replies (502/504); after it started, the client connection is aborted so a
 * truncated body can never look complete. A client that goes away aborts the upstream request.
 *
 * Methods are on the prototype and listeners are module functions, so an exchange allocates no closures.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { type ErrorCode, type LocalReply, localReply } from '../errors.ts';
import type { AttemptOutcome, Target } from '../upstream/types.ts';
import type { ExchangeLog } from './access-log.ts';
import { sendLocalReply } from './local-reply.ts';
import { filterResponseHeaders } from './response-headers.ts';
import type { CompiledRoute, ProxyRuntime } from './types.ts';

const kExchange = Symbol('portico.exchange');

/** Thrown into the request body stream when a chunked upload outgrows the route's limit. */
export class BodyTooLargeError extends Error {
  readonly code = 'PORTICO_BODY_TOO_LARGE';
}

/** Maps an undici / socket error to the local reply a client gets before any response byte was sent. */
export function replyForUpstreamError(err: Error & { code?: string }): { reply: LocalReply; outcome: AttemptOutcome } {
  const code = err.code ?? '';
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
      return { reply: localReply('GW_UPSTREAM_CONNECT_TIMEOUT', 'connect_timeout'), outcome: { kind: 'timeout' } };
    case 'UND_ERR_HEADERS_TIMEOUT':
      return { reply: localReply('GW_UPSTREAM_TIMEOUT', 'response_timeout'), outcome: { kind: 'timeout' } };
    case 'UND_ERR_BODY_TIMEOUT':
      return { reply: localReply('GW_UPSTREAM_TIMEOUT', 'idle_timeout'), outcome: { kind: 'timeout' } };
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return { reply: localReply('GW_UPSTREAM_CONNECT_FAILED', `connect_failed:${code}`), outcome: { kind: 'connect-failure' } };
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CONTENT_LENGTH':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'HPE_INVALID_TRANSFER_ENCODING':
    case 'HPE_INVALID_STATUS':
    case 'HPE_INVALID_VERSION':
    case 'HPE_CR_EXPECTED':
    case 'HPE_LF_EXPECTED':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_RES_EXCEEDED_MAX_SIZE':
    case 'ERR_INVALID_CHAR':
    case 'ERR_HTTP_INVALID_HEADER_VALUE':
      return { reply: localReply('GW_UPSTREAM_BAD_RESPONSE', `bad_response:${code}`), outcome: { kind: 'reset' } };
    default:
      if (code.startsWith('HPE_') || err.name === 'HTTPParserError') {
        return { reply: localReply('GW_UPSTREAM_BAD_RESPONSE', `bad_response:${code}`), outcome: { kind: 'reset' } };
      }
      return { reply: localReply('GW_UPSTREAM_RESET', `reset:${code || err.name}`), outcome: { kind: 'reset' } };
  }
}

export class ProxyExchange implements Dispatcher.DispatchHandler {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly rt: ProxyRuntime;
  readonly route: CompiledRoute;
  readonly log: ExchangeLog;
  /** Request headers to send (already filtered and extended). */
  readonly headers: IncomingHttpHeaders;
  readonly path: string;
  readonly body: NodeJS.ReadableStream | null;
  target: Target | undefined = undefined;
  #end: ((outcome: AttemptOutcome) => void) | undefined = undefined;
  #abort: ((err?: Error) => void) | undefined = undefined;
  #resume: (() => void) | undefined = undefined;
  #finished = false;
  /** Set when the request body outgrew the route limit. */
  bodyTooLarge = false;

  constructor(
    req: IncomingMessage,
    res: ServerResponse,
    rt: ProxyRuntime,
    route: CompiledRoute,
    log: ExchangeLog,
    headers: IncomingHttpHeaders,
    path: string,
    body: NodeJS.ReadableStream | null,
  ) {
    this.req = req;
    this.res = res;
    this.rt = rt;
    this.route = route;
    this.log = log;
    this.headers = headers;
    this.path = path;
    this.body = body;
    (res as unknown as Record<symbol, ProxyExchange>)[kExchange] = this;
    res.on('close', onClientClose);
  }

  /** Picks a target and sends the request. */
  start(): void {
    const upstream = this.route.upstream;
    const target = upstream.pool.pick(this.log.hashKey === undefined ? NO_HINT : { hashKey: this.log.hashKey });
    if (target === undefined) {
      this.fail(localReply('GW_UPSTREAM_UNAVAILABLE', 'no_available_target'));
      return;
    }
    this.target = target;
    this.log.target = target.key;
    this.#end = upstream.pool.begin(target);
    if (!this.route.preserveHost) this.headers.host = upstream.hostHeader(target);
    this.log.upstreamStart = performance.now();
    upstream.dispatcher(target).dispatch(
      { origin: target.origin, method: this.req.method!, path: this.path, headers: this.headers, body: this.body as never },
      this,
    );
  }

  // --- undici handler (legacy callback API: undici's native path, no wrapper) ---

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#finished) abort();
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, _statusText: string): boolean {
    if (statusCode < 200) return true;
    this.#resume = resume;
    this.log.status = statusCode;
    this.log.upstreamHeadersAt = performance.now();
    const res = this.res;
    // Head, first chunk and end usually arrive in one tick: cork so they leave in one write.
    res.cork();
    process.nextTick(uncork, res);
    try {
      const headers = filterResponseHeaders(rawHeaders, this.rt.settings, this.log.id);
      if (this.route.responseHeaders) {
        res.writeHead(statusCode, this.route.responseHeaders.applyToFlat(headers));
      } else {
        res.writeHead(statusCode, headers);
      }
    } catch (err) {
      // Headers Node refuses to write (invalid characters): the upstream's fault.
      this.#abort?.(err as Error);
      return false;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.log.bytesOut += chunk.length;
    if (this.res.write(chunk)) return true;
    this.res.once('drain', onClientDrain);
    return false;
  }

  onComplete(_trailers: string[] | null): void {
    this.res.end();
    this.#settle({ kind: 'response', status: this.log.status });
  }

  onError(err: Error & { code?: string }): void {
    if (this.#finished) {
      // The client went away first; the upstream abort that follows is expected.
      this.#settle({ kind: 'cancelled' });
      return;
    }
    if (this.bodyTooLarge) {
      this.#settle({ kind: 'cancelled' });
      this.fail(localReply('GW_BODY_TOO_LARGE', 'body_too_large'), true);
      return;
    }
    const { reply, outcome } = replyForUpstreamError(err);
    this.#settle(outcome);
    if (this.res.headersSent) {
      this.log.details = `aborted_after_headers:${reply.details}`;
      this.res.destroy();
      return;
    }
    this.fail(reply);
  }

  // --- internals ---

  /** Ends the exchange with a local reply (or an abort when the response already started). */
  fail(reply: LocalReply, closeConnection = false): void {
    this.log.status = reply.status;
    this.log.code = reply.code;
    this.log.details ||= reply.details;
    if (closeConnection || !this.req.complete) this.res.shouldKeepAlive = false;
    sendLocalReply(this.res, reply, this.log.id, this.rt.settings.requestIdHeader, this.rt.settings.replyHeaders);
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
    if (this.#finished) return;
    this.#finished = true;
    if (!this.res.writableFinished) {
      // The client left (or we aborted it) before the response was complete: stop the upstream work.
      this.log.clientAborted = !this.res.writableEnded;
      this.#abort?.(new Error('client closed'));
    }
    this.log.write(this.res);
  }
}

const NO_HINT = Object.freeze({});

function onClientClose(this: ServerResponse): void {
  (this as unknown as Record<symbol, ProxyExchange>)[kExchange]!.clientClosed();
}

function uncork(res: ServerResponse): void {
  res.uncork();
}

function onClientDrain(this: ServerResponse): void {
  (this as unknown as Record<symbol, ProxyExchange>)[kExchange]!.resumeUpstream();
}

export type { ErrorCode };
