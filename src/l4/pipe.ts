/**
 * @module Copies bytes both ways between a client and a target, as Traefik's tcp/proxy.go does:
 * backpressure through stream pipes, a FIN from one side becomes end() on the other (half-close both
 * ways; sockets are made with allowHalfOpen), an error on either side destroys both, an idle timeout
 * closes both. Reports how it ended once both sockets are closed.
 */

import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AttemptOutcome } from '../upstream/types.ts';
import { looksLikeProxyHeader } from './proxy-protocol.ts';
import type { L4Log } from './types.ts';

/**
 * A connection that carried bytes and ended without a target error. AttemptOutcome has no L4 variant yet;
 * status 0 says "no HTTP status" and counts as a success for health. (Proposed: `{ kind: 'closed' }`.)
 */
export const L4_CLOSED: AttemptOutcome = { kind: 'response', status: 0 };
const RESET: AttemptOutcome = { kind: 'reset' };
const CANCELLED: AttemptOutcome = { kind: 'cancelled' };

/** Errors a peer causes by going away; normal on the Internet, so they are logged at debug. */
function isPeerGone(err: NodeJS.ErrnoException): boolean {
  return err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ECONNABORTED';
}

export interface PipeOptions {
  readonly idleTimeoutMs: number;
  /** Close the connection if the client's first bytes look like a PROXY header (untrusted peer). */
  readonly rejectProxyHeader: boolean;
  readonly log: L4Log;
  /** Log fields naming this connection. */
  readonly fields: Readonly<Record<string, unknown>>;
  readonly onDone: (outcome: AttemptOutcome) => void;
}

/** Pipes `client` ⇄ `upstream` until both are closed. `client` is a net.Socket or a TLSSocket. */
export function pipeBoth(
  client: Duplex & { setTimeout: Socket['setTimeout'] },
  upstream: Socket,
  o: PipeOptions,
): void {
  let outcome: AttemptOutcome = L4_CLOSED;
  let open = 2;
  const onClose = (): void => {
    if (--open === 0) o.onDone(outcome);
  };
  const fail = (side: 'client' | 'upstream', err: NodeJS.ErrnoException): void => {
    if (side === 'upstream' && outcome === L4_CLOSED) outcome = RESET;
    if (side === 'client' && outcome === L4_CLOSED) outcome = CANCELLED;
    if (isPeerGone(err)) o.log.debug({ ...o.fields, side, code: err.code }, 'l4 peer reset');
    else o.log.warn({ ...o.fields, side, code: err.code, err: err.message }, 'l4 socket error');
    client.destroy();
    upstream.destroy();
  };
  client.on('error', (err: NodeJS.ErrnoException) => fail('client', err));
  upstream.on('error', (err: NodeJS.ErrnoException) => fail('upstream', err));
  // A side that closes before the other finished sending was torn down (drain, TLS failure): tear the
  // other down too. After a graceful FIN both ways, the other side's readable has already ended.
  client.on('close', () => {
    if (!upstream.readableEnded) upstream.destroy();
    onClose();
  });
  upstream.on('close', () => {
    if (!client.readableEnded) client.destroy();
    onClose();
  });
  if (o.idleTimeoutMs > 0) {
    // Every byte either way passes through the client socket, so its timer measures the connection's idleness.
    client.setTimeout(o.idleTimeoutMs);
    client.on('timeout', () => {
      o.log.debug(o.fields, 'l4 idle timeout');
      client.destroy();
      upstream.destroy();
    });
  }
  if (o.rejectProxyHeader) {
    // Registered before pipe() so it sees the first chunk before it is forwarded.
    client.once('data', (chunk: Buffer) => {
      if (!looksLikeProxyHeader(chunk)) return;
      o.log.warn(o.fields, 'l4 PROXY header from an untrusted peer');
      client.destroy();
      upstream.destroy();
    });
  }
  client.pipe(upstream);
  upstream.pipe(client);
}
