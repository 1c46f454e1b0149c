/**
 * @module The HTTP/2 side of a listener: a `node:http2` server that never listens itself. The TLS front
 * (ALPN `h2`) and the h2c front (prior knowledge) hand it connections; each stream enters the same request
 * path as HTTP/1's as an H2Request/H2Response pair (h2-exchange.ts), after the checks HTTP/1 requests get in
 * http1-checks.ts that apply to HTTP/2 too (h2-checks.ts `checkH2Request`). Node's compat API is not used.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { constants, createServer, type Http2Server, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { ListenerConfig } from '../config/schema.ts';
import { type LocalReply, localReply } from '../errors.ts';
import { ExchangeLog } from './access-log.ts';
import { unmapAddress } from './forwarded.ts';
import { checkH2Request } from './h2-checks.ts';
import { H2Request, H2Response } from './h2-exchange.ts';
import { MAX_HEADER_FIELDS } from './http1-checks.ts';
import type { ListenerGeneration } from './listener-generation.ts';
import { sendLocalReply } from './local-reply.ts';
import { type EdgeRules, serveRequest } from './redirect.ts';

export interface H2Side {
  readonly server: Http2Server;
  /** Open sessions, for GOAWAY on drain and destroy on force close. */
  readonly sessions: Set<Http2Session>;
  /** How long a finished session's socket may wait for the client to close its side. */
  readonly linger: number;
}

type Owner = { readonly generation: ListenerGeneration & { readonly edge?: EdgeRules | undefined } };

/** `:method`, `:scheme`, `:authority`, `:path`: a header block holds these besides the fields. */
const PSEUDO_HEADERS = 4;

/** `owner.generation` is read per request, so a reload is seen by open sessions' next streams. */
export function createH2Side(config: ListenerConfig, owner: Owner): H2Side {
  const limits = config.limits;
  const linger = Math.min(limits.idleTimeout || LINGER_MS, LINGER_MS);
  const sessions = new Set<Http2Session>();
  const server = createServer({
    maxHeaderListSize: limits.maxHeaderSize,
    // As many fields as HTTP/1 allows (Node's default is 128, and browsers send each cookie as its own
    // field, RFC 9113 §8.2.3); past it the stream is reset (ENHANCE_YOUR_CALM).
    maxHeaderListPairs: MAX_HEADER_FIELDS + PSEUDO_HEADERS,
    settings: { maxConcurrentStreams: 250, maxHeaderListSize: limits.maxHeaderSize },
  } as Parameters<typeof createServer>[0]);
  // The session's own `socket` is a stand-in that throws once the session is gone; requests get the real one,
  // which the fronts hand over with 'connection' just before Node makes the session.
  let handedOver: Socket | undefined;
  server.prependListener('connection', (socket: Socket) => {
    handedOver = socket;
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, raw: string[]) => {
    const session = stream.session as TrackedSession | undefined;
    const socket = session?.[kConnection];
    if (session === undefined || socket === undefined) {
      // Its session is already gone: nobody to answer.
      resetStream(stream, constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    // Node enforces SETTINGS_MAX_HEADER_LIST_SIZE only once the client has acknowledged our SETTINGS; before
    // that (a client's first requests, sent with its preface) the limit is Node's 64 KiB default. The same
    // reset Node gives once it is acknowledged, so maxHeaderSize holds for every stream.
    if (headerListSize(raw) > limits.maxHeaderSize) {
      resetStream(stream, constants.NGHTTP2_ENHANCE_YOUR_CALM);
      return;
    }
    const req = new H2Request(stream, headers, socket);
    const res = new H2Response(stream, req);
    track(session, stream, res);
    // CONNECT (RFC 9113 §8.5) is refused as over HTTP/1. Extended CONNECT (RFC 8441) is not offered, so
    // nghttp2 resets a request with `:protocol` before it gets here.
    if (req.method === 'CONNECT') {
      refuse(owner.generation, req, res, headers, CONNECT_REFUSED);
      return;
    }
    serve(owner, req, res, headers, continueMode(headers.expect));
  });
  server.on('session', (session: Http2Session) => {
    const tracked = session as TrackedSession;
    tracked[kConnection] = handedOver;
    tracked[kOpen] = new Map();
    tracked[kAnswered] = 0;
    tracked[kCancelled] = 0;
    handedOver = undefined;
    sessions.add(session);
    // nginx's send_timeout, per session rather than per stream (a timer per stream would cost every request):
    // see sweepStalled.
    const sweep = limits.idleTimeout > 0 ? setInterval(sweepStalled, limits.idleTimeout, tracked).unref() : undefined;
    session.once('close', () => {
      sessions.delete(session);
      clearInterval(sweep);
    });
    // A session with no stream activity for the keep-alive time is closed gracefully (GOAWAY).
    if (limits.idleTimeout > 0) session.setTimeout(limits.idleTimeout, () => closeSession(session, linger));
    // A client's GOAWAY makes Node close the session: the socket must not outlive it either.
    session.once('goaway', () => lingerThenDestroy(session, linger));
    if (owner.generation.draining) closeSession(session, linger);
  });
  // Stream and session errors are the peer's doing; Node resets the stream. Nothing to crash on.
  server.on('sessionError', () => {});
  return { server, sessions, linger };
}

const kConnection = Symbol('portico.h2Connection');
const kOpen = Symbol('portico.h2OpenStreams');
const kAnswered = Symbol('portico.h2Answered');
const kCancelled = Symbol('portico.h2Cancelled');
const kLinger = Symbol('portico.h2Linger');
const kSession = Symbol('portico.h2Session');
const kTaken = Symbol('portico.h2Taken');
/**
 * A session with the socket the front handed over, its streams not yet closed (with their responses), how
 * many of its closed streams had a response head and how many the client reset before one, and its linger
 * timer.
 */
type TrackedSession = Http2Session & {
  [kConnection]?: Socket;
  [kOpen]: Map<ServerHttp2Stream, H2Response>;
  [kAnswered]: number;
  [kCancelled]: number;
  [kLinger]?: NodeJS.Timeout;
};
/** A stream, its session, and the bytes of its response the client had taken at the last sweep (if any). */
type TrackedStream = ServerHttp2Stream & { [kSession]?: TrackedSession; [kTaken]?: number };

/** Counts the stream among its session's open ones until it closes (a module listener: no closure each). */
function track(session: TrackedSession, stream: ServerHttp2Stream, res: H2Response): void {
  session[kOpen].set(stream, res);
  (stream as TrackedStream)[kSession] = session;
  stream.on('close', onStreamClose);
}

/**
 * nginx's send_timeout: a response the client takes nothing of for the idle time (a zero flow-control window,
 * or a socket it does not read) is reset, so neither the stream nor the upstream request behind it (held by
 * backpressure, where the upstream's own idle timeout does not see it) is kept for good. Runs every idle time
 * per session: a response with bytes queued at two sweeps in a row and none taken in between is reset (so
 * after one to two idle times). A stream only waiting (for the upstream, or for the client's body) has
 * nothing queued and is left alone.
 */
function sweepStalled(session: TrackedSession): void {
  for (const [stream, res] of session[kOpen]) {
    const s = stream as TrackedStream;
    const taken = res.bytesTaken;
    if (stream.writableLength > 0 && s[kTaken] === taken) {
      stream.close(constants.NGHTTP2_CANCEL);
      // The RST_STREAM may wait behind what the socket cannot send: the stream (and its upstream request) goes now.
      stream.destroy();
    } else s[kTaken] = taken;
  }
}

/**
 * Rapid reset (CVE-2023-44487): streams the client resets before their response head cost Portico a request
 * each (routing, an upstream attempt, a log line) and cost the client nothing. nghttp2 ends a session after
 * 1,000 such resets at once (then 33/s); past this many, and more than it was answered, Portico ends it first
 * (GOAWAY ENHANCE_YOUR_CALM), as HAProxy counts "glitches". Browsers cancel streams too, never in that
 * proportion.
 */
const CANCELLED_STREAM_BUDGET = 100;
const RAPID_RESET = new Error('too many streams reset by the client before their response');

function onStreamClose(this: TrackedStream): void {
  const session = this[kSession]!;
  session[kOpen].delete(this);
  if (this.headersSent) session[kAnswered]++;
  else if (++session[kCancelled] > CANCELLED_STREAM_BUDGET && session[kCancelled] > session[kAnswered]) {
    if (!session.destroyed) session.destroy(RAPID_RESET, constants.NGHTTP2_ENHANCE_YOUR_CALM);
  }
}

/** The longest a finished session's socket waits for the client to close its side (nginx's lingering_timeout). */
const LINGER_MS = 5_000;

/**
 * RFC 9113 §6.5.2, as Node counts it: each field's name and value lengths plus 32. `raw` alternates names
 * and values (one character per byte), so 16 per entry is 32 per field.
 */
function headerListSize(raw: readonly string[]): number {
  let size = raw.length * 16;
  for (const s of raw) size += s.length;
  return size;
}

/** Resets a stream nobody else listens on: Node emits an 'error' for every code but NO_ERROR and CANCEL. */
function resetStream(stream: ServerHttp2Stream, code: number): void {
  stream.on('error', ignore);
  stream.close(code);
}

function ignore(): void {}

/** GOAWAY (NO_ERROR): streams in flight finish, then the session ends; its socket is then made sure to close. */
function closeSession(session: Http2Session, linger: number): void {
  session.close();
  lingerThenDestroy(session, linger);
}

/**
 * A closing session ends once its streams have; Node then waits, with no deadline, for its last bytes to be
 * sent and for the client to close its side of the connection. A client that does neither (it keeps the TCP
 * connection half-open, or reads nothing) would hold the connection for good. Checked every `linger` ms while
 * streams still run (they keep their own time); once they have all ended, the client has one more `linger`
 * to take the rest and close before the socket is destroyed.
 */
function lingerThenDestroy(session: Http2Session, linger: number): void {
  const s = session as TrackedSession;
  const socket = s[kConnection];
  if (socket === undefined || s[kLinger] !== undefined || socket.destroyed) return;
  let ended = false;
  const timer = setTimeout(() => {
    if (socket.destroyed) return;
    const done = session.destroyed || (session.closed && s[kOpen].size === 0);
    if (done && ended) socket.destroy();
    else {
      ended = done;
      timer.refresh();
    }
  }, linger).unref();
  s[kLinger] = timer;
  socket.once('close', () => clearTimeout(timer));
}

/** What `Expect` asked of a request: nothing, `100-continue`, or an expectation that cannot be met. */
type ContinueMode = 0 | 1 | 2;
const CONTINUE_NONE = 0;
const CONTINUE_EXPECTED = 1;
const CONTINUE_UNMET = 2;

/**
 * `Expect: 100-continue`: the interim response is sent once the request is accepted, as over HTTP/1. The
 * expectation is case-insensitive (RFC 9110 §10.1.1); anything else cannot be met (417).
 */
function continueMode(expect: string | undefined): ContinueMode {
  if (expect === undefined) return CONTINUE_NONE;
  return expect.toLowerCase() === '100-continue' ? CONTINUE_EXPECTED : CONTINUE_UNMET;
}

const CONNECT_REFUSED = localReply('GW_METHOD_NOT_ALLOWED', 'method_refused:CONNECT');
const EXPECTATION_FAILED = localReply('GW_EXPECTATION_FAILED', 'unsupported_expectation');

/** Every HTTP/2 request enters here: the checks HTTP/1 gets from its listener, then the shared request path. */
function serve(owner: Owner, req: H2Request, res: H2Response, h2: IncomingHttpHeaders, expect: ContinueMode): void {
  const lg = owner.generation;
  const refusal = checkH2Request(h2) ?? (expect === CONTINUE_UNMET ? EXPECTATION_FAILED : undefined);
  if (refusal !== undefined) {
    refuse(lg, req, res, h2, refusal);
    return;
  }
  serveRequest(lg, req as never, res as never, expect === CONTINUE_EXPECTED);
}

/** A local reply to a request refused before it reached the proxy; the session stays open. */
function refuse(
  lg: ListenerGeneration,
  req: H2Request,
  res: H2Response,
  h2: IncomingHttpHeaders,
  reply: LocalReply,
): void {
  const settings = lg.runtime.settings;
  const socket = req.socket;
  // A CONNECT request has no `:path`; its target is the authority (as in HTTP/1's authority-form).
  const target = req.url ?? h2[':authority'] ?? '';
  const log = new ExchangeLog(
    lg.logger,
    randomUUID(),
    unmapAddress(socket.remoteAddress),
    req.method,
    target,
    socket.bytesRead,
  );
  log.status = reply.status;
  log.code = reply.code;
  log.details = reply.details;
  res.once('close', () => log.write(res as never));
  sendLocalReply(res as never, reply, log.id, settings.requestIdHeader, settings.replyHeaders);
}

/**
 * Sends GOAWAY (NO_ERROR, the last stream processed) to every session: streams in flight finish, the session
 * closes after its last one, and the client knows any stream it opened past that id was not processed and
 * may be retried elsewhere (RFC 9113 §6.8). A two-phase GOAWAY (2^31-1 first) would gain nothing here:
 * nghttp2 ignores new streams once any GOAWAY has been sent.
 */
export function drainH2(side: H2Side): void {
  for (const s of side.sessions) closeSession(s, side.linger);
}

export function destroyH2(side: H2Side): void {
  for (const s of side.sessions) {
    s.destroy();
    // A finished session may still be waiting on its socket (see lingerThenDestroy).
    (s as TrackedSession)[kConnection]?.destroy();
  }
}
