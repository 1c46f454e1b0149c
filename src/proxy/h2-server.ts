/**
 * @module The HTTP/2 side of a listener: a `node:http2` server that never listens itself. The TLS front
 * (ALPN `h2`) and the h2c front (prior knowledge) hand it connections; each stream enters the same request
 * path as HTTP/1's as an H2Request/H2Response pair (h2-exchange.ts), after the checks HTTP/1 requests get in
 * http1-checks.ts that apply to HTTP/2 too (h2-checks.ts `checkH2Request`). Node's compat API is not used.
 * Defences against abusive clients (rapid reset, stalls, half-open sockets) are in h2-guards.ts.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { constants, createServer, type Http2Server, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { ListenerConfig } from '../config/schema.ts';
import { type LocalReply, localReply } from '../errors.ts';
import { ExchangeLog } from './access-log.ts';
import { unmapAddress } from './forwarded.ts';
import { checkH2Request } from './h2-checks.ts';
import { H2Request, H2Response, neverIndexedFor } from './h2-exchange.ts';
import {
  closeSession,
  connectionOf,
  destroySession,
  guardSession,
  guardStream,
  headerListSize,
  resetStream,
} from './h2-guards.ts';
import { guardRequestTimeout } from './h2-request-timeout.ts';
import { MAX_HEADER_FIELDS } from './http1-checks.ts';
import type { ListenerGeneration } from './listener-generation.ts';
import { sendLocalReply } from './local-reply.ts';
import { type EdgeRules, serveRequest } from './redirect.ts';
import { newRequestId } from './request-id.ts';

export interface H2Side {
  readonly server: Http2Server;
  /** Open sessions, for GOAWAY on drain and destroy on force close. */
  readonly sessions: Set<Http2Session>;
}

type Owner = {
  readonly generation: ListenerGeneration & { readonly edge?: EdgeRules | undefined };
  /** The HTTP/1 server, whose `requestTimeout` (kept current by reloads) bounds each stream's request too. */
  readonly server: { readonly requestTimeout: number };
  /** `limits.maxRequestsPerConnection` (kept current by reloads): streams one session may open. */
  readonly maxRequestsPerConnection: number;
};

/** `:method`, `:scheme`, `:authority`, `:path`: a header block holds these besides the fields. */
const PSEUDO_HEADERS = 4;

/** `owner.generation` is read per request, so a reload is seen by open sessions' next streams. */
export function createH2Side(config: ListenerConfig, owner: Owner): H2Side {
  const limits = config.limits;
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
  const streamsOpened = new WeakMap<Http2Session, number>();
  server.prependListener('connection', (socket: Socket) => {
    handedOver = socket;
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, raw: string[]) => {
    const session = stream.session;
    const socket = connectionOf(session);
    if (session === undefined || socket === undefined) {
      // Its session is already gone: nobody to answer.
      resetStream(stream, constants.NGHTTP2_REFUSED_STREAM);
      return;
    }
    // maxRequestsPerConnection (nginx's keepalive_requests): the last allowed stream sends GOAWAY, and a stream
    // the client opened past it (before the GOAWAY reached it) is refused unprocessed, safe to retry (§8.7).
    const max = owner.maxRequestsPerConnection;
    if (max > 0) {
      const opened = (streamsOpened.get(session) ?? 0) + 1;
      streamsOpened.set(session, opened);
      if (opened > max) {
        resetStream(stream, constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      if (opened === max) closeSession(session);
    }
    // Node enforces SETTINGS_MAX_HEADER_LIST_SIZE only once the client has acknowledged our SETTINGS; before
    // that (a client's first requests, sent with its preface) the limit is Node's 64 KiB default. The same
    // reset Node gives once it is acknowledged, so maxHeaderSize holds for every stream.
    const headBytes = headerListSize(raw);
    if (headBytes > limits.maxHeaderSize) {
      resetStream(stream, constants.NGHTTP2_ENHANCE_YOUR_CALM);
      return;
    }
    const req = new H2Request(stream, headers, socket, headBytes);
    const res = new H2Response(stream, req, neverIndexedFor(owner.generation.runtime.settings.requestIdHeader));
    guardStream(session, stream, res);
    guardRequestTimeout(stream, res, owner.server.requestTimeout, owner.generation.runtime.settings.requestIdHeader);
    // CONNECT (RFC 9113 §8.5) is refused as over HTTP/1. Extended CONNECT (RFC 8441) is not offered, so
    // nghttp2 resets a request with `:protocol` before it gets here.
    if (req.method === 'CONNECT') {
      refuse(owner.generation, req, res, headers, CONNECT_REFUSED);
      return;
    }
    serve(owner, req, res, headers, continueMode(headers.expect));
  });
  server.on('session', (session: Http2Session) => {
    guardSession(session, handedOver, limits.idleTimeout);
    handedOver = undefined;
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    // A session with no stream activity for the keep-alive time is closed gracefully (GOAWAY).
    if (limits.idleTimeout > 0) session.setTimeout(limits.idleTimeout, () => closeSession(session));
    if (owner.generation.draining) closeSession(session);
  });
  // Stream and session errors are the peer's doing; Node resets the stream. Nothing to crash on.
  server.on('sessionError', () => {});
  return { server, sessions };
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
    newRequestId(),
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
  for (const s of side.sessions) closeSession(s);
}

export function destroyH2(side: H2Side): void {
  for (const s of side.sessions) destroySession(s);
}
