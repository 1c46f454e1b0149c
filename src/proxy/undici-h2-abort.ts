/**
 * @module HTTP/2 upstream streams cut short: an aborted request whose body was not all sent resets its stream at
 * once, and a response reset before END_STREAM is an error, never a complete response.
 *
 * undici aborts an HTTP/2 request with `stream.close()`. Node's close first ends the writable side, so an
 * upload cut short (over the route's limit, or its client gone) would reach the upstream as a shorter body
 * marked complete (END_STREAM); and with body bytes still queued on the stream, Node 24 then spins in nghttp2
 * for good: one core at 100 % and memory growing without bound, so one such upload took the whole process
 * down. A client stream whose request is unfinished is destroyed instead: RST_STREAM (CANCEL) at once and
 * the queued bytes dropped, which is what abandoning a request means (RFC 9113 §8.1, §5.4.2). Streams whose
 * request was all sent close as before.
 *
 * The other way round, a response the upstream resets (RST_STREAM) after its head and before END_STREAM is
 * cut short, but Node ends the stream's readable side for a reset with NO_ERROR or CANCEL just as for
 * END_STREAM ('end', no 'error'), and undici then reports the response complete: a client would get a short
 * body that looks whole (a last chunk, or END_STREAM). Node pushes that end only after the stream closed,
 * while a real END_STREAM is read before: on undici's streams, an end pushed after the close is turned into
 * an error, so the forwarder aborts the client connection (or answers 502 when no head was sent yet).
 *
 * Node does not export the client stream class: its prototype is reached through the first stream of the
 * first session undici opens (undici calls `http2.connect` through the module object, where it is wrapped).
 * test/e2e/upstream-http2.test.ts and upstream-http2-failures.test.ts hold these behaviours.
 */
import http2 from 'node:http2';
import { createRequire } from 'node:module';
import { addAbortSignal } from 'node:stream';

type StreamClose = (this: http2.ClientHttp2Stream, code?: number, callback?: () => void) => void;
type StreamPush = (this: http2.ClientHttp2Stream, chunk: unknown, encoding?: BufferEncoding) => boolean;

const require = createRequire(import.meta.url);
/** undici's mark on the streams it opens (set right after `session.request()`, before any frame is read). */
const kUndiciStream = (require('undici/lib/core/symbols.js') as { kHTTP2Stream: symbol }).kHTTP2Stream;
/** Set when a stream's readable side ended while it was open: the peer's END_STREAM. */
const kEndStreamRead = Symbol('portico.h2EndStreamRead');

let installed = false;
let patched = false;

/** Installs the wrapper once per process; sessions opened before it are not covered. */
export function resetUnfinishedRequestsOnAbort(): void {
  if (installed) return;
  installed = true;
  const connect = http2.connect;
  const wrapped = function (this: unknown, ...args: Parameters<typeof connect>) {
    const session = connect.apply(this, args);
    if (!patched) watchFirstStream(session);
    return session;
  };
  (http2 as { connect: typeof connect }).connect = wrapped as typeof connect;
}

function watchFirstStream(session: http2.ClientHttp2Session): void {
  const request = session.request;
  session.request = function (this: http2.ClientHttp2Session, ...args: Parameters<typeof request>) {
    const stream = request.apply(this, args);
    if (!patched) {
      patched = true;
      const proto = Object.getPrototypeOf(stream) as { close: StreamClose; push: StreamPush };
      patchClose(proto);
      patchPush(proto);
    }
    // Later streams of this session go straight to Node's method.
    session.request = request;
    return stream;
  } as typeof request;
}

function patchClose(proto: { close: StreamClose }): void {
  const close = proto.close;
  proto.close = function (this: http2.ClientHttp2Stream, code?: number, callback?: () => void): void {
    if (!this.destroyed && (!this.writableEnded || this.writableLength > 0)) {
      if (callback !== undefined) this.once('close', callback);
      // Destroyed by an already aborted signal, the stream gets Node's AbortError, which Node sends as CANCEL.
      addAbortSignal(AbortSignal.abort(), this);
      return;
    }
    close.call(this, code, callback);
  };
}

/** A stream error for a response cut by RST_STREAM; its code is Node's for stream errors. */
class StreamResetError extends Error {
  readonly code = 'ERR_HTTP2_STREAM_ERROR';
}

function patchPush(proto: { push: StreamPush }): void {
  const push = proto.push;
  proto.push = function (this: http2.ClientHttp2Stream, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null && (this as unknown as Record<symbol, unknown>)[kUndiciStream] === true) {
      const self = this as unknown as Record<symbol, boolean>;
      if (!this.closed) self[kEndStreamRead] = true;
      else if (self[kEndStreamRead] !== true) {
        // Closed (reset, or the session gone) before END_STREAM: the response is incomplete. Destroyed on the
        // next tick: Node's close handler that pushed the end still needs the stream's session.
        process.nextTick(destroyReset, this);
        return false;
      }
    }
    return push.call(this, chunk, encoding);
  };
}

function destroyReset(stream: http2.ClientHttp2Stream): void {
  stream.destroy(new StreamResetError(`HTTP/2 stream closed before END_STREAM (code ${stream.rstCode})`));
}
