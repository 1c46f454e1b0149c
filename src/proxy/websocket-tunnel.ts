/**
 * @module An open WebSocket: two sockets piped both ways, frames never buffered beyond the streams' own
 * high-water marks (pipe pauses the faster side). Tunnels hold their sockets only, never a config generation,
 * so a reload leaves them open.
 *
 * Closing (RFC 6455 §7, RFC 9112 §9.6): a FIN from one side is passed on after the bytes before it, and the
 * other side then has `HALF_CLOSE_LINGER_MS` to finish (a closing handshake's last frame, its own FIN) before
 * both sockets are cut. A side that closes completely has its peer ended the same way. An error (a reset), or
 * silence longer than the idle timeout, destroys both at once. nginx cuts both sides as soon as one sends FIN;
 * HAProxy keeps a half-closed tunnel for `timeout client-fin`: the linger sits between the two, so a closing
 * handshake completes and a peer that never closes cannot hold a socket.
 */

import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { LocalReply } from '../errors.ts';
import { PROBLEM_JSON, problemBody } from './local-reply.ts';

/** After one side's FIN (or close) was passed on, how long the other side may take to close before it is cut. */
export const HALF_CLOSE_LINGER_MS = 1000;

type TimedSocket = Duplex & { setTimeout?(ms: number): void; setNoDelay?(on: boolean): void };

/** Open WebSockets of one listener: a count the runtime reads, and the sockets to cut on forced shutdown. */
export class WebSocketTunnels {
  /** Tunnels open now. */
  open = 0;
  /** Tunnels opened since start. */
  total = 0;
  /** Client sockets of upgrades being handled and of open tunnels. */
  readonly #sockets = new Set<Duplex>();

  /** A client socket whose upgrade is being handled: forced shutdown cuts it too. */
  track(client: Duplex): void {
    this.#sockets.add(client);
    client.once('close', () => this.#sockets.delete(client));
  }

  /** Pipes `client` and `upstream` together until both closed; `onClose` runs once then. `idleTimeout` 0 = none. */
  connect(client: Duplex, upstream: Duplex, idleTimeout: number, onClose: () => void): void {
    this.open++;
    this.total++;
    this.track(client);
    let closed = 0;
    let linger: NodeJS.Timeout | undefined;
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    const startLinger = (): void => {
      if (linger === undefined) linger = setTimeout(cut, HALF_CLOSE_LINGER_MS);
    };
    const onSocketClose = (): void => {
      if (++closed === 2) {
        if (linger !== undefined) clearTimeout(linger);
        this.open--;
        onClose();
        return;
      }
      // One side is gone: the other gets what is queued for it, then FIN. What it still sends has nowhere to
      // go; reading it on lets its own FIN arrive.
      upstream.unpipe(client);
      client.unpipe(upstream);
      for (const s of [client, upstream]) {
        if (s.destroyed) continue;
        if (!s.writableEnded) s.end();
        s.resume();
      }
      startLinger();
    };
    client.on('error', cut);
    upstream.on('error', cut);
    client.on('close', onSocketClose);
    upstream.on('close', onSocketClose);
    // A FIN: pipe passes it on (end()) after the bytes before it.
    client.on('end', startLinger);
    upstream.on('end', startLinger);
    // Every byte crosses the client socket (read or written), so its timer measures the whole tunnel.
    const timed = client as TimedSocket;
    if (idleTimeout > 0 && typeof timed.setTimeout === 'function') {
      timed.setTimeout(idleTimeout);
      client.on('timeout', cut);
    }
    timed.setNoDelay?.(true);
    (upstream as TimedSocket).setNoDelay?.(true);
    upstream.pipe(client);
    client.pipe(upstream);
  }

  /** Forced shutdown: cut every tunnel and every upgrade in progress. */
  destroyAll(): void {
    for (const s of this.#sockets) s.destroy();
  }
}

/**
 * Ends a client connection after a final answer (RFC 9112 §9.6): FIN after the answer, then what the client
 * still sends is read and dropped until it closes too, at most `HALF_CLOSE_LINGER_MS`. Closing at once could
 * reset the connection before the client read the answer.
 */
export function endAndLinger(socket: Duplex, last?: string): void {
  socket.end(last);
  socket.resume();
  const timer = setTimeout(() => socket.destroy(), HALF_CLOSE_LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/** Writes a problem+json local reply on a raw (not yet upgraded) client socket and closes it. */
export function writeSocketReply(
  socket: Duplex,
  reply: LocalReply,
  requestId: string,
  requestIdHeader: string,
  extra: Readonly<Record<string, string>> | undefined,
): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = problemBody(reply, requestId);
  // RFC 9110 §7.8: a response that carries Upgrade (a 426) names it in Connection too.
  const connection = reply.headers?.upgrade === undefined ? 'close' : 'upgrade, close';
  let head = `HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? ''}\r\ndate: ${new Date().toUTCString()}\r\ncontent-type: ${PROBLEM_JSON}\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\n${requestIdHeader}: ${requestId}\r\nconnection: ${connection}\r\n`;
  if (extra) for (const name in extra) head += `${name}: ${extra[name]}\r\n`;
  if (reply.headers) for (const name in reply.headers) head += `${name}: ${reply.headers[name]}\r\n`;
  endAndLinger(socket, `${head}\r\n${body}`);
}
