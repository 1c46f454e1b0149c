/**
 * @module What an HTTP/2 session does against clients that abuse it, beyond what Node and nghttp2 do
 * (test/e2e/h2-hostile-audit.test.ts, docs/tls.md "Hostile HTTP/2 clients"):
 * - rapid reset (CVE-2023-44487): a session whose client resets most streams before their answer is ended;
 * - a response the client takes nothing of (a zero window, a socket it does not read) is reset, and the
 *   upstream request behind it aborted (nginx's send_timeout);
 * - a closing session's socket is destroyed once the client has had time to close its side;
 * - the header limit holds before the client acknowledges SETTINGS (`headerListSize`).
 * h2-server.ts calls `guardSession` for each session and `guardStream` for each stream it serves.
 */
import { constants, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { H2Response } from './h2-exchange.ts';

const kSocket = Symbol('portico.h2GuardSocket');
const kOpen = Symbol('portico.h2OpenStreams');
const kAnswered = Symbol('portico.h2Answered');
const kCancelled = Symbol('portico.h2Cancelled');
const kLingerMs = Symbol('portico.h2LingerMs');
const kLinger = Symbol('portico.h2Linger');
const kSession = Symbol('portico.h2Session');
const kTaken = Symbol('portico.h2Taken');

/**
 * A session with its connection's socket, its streams not yet closed (with their responses), how many of its
 * closed streams had a response head and how many the client reset before one, and its linger time and timer.
 */
type GuardedSession = Http2Session & {
  [kSocket]?: Socket | undefined;
  [kOpen]: Map<ServerHttp2Stream, H2Response>;
  [kAnswered]: number;
  [kCancelled]: number;
  [kLingerMs]: number;
  [kLinger]?: NodeJS.Timeout;
};
/** A stream, its session, and the bytes of its response the client had taken at the last sweep (if any). */
type GuardedStream = ServerHttp2Stream & { [kSession]?: GuardedSession; [kTaken]?: number };

/** The longest a finished session's socket waits for the client to close its side (nginx's lingering_timeout). */
const LINGER_MS = 5_000;

/**
 * Starts the guards of a new session: `socket` is its connection's, `idleTimeout` the listener's (the stall
 * sweep's period, and the linger time up to 5 s; 0 turns the sweep off).
 */
export function guardSession(session: Http2Session, socket: Socket | undefined, idleTimeout: number): void {
  const s = session as GuardedSession;
  s[kSocket] = socket;
  s[kOpen] = new Map();
  s[kAnswered] = 0;
  s[kCancelled] = 0;
  s[kLingerMs] = Math.min(idleTimeout || LINGER_MS, LINGER_MS);
  // One sweep per session rather than a timer per stream, which would cost every request.
  const sweep = idleTimeout > 0 ? setInterval(sweepStalled, idleTimeout, s).unref() : undefined;
  session.once('close', () => clearInterval(sweep));
  // A client's GOAWAY makes Node close the session: the socket must not outlive it either.
  session.once('goaway', () => lingerThenDestroy(s));
}

/** The connection's socket (TLS or TCP) the front handed over for `session`; undefined once it is gone. */
export function connectionOf(session: Http2Session | undefined): Socket | undefined {
  return (session as GuardedSession | undefined)?.[kSocket];
}

/** Counts the stream among its session's open ones until it closes (a module listener: no closure each). */
export function guardStream(session: Http2Session, stream: ServerHttp2Stream, res: H2Response): void {
  const s = session as GuardedSession;
  s[kOpen].set(stream, res);
  (stream as GuardedStream)[kSession] = s;
  stream.on('close', onStreamClose);
}

/** GOAWAY (NO_ERROR): streams in flight finish, then the session ends; its socket is then made sure to close. */
export function closeSession(session: Http2Session): void {
  session.close();
  lingerThenDestroy(session as GuardedSession);
}

/** Ends the session and its connection now (a forced shutdown). */
export function destroySession(session: Http2Session): void {
  session.destroy();
  // A finished session may still be waiting on its socket (see lingerThenDestroy).
  (session as GuardedSession)[kSocket]?.destroy();
}

/**
 * RFC 9113 §6.5.2, as Node counts it: each field's name and value lengths plus 32. `raw` alternates names
 * and values (one character per byte), so 16 per entry is 32 per field. Node applies the advertised
 * SETTINGS_MAX_HEADER_LIST_SIZE only once the client has acknowledged it; before that (a client's first
 * requests, sent with its preface) the limit is Node's 64 KiB default, so h2-server.ts checks this itself.
 */
export function headerListSize(raw: readonly string[]): number {
  let size = raw.length * 16;
  for (const s of raw) size += s.length;
  return size;
}

/** Resets a stream nobody else listens on: Node emits an 'error' for every code but NO_ERROR and CANCEL. */
export function resetStream(stream: ServerHttp2Stream, code: number): void {
  stream.on('error', ignore);
  stream.close(code);
}

function ignore(): void {}

/**
 * Rapid reset (CVE-2023-44487): streams the client resets before their response head cost Portico a request
 * each (routing, an upstream attempt, a log line) and cost the client nothing. nghttp2 ends a session after
 * 1,000 such resets at once (then 33/s); past this many, and more than it was answered, Portico ends it first
 * (GOAWAY ENHANCE_YOUR_CALM), as HAProxy counts "glitches". Browsers cancel streams too, never in that
 * proportion.
 */
const CANCELLED_STREAM_BUDGET = 100;
const RAPID_RESET = new Error('too many streams reset by the client before their response');

function onStreamClose(this: GuardedStream): void {
  const session = this[kSession]!;
  session[kOpen].delete(this);
  if (this.headersSent) session[kAnswered]++;
  else if (++session[kCancelled] > CANCELLED_STREAM_BUDGET && session[kCancelled] > session[kAnswered]) {
    if (!session.destroyed) session.destroy(RAPID_RESET, constants.NGHTTP2_ENHANCE_YOUR_CALM);
  }
}

/**
 * nginx's send_timeout: a response the client takes nothing of for the idle time (a zero flow-control window,
 * or a socket it does not read) is reset, so neither the stream nor the upstream request behind it (held by
 * backpressure, where the upstream's own idle timeout does not see it) is kept for good. Runs every idle time
 * per session: a response with bytes queued at two sweeps in a row and none taken in between is reset (so
 * after one to two idle times). A stream only waiting (for the upstream, or for the client's body) has
 * nothing queued and is left alone.
 */
function sweepStalled(session: GuardedSession): void {
  for (const [stream, res] of session[kOpen]) {
    const s = stream as GuardedStream;
    const taken = res.bytesTaken;
    if (stream.writableLength > 0 && s[kTaken] === taken) {
      stream.close(constants.NGHTTP2_CANCEL);
      // The RST_STREAM may wait behind what the socket cannot send: the stream (and its upstream request) goes now.
      stream.destroy();
    } else s[kTaken] = taken;
  }
}

/**
 * A closing session ends once its streams have; Node then waits, with no deadline, for its last bytes to be
 * sent and for the client to close its side of the connection. A client that does neither (it keeps the TCP
 * connection half-open, or reads nothing) would hold the connection for good. Checked every linger time
 * while streams still run (they keep their own time); once they have all ended, the client has one more
 * linger time to take the rest and close before the socket is destroyed.
 */
function lingerThenDestroy(session: GuardedSession): void {
  const socket = session[kSocket];
  if (socket === undefined || session[kLinger] !== undefined || socket.destroyed) return;
  let ended = false;
  const timer = setTimeout(() => {
    if (socket.destroyed) return;
    const done = session.destroyed || (session.closed && session[kOpen].size === 0);
    if (done && ended) socket.destroy();
    else {
      ended = done;
      timer.refresh();
    }
  }, session[kLingerMs]).unref();
  session[kLinger] = timer;
  socket.once('close', () => clearTimeout(timer));
}
