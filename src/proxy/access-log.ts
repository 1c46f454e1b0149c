/**
 * @module One access-log line per exchange (JSON through pino), written when the exchange ends.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from '../observe/logger.ts';

/** Mutable record of one exchange, filled as it goes; written once at the end. */
export class ExchangeLog {
  readonly id: string;
  readonly startedAt: number;
  readonly logger: Logger;
  client: string;
  method: string;
  path: string;
  route: string | undefined = undefined;
  target: string | undefined = undefined;
  status = 0;
  code: string | undefined = undefined;
  details = '';
  bytesIn = 0;
  bytesOut = 0;
  upstreamStart = 0;
  upstreamHeadersAt = 0;
  clientAborted = false;
  retries = 0;
  consumer: string | undefined = undefined;
  #bytesReadAtStart: number;
  #written = false;

  constructor(logger: Logger, id: string, client: string, method: string, path: string, bytesReadAtStart: number) {
    this.logger = logger;
    this.id = id;
    this.client = client;
    this.method = method;
    this.path = path;
    this.startedAt = performance.now();
    this.#bytesReadAtStart = bytesReadAtStart;
  }

  write(res: ServerResponse): void {
    if (this.#written) return;
    this.#written = true;
    const now = performance.now();
    const socket = res.socket ?? res.req?.socket;
    const bytesIn = socket ? socket.bytesRead - this.#bytesReadAtStart : this.bytesIn;
    this.logger.info({
      msg: 'request',
      requestId: this.id,
      client: this.client,
      method: this.method,
      path: this.path,
      route: this.route,
      consumer: this.consumer,
      target: this.target,
      status: this.status || res.statusCode,
      code: this.code,
      details: this.details || undefined,
      bytesIn,
      bytesOut: this.bytesOut,
      upstreamMs: this.upstreamStart === 0 ? undefined : round((this.upstreamHeadersAt || now) - this.upstreamStart),
      durationMs: round(now - this.startedAt),
      retries: this.retries || undefined,
      aborted: this.clientAborted || undefined,
    });
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
