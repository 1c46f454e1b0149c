/**
 * @module Errors of the HTTP/1.1 upstream client. Their codes are undici's for the same failures, so one table
 * (upstream-errors.ts) turns either client's failure into the reply a client gets.
 */

export class UpstreamClientError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** No connection within `connect`. */
export function connectTimeout(): UpstreamClientError {
  return new UpstreamClientError('UND_ERR_CONNECT_TIMEOUT', 'connect timeout');
}

/** No response head within `response` of the last request byte sent. */
export function responseTimeout(): UpstreamClientError {
  return new UpstreamClientError('UND_ERR_HEADERS_TIMEOUT', 'response timeout');
}

/** The response body stood still for `idle`. */
export function idleTimeout(): UpstreamClientError {
  return new UpstreamClientError('UND_ERR_BODY_TIMEOUT', 'idle timeout');
}

/** A response head over the size limit (nginx: "upstream sent too big header"). */
export function headersOverflow(): UpstreamClientError {
  return new UpstreamClientError('UND_ERR_HEADERS_OVERFLOW', 'response head too large');
}

/**
 * The connection closed before the response was complete. `socket.bytesRead` tells a pooled connection the
 * upstream closed as the request went out (it had answered before: a keep-alive race) from a fresh one.
 */
export class UpstreamClosedError extends UpstreamClientError {
  readonly socket: { readonly bytesRead: number };
  constructor(message: string, bytesRead: number) {
    super('UND_ERR_SOCKET', message);
    this.socket = { bytesRead };
  }
}

/** The request was given up by its handler, or its pool closed. */
export function aborted(): UpstreamClientError {
  return new UpstreamClientError('UND_ERR_ABORTED', 'request aborted');
}

/** The request body failed or ended short of its Content-Length. */
export function requestBodyFailed(): UpstreamClientError {
  return new UpstreamClientError('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'request body ended early');
}
