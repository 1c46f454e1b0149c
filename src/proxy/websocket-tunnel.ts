/**
 * @module An open WebSocket: two sockets piped both ways, frames never buffered beyond the streams' own
 * high-water marks (pipe pauses the faster side). Either side ending ends the other; an error, or silence
 * longer than the idle timeout, destroys both. Tunnels hold their sockets only, never a config generation,
 * so a reload leaves them open.
 */

import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { LocalReply } from '../errors.ts';
import { PROBLEM_JSON, problemBody } from './local-reply.ts';

/** Open WebSockets of one listener: a count the runtime reads, and the sockets to cut on forced shutdown. */
export class WebSocketTunnels {
  /** Tunnels open now. */
  open = 0;
  /** Tunnels opened since start. */
  total = 0;
  readonly #sockets = new Set<Duplex>();

  /** Pipes `client` and `upstream` together until either closes. `idleTimeout` 0 = none. */
  connect(client: Duplex, upstream: Duplex, idleTimeout: number, onClose: () => void): void {
    this.open++;
    this.total++;
    this.#sockets.add(client);
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      this.open--;
      this.#sockets.delete(client);
      client.destroy();
      upstream.destroy();
      onClose();
    };
    const onTimeout = (): void => close();
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    // Every byte crosses the client socket (read or written), so its timer measures the whole tunnel.
    const timed = client as Duplex & { setTimeout?(ms: number): void; setNoDelay?(on: boolean): void };
    if (idleTimeout > 0 && typeof timed.setTimeout === 'function') {
      timed.setTimeout(idleTimeout);
      client.on('timeout', onTimeout);
    }
    timed.setNoDelay?.(true);
    (upstream as Duplex & { setNoDelay?(on: boolean): void }).setNoDelay?.(true);
    upstream.pipe(client);
    client.pipe(upstream);
    client.resume();
    upstream.resume();
  }

  /** Forced shutdown: cut every tunnel. */
  destroyAll(): void {
    for (const s of this.#sockets) s.destroy();
  }
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
  let head = `HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? ''}\r\ncontent-type: ${PROBLEM_JSON}\r\ncontent-length: ${Buffer.byteLength(body)}\r\ncache-control: no-store\r\n${requestIdHeader}: ${requestId}\r\nconnection: close\r\n`;
  if (extra) for (const name in extra) head += `${name}: ${extra[name]}\r\n`;
  if (reply.headers) for (const name in reply.headers) head += `${name}: ${reply.headers[name]}\r\n`;
  socket.end(`${head}\r\n${body}`);
}
