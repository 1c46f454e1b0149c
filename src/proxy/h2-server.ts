/**
 * @module The HTTP/2 side of a listener: a `node:http2` server that never listens itself. The TLS front
 * (ALPN `h2`) and the h2c front (prior knowledge) hand it connections; its requests enter the same request
 * path as HTTP/1's through the compat classes of h2-compat.ts.
 */
import { createServer, type Http2Server, type Http2Session } from 'node:http2';
import type { ListenerConfig } from '../config/schema.ts';
import { H2Request, H2Response } from './h2-compat.ts';
import type { ListenerGeneration } from './listener-generation.ts';
import { type EdgeRules, serveRequest } from './redirect.ts';

export interface H2Side {
  readonly server: Http2Server;
  /** Open sessions, for GOAWAY on drain and destroy on force close. */
  readonly sessions: Set<Http2Session>;
}

/** `owner.generation` is read per request, so a reload is seen by open sessions' next streams. */
export function createH2Side(
  config: ListenerConfig,
  owner: { readonly generation: ListenerGeneration & { readonly edge?: EdgeRules | undefined } },
): H2Side {
  const limits = config.limits;
  const sessions = new Set<Http2Session>();
  const server = createServer(
    {
      Http2ServerRequest: H2Request,
      Http2ServerResponse: H2Response,
      maxHeaderListSize: limits.maxHeaderSize,
      settings: { maxConcurrentStreams: 250, maxHeaderListSize: limits.maxHeaderSize },
    } as Parameters<typeof createServer>[0],
    (req, res) => serveRequest(owner.generation, req as never, res as never, false),
  );
  server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    // A session with no stream activity for the keep-alive time is closed gracefully (GOAWAY).
    if (limits.idleTimeout > 0) session.setTimeout(limits.idleTimeout, () => session.close());
    if (owner.generation.draining) session.close();
  });
  // Stream and session errors are the peer's doing; Node resets the stream. Nothing to crash on.
  server.on('sessionError', () => {});
  return { server, sessions };
}

/** Sends GOAWAY to every session: streams in flight finish, no new ones start. */
export function drainH2(side: H2Side): void {
  for (const s of side.sessions) s.close();
}

export function destroyH2(side: H2Side): void {
  for (const s of side.sessions) s.destroy();
}
