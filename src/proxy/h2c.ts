/**
 * @module h2c with prior knowledge (RFC 9113 §3.3) on a plain `http` listener: the front server reads the
 * first bytes of each connection; the HTTP/2 connection preface goes to the HTTP/2 side, anything else to the
 * HTTP/1 server. The bytes read are put back, so either parser sees the connection from its first byte.
 *
 * `Upgrade: h2c` (RFC 7540 §3.2, removed by RFC 9113) is never honoured: it is an ordinary HTTP/1 request
 * whose hop-by-hop Upgrade header is dropped.
 */
import { createServer, type Server, type Socket } from 'node:net';

/** The HTTP/2 connection preface: `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`. */
export const H2_PREFACE: Buffer = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** `h2` when `data` is the whole preface, `http1` once it cannot be, `undecided` while it is a prefix of it. */
export function classifyPreface(data: Buffer): 'h2' | 'http1' | 'undecided' {
  const n = Math.min(data.length, H2_PREFACE.length);
  for (let i = 0; i < n; i++) if (data[i] !== H2_PREFACE[i]) return 'http1';
  return data.length >= H2_PREFACE.length ? 'h2' : 'undecided';
}

export interface PeekTargets {
  /** Receives HTTP/1 connections (`emit('connection', socket)`). */
  readonly http1: Server;
  /** Receives HTTP/2 connections. */
  readonly h2: Server;
}

/**
 * A TCP server that peeks at each connection and hands it on. A client that sends nothing within
 * `timeoutMs` (the listener's headers timeout) is disconnected, as the HTTP/1 server would.
 */
export function createH2cFront(targets: PeekTargets, timeoutMs: number): Server {
  return createServer({ noDelay: true }, (socket: Socket) => peek(socket, targets, timeoutMs));
}

function peek(socket: Socket, targets: PeekTargets, timeoutMs: number): void {
  let seen: Buffer | undefined;
  const onTimeout = (): void => {
    socket.destroy();
  };
  const onError = (): void => {
    socket.destroy();
  };
  const onReadable = (): void => {
    let chunk: Buffer | null = socket.read() as Buffer | null;
    while (chunk !== null) {
      seen = seen === undefined ? chunk : Buffer.concat([seen, chunk]);
      chunk = socket.read() as Buffer | null;
    }
    if (seen === undefined) return;
    const kind = classifyPreface(seen);
    if (kind === 'undecided') return;
    socket.off('readable', onReadable);
    socket.off('error', onError);
    socket.off('timeout', onTimeout);
    socket.setTimeout(0);
    socket.unshift(seen);
    (kind === 'h2' ? targets.h2 : targets.http1).emit('connection', socket);
  };
  if (timeoutMs > 0) {
    socket.setTimeout(timeoutMs);
    socket.on('timeout', onTimeout);
  }
  socket.on('error', onError);
  socket.on('readable', onReadable);
}
