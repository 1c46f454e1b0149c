/**
 * @module Makes an aborted HTTP/2 upstream request whose body was not all sent reset its stream at once.
 *
 * undici aborts an HTTP/2 request with `stream.close()`. Node's close first ends the writable side, so an
 * upload cut short (over the route's limit, or its client gone) would reach the upstream as a shorter body
 * marked complete (END_STREAM); and with body bytes still queued on the stream, Node 24 then spins in nghttp2
 * for good: one core at 100 % and memory growing without bound, so one such upload took the whole process
 * down. A client stream whose request is unfinished is destroyed instead: RST_STREAM (CANCEL) at once and
 * the queued bytes dropped, which is what abandoning a request means (RFC 9113 §8.1, §5.4.2). Streams whose
 * request was all sent close as before.
 *
 * Node does not export the client stream class: its prototype is reached through the first stream of the
 * first session undici opens (undici calls `http2.connect` through the module object, where it is wrapped).
 * test/e2e/upstream-http2.test.ts holds both behaviours.
 */
import http2 from 'node:http2';
import { addAbortSignal } from 'node:stream';

type StreamClose = (this: http2.ClientHttp2Stream, code?: number, callback?: () => void) => void;

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
      patchClose(Object.getPrototypeOf(stream) as { close: StreamClose });
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
