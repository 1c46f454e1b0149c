/**
 * @module Real HTTP servers and clients for tests: upstreams on 127.0.0.1:0 and a small raw-socket client
 * for requests ordinary clients refuse to send.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, connect } from 'node:net';

export interface TestServer {
  readonly server: Server;
  readonly port: number;
  readonly url: string;
  /** Requests seen, in order. */
  readonly seen: IncomingMessage[];
  close(): Promise<void>;
}

/** Starts an HTTP server on 127.0.0.1:0. */
export async function startUpstream(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const seen: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    seen.push(req);
    handler(req, res);
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, 'close').catch(() => {});
    },
  };
}

/** An upstream that answers every request with a JSON echo of what it received. */
export function startEchoUpstream(name = 'echo'): Promise<TestServer> {
  return startUpstream((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      const json = JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers, body });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
      res.end(json);
    });
  });
}

export interface SimpleResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** Options of fetchRaw: `headers` as a flat list may repeat a field; `timeoutMs` bounds the wait (default 20 s). */
export interface RawRequestOptions {
  readonly method?: string;
  readonly headers?: Record<string, string> | string[];
  readonly body?: string | Buffer;
  readonly timeoutMs?: number;
}

/** One request with node:http (a fresh connection, no keep-alive). */
export function fetchRaw(url: string, options: RawRequestOptions = {}): Promise<SimpleResponse> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  return new Promise((resolve, reject) => {
    const headers = options.headers as Record<string, string> | undefined;
    const req = request(url, { method: options.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      );
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs}ms`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/**
 * Sends raw bytes on a new connection and reads until the server closes it, or `ms` passes (then `closed` is
 * false and the connection is dropped).
 */
export async function rawUntilClose(
  port: number,
  data: string | Buffer,
  ms = 5000,
): Promise<{ bytes: Buffer; closed: boolean }> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.on('error', () => {});
  socket.write(data);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  socket.destroy();
  return { bytes: Buffer.concat(chunks), closed };
}

/** What came back on a raw exchange (see rawUntilClose), as text. */
export async function rawExchange(port: number, data: string | Buffer, ms = 5000): Promise<string> {
  return (await rawUntilClose(port, data, ms)).bytes.toString('latin1');
}

/** Status code of the first response in a raw HTTP reply. */
export function statusOf(raw: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(raw);
  return m ? Number(m[1]) : 0;
}
