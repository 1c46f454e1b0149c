/**
 * @module A raw TCP upstream for HTTP/1 client tests: a `node:net` server on 127.0.0.1:0 whose handler writes
 * exact bytes, so a test controls framing (extra bytes, early closes, stalls). It counts connections, keeps
 * every byte each connection received, and can split what it reads into requests (head plus a Content-Length
 * or chunked body) for handlers that answer request by request.
 */
import { once } from 'node:events';
import { type AddressInfo, createServer, type Socket } from 'node:net';

/** One request as the upstream read it. */
export interface RawRequest {
  /** The head, request line to the empty line, without the final CRLF CRLF. */
  readonly head: string;
  readonly method: string;
  readonly path: string;
  /** Field names lowercased; repeated fields joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body as sent (chunked bodies keep their chunk framing). */
  readonly body: Buffer;
  /** Which request on its connection (0 for the first). */
  readonly index: number;
}

/** One accepted connection. */
export interface RawConnection {
  readonly socket: Socket;
  /** Which connection (0 for the first accepted). */
  readonly index: number;
  /** Every byte read from it so far. */
  received(): Buffer;
  /** Settles when the peer has closed or ended it. */
  readonly closed: Promise<void>;
}

export interface RawUpstream {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Connections accepted, in order. */
  readonly connections: RawConnection[];
  close(): Promise<void>;
}

/** Starts a raw upstream; `onConnection` runs for each accepted socket. */
export async function startRawUpstream(onConnection: (conn: RawConnection) => void): Promise<RawUpstream> {
  const connections: RawConnection[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    const closed = new Promise<void>((resolve) => {
      socket.once('end', () => resolve());
      socket.once('close', () => {
        sockets.delete(socket);
        resolve();
      });
    });
    const conn: RawConnection = {
      socket,
      index: connections.length,
      received: () => Buffer.concat(chunks),
      closed,
    };
    connections.push(conn);
    onConnection(conn);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections,
    async close() {
      for (const s of sockets) s.destroy();
      if (!server.listening) return;
      server.close();
      await once(server, 'close');
    },
  };
}

/**
 * Calls `onRequest` for each complete request read on `socket` (head, then a Content-Length or chunked body).
 * Bytes that do not make a complete request yet wait for more; a request with a Content-Length that is not
 * one decimal number (two of them, say) closes the connection, as a strict server would.
 */
export function onRequests(socket: Socket, onRequest: (req: RawRequest) => void): void {
  let pending = Buffer.alloc(0);
  let index = 0;
  socket.on('data', (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      const parsed = splitRequest(pending, index);
      if (parsed === undefined) return;
      if (parsed === 'invalid') {
        socket.destroy();
        return;
      }
      pending = pending.subarray(parsed.used);
      index++;
      onRequest(parsed.req);
    }
  });
}

/** A raw upstream that answers every request from `answer` (exact bytes, or nothing when it returns undefined). */
export function startAnsweringUpstream(
  answer: (req: RawRequest, conn: RawConnection) => string | Buffer | undefined,
): Promise<RawUpstream> {
  return startRawUpstream((conn) => {
    onRequests(conn.socket, (req) => {
      const bytes = answer(req, conn);
      if (bytes !== undefined) conn.socket.write(bytes);
    });
  });
}

function splitRequest(buf: Buffer, index: number): { req: RawRequest; used: number } | 'invalid' | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const head = buf.subarray(0, end).toString('latin1');
  const lines = head.split('\r\n');
  const [method = '', path = ''] = lines[0]!.split(' ');
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const bodyStart = end + 4;
  let bodyEnd = bodyStart;
  if (headers['transfer-encoding'] !== undefined) {
    const last = buf.indexOf('\r\n0\r\n\r\n', bodyStart - 2);
    if (last >= 0) bodyEnd = last + 7;
    else if (buf.subarray(bodyStart, bodyStart + 5).toString() === '0\r\n\r\n') bodyEnd = bodyStart + 5;
    else return undefined;
  } else if (headers['content-length'] !== undefined) {
    if (!/^\d+$/.test(headers['content-length'])) return 'invalid';
    bodyEnd = bodyStart + Number(headers['content-length']);
    if (buf.length < bodyEnd) return undefined;
  }
  const req: RawRequest = { head, method, path, headers, body: buf.subarray(bodyStart, bodyEnd), index };
  return { req, used: bodyEnd };
}

/** A 200 response with a Content-Length body (and `extra` header lines, each ending in CRLF). */
export function okResponse(body: string, extra = ''): string {
  return `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

/** A 200 response with a chunked body, one chunk per part, then `trailers` (header lines ending in CRLF). */
export function chunkedResponse(parts: string[], trailers = ''): string {
  let out = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n';
  for (const p of parts) out += `${Buffer.byteLength(p).toString(16)}\r\n${p}\r\n`;
  return `${out}0\r\n${trailers}\r\n`;
}
