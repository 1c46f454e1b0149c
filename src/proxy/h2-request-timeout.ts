/**
 * @module `limits.requestTimeout` for HTTP/2 streams. Node enforces it for HTTP/1 connections only, so an h2
 * client trickling a body (one byte of DATA now and then keeps the session's idle timer from firing) could
 * hold a stream, and the upstream request behind it, for good. A stream whose request has not fully arrived
 * within the timeout is answered 408 (when no response has started), then reset with CANCEL, which stops the
 * upload and tells the exchange its client is gone: the upstream request is aborted, never completed, and the
 * access log records the 408 (nginx's `client_body_timeout`, which terminates the request).
 */
import { constants, type ServerHttp2Stream } from 'node:http2';
import { ERROR_CODES } from '../errors.ts';
import { noteRefusal } from './access-log.ts';
import type { H2Response } from './h2-exchange.ts';
import { PROBLEM_JSON, problemBody } from './local-reply.ts';
import { newRequestId } from './request-id.ts';

const kTimer = Symbol('portico.h2RequestTimer');

type TimedStream = ServerHttp2Stream & { [kTimer]?: NodeJS.Timeout };

/** Starts the stream's request timer (nothing to time when the request had no body or the timeout is 0). */
export function guardRequestTimeout(
  stream: ServerHttp2Stream,
  res: H2Response,
  timeoutMs: number,
  requestIdHeader: string,
): void {
  if (timeoutMs <= 0 || stream.endAfterHeaders) return;
  const timer = setTimeout(onRequestTimeout, timeoutMs, stream, res, requestIdHeader);
  timer.unref();
  (stream as TimedStream)[kTimer] = timer;
  stream.once('close', clearRequestTimer);
}

/** The timer goes with the stream's close: a closed stream's object outlives young collections (h2-exchange.ts). */
function clearRequestTimer(this: TimedStream): void {
  clearTimeout(this[kTimer]);
  this[kTimer] = undefined;
}

function onRequestTimeout(stream: ServerHttp2Stream, res: H2Response, requestIdHeader: string): void {
  if (stream.destroyed || stream.closed) return;
  // The client sent its END_STREAM: the request is whole, however slowly the body is being read.
  const state = stream.state.state;
  if (state === constants.NGHTTP2_STREAM_STATE_HALF_CLOSED_REMOTE || state === constants.NGHTTP2_STREAM_STATE_CLOSED) {
    return;
  }
  const cancel = (): void => {
    if (!stream.destroyed) stream.close(constants.NGHTTP2_CANCEL);
  };
  if (stream.headersSent) {
    cancel();
    return;
  }
  const code = 'GW_REQUEST_TIMEOUT';
  const { status } = ERROR_CODES[code];
  const id = newRequestId();
  noteRefusal(res, status, code);
  const body = problemBody({ status, code, details: '' }, id);
  // Written on the stream, not through the response the exchange holds: the exchange must see a cancelled
  // stream (and abort its upstream request), not a response it could still write to.
  stream.respond({
    ':status': status,
    'content-type': PROBLEM_JSON,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    [requestIdHeader]: id,
  });
  stream.end(body, cancel);
}
