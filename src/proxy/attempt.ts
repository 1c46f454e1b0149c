/**
 * @module One try of a proxied request against one target: undici's dispatch handler.
 */
import type { Dispatcher } from 'undici';
import type { ProxyExchange } from './forwarder.ts';
import type { RawHeaders } from './response-headers.ts';

/**
 * One try against one target: undici's dispatch handler (legacy callback API, undici's native path, no
 * wrapper). A retry makes a new Attempt, so late callbacks from an abandoned try are recognised and ignored.
 */
export class Attempt implements Dispatcher.DispatchHandler {
  readonly exchange: ProxyExchange;
  abort: ((err?: Error) => void) | undefined = undefined;
  timer: NodeJS.Timeout | undefined = undefined;
  /** The per-try timeout passed while the request still waited for a connection. */
  expired = false;
  constructor(exchange: ProxyExchange) {
    this.exchange = exchange;
  }
  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    if (this.exchange.attempt !== this || this.exchange.finished) abort();
    else if (this.expired) abort(new PerTryTimeoutError('per-try timeout'));
  }
  onHeaders(statusCode: number, rawHeaders: RawHeaders, resume: () => void, _statusText: string): boolean {
    if (this.exchange.attempt !== this) return false;
    return this.exchange.onHeaders(statusCode, rawHeaders, resume);
  }
  onData(chunk: Buffer): boolean {
    if (this.exchange.attempt !== this) return false;
    return this.exchange.onData(chunk);
  }
  onDataView(chunk: Buffer, keep: () => void): boolean {
    if (this.exchange.attempt !== this) return false;
    return this.exchange.onDataView(chunk, keep);
  }
  onComplete(trailers: unknown): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.exchange.attempt === this) this.exchange.onComplete(trailers);
  }
  onError(err: Error & { code?: string }): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.exchange.attempt === this) this.exchange.onError(err);
  }
}

/** Thrown into an attempt that outlived the upstream's per-try timeout. */
class PerTryTimeoutError extends Error {
  readonly code = 'UND_ERR_HEADERS_TIMEOUT';
}

export function onPerTryTimeout(attempt: Attempt): void {
  // Still queued for a connection: it is aborted as soon as it gets one.
  if (attempt.abort === undefined) attempt.expired = true;
  else attempt.abort(new PerTryTimeoutError('per-try timeout'));
}
