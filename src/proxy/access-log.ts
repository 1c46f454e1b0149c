/**
 * @module One access-log line per exchange (JSON through pino), written when the exchange ends.
 */
import type { ServerResponse } from 'node:http';
import { type Logger, lineWriter } from '../observe/logger.ts';
import { metricsOf } from '../observe/metrics.ts';

/** Logged for an exchange whose client went away before any response was sent (nginx's code). */
const CLIENT_CLOSED_REQUEST = 499;

/**
 * Refusals written past an exchange's response (a request timeout answered straight on the connection or the
 * stream, http-listener.ts, h2-request-timeout.ts), by that response: the exchange then sees its client gone,
 * and logs this status and code rather than 499.
 */
const refusedUnder = new WeakMap<object, { readonly status: number; readonly code: string }>();

/** Records that `res`'s exchange was answered with `status` / `code` by the connection's own refusal. */
export function noteRefusal(res: object, status: number, code: string): void {
  refusedUnder.set(res, { status, code });
}

/** Mutable record of one exchange, filled as it goes; written (and counted in metrics) once at the end. */
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
    // The client left before any response was sent: 499, nginx's "client closed request", not the 200 a
    // response object starts with (the metrics count it too).
    const refused = this.status === 0 ? refusedUnder.get(res) : undefined;
    if (refused !== undefined) {
      this.status = refused.status;
      this.code = refused.code;
      this.clientAborted = false;
    } else if (this.status === 0 && this.clientAborted && !res.headersSent) this.status = CLIENT_CLOSED_REQUEST;
    const now = performance.now();
    // The one per-request metrics hook: a few numbers bumped, no allocation (src/observe/metrics.ts).
    metricsOf(this.logger)?.exchangeDone(this, res, now);
    const out = lineWriter(this.logger);
    if (out === undefined) return;
    const bytesIn = this.#bytesIn(res);
    // The same fields, in the same order, as a pino line (level, time, msg first). Text a client controls
    // (path, an X-Forwarded-For hop as client) is escaped; ids, names and targets are safe by construction.
    let line = `{"level":"info","time":"${isoNow()}","msg":"request","requestId":"${this.id}","client":${JSON.stringify(this.client)},"method":"${this.method}","path":${JSON.stringify(this.path)}`;
    if (this.route !== undefined) line += `,"route":"${this.route}"`;
    if (this.consumer !== undefined) line += `,"consumer":"${this.consumer}"`;
    if (this.target !== undefined) line += `,"target":"${this.target}"`;
    line += `,"status":${this.status || res.statusCode}`;
    if (this.code !== undefined) line += `,"code":"${this.code}"`;
    if (this.details !== '') line += `,"details":${JSON.stringify(this.details)}`;
    line += `,"bytesIn":${bytesIn},"bytesOut":${this.bytesOut}`;
    if (this.upstreamStart !== 0)
      line += `,"upstreamMs":${round((this.upstreamHeadersAt || now) - this.upstreamStart)}`;
    line += `,"durationMs":${round(now - this.startedAt)}`;
    if (this.retries !== 0) line += `,"retries":${this.retries}`;
    if (this.clientAborted) line += ',"aborted":true';
    out(`${line}}\n`);
  }

  /**
   * HTTP/1: what the connection read during the exchange (head and body). An HTTP/2 stream shares its
   * connection's count with the session's other streams, so its request counts its own (h2-exchange.ts).
   */
  #bytesIn(res: ServerResponse): number {
    const req = res.req as (ServerResponse['req'] & Partial<H2RequestBytes>) | undefined;
    if (req?.httpVersionMajor === 2) return (req.headBytes ?? 0) + (req.bodyBytesRead ?? 0);
    const read = (res.socket ?? req?.socket)?.bytesRead;
    return read === undefined ? 0 : read - this.#bytesReadAtStart;
  }
}

/** The byte counts an HTTP/2 request keeps (H2Request in h2-exchange.ts). */
interface H2RequestBytes {
  headBytes: number;
  bodyBytesRead: number;
}

let isoMs = 0;
let isoText = '';

/** The current time as ISO 8601, formatted once per millisecond however many lines share it. */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
