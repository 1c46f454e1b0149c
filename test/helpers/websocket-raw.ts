/**
 * @module Raw WebSocket handshakes and frames for the conformance tests (RFC 6455): upgrade requests as text,
 * masked client frames, a raw TCP client that reads what comes back, and the `ws` client's open/refused answers.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WebSocket } from 'ws';

export const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** RFC 6455 §1.3's example key. */
export const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
/** Its Sec-WebSocket-Accept. */
export const ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

export const acceptFor = (key: string): string =>
  createHash('sha1')
    .update(key + GUID)
    .digest('base64');

/** An upgrade request as text; `undefined` drops a header. */
export function upgradeRequest(
  path: string,
  headers: Record<string, string | undefined> = {},
  requestLine = `GET ${path} HTTP/1.1`,
): string {
  const all: Record<string, string | undefined> = {
    host: 'ws.test',
    upgrade: 'websocket',
    connection: 'Upgrade',
    'sec-websocket-key': KEY,
    'sec-websocket-version': '13',
    ...headers,
  };
  let text = `${requestLine}\r\n`;
  for (const [name, value] of Object.entries(all)) if (value !== undefined) text += `${name}: ${value}\r\n`;
  return `${text}\r\n`;
}

/** A masked client frame (RFC 6455 §5.2, §5.3). */
export function clientFrame(opcode: number, payload: Buffer | string): Buffer {
  const data = Buffer.from(payload);
  const mask = randomBytes(4);
  const len = data.length;
  let header: Buffer;
  if (len < 126) header = Buffer.from([0x80 | opcode, 0x80 | len]);
  else if (len < 65536) {
    header = Buffer.from([0x80 | opcode, 0x80 | 126, 0, 0]);
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = data[i]! ^ mask[i % 4]!;
  return Buffer.concat([header, mask, masked]);
}

export interface Head {
  readonly status: number;
  readonly headers: Record<string, string>;
  /** Header names as sent, in order. */
  readonly names: string[];
  readonly rest: Buffer;
}

/** A raw TCP client: collects what it reads, knows when the connection ended (FIN) or closed. */
export class RawClient {
  readonly socket: Socket;
  data = Buffer.alloc(0);
  ended = false;
  closed = false;
  readonly #waiters = new Set<() => void>();

  constructor(port: number) {
    this.socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    this.socket.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.#wake();
    });
    this.socket.on('end', () => {
      this.ended = true;
      this.#wake();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  /** Portico ended (its FIN is the end of its answer) or closed the connection. */
  get gone(): boolean {
    return this.ended || this.closed;
  }

  #wake(): void {
    for (const w of this.#waiters) w();
  }

  /** Resolves once `cond` holds; rejects after `ms` (a bound for a failing test, not a measured time). */
  until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!cond()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`raw client: timed out waiting for ${what}; got ${JSON.stringify(this.data.toString())}`));
      }, ms);
      this.#waiters.add(check);
    });
  }

  /** The first response head, once complete. */
  head(): Head | undefined {
    const end = this.data.indexOf('\r\n\r\n');
    if (end === -1) return undefined;
    const lines = this.data.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers: Record<string, string> = {};
    const names: string[] = [];
    for (const line of lines.slice(1)) {
      const i = line.indexOf(':');
      const name = line.slice(0, i);
      names.push(name);
      const lower = name.toLowerCase();
      const value = line.slice(i + 1).trim();
      headers[lower] = headers[lower] === undefined ? value : `${headers[lower]}, ${value}`;
    }
    return { status, headers, names, rest: this.data.subarray(end + 4) };
  }

  async readHead(): Promise<Head> {
    await this.until(() => this.head() !== undefined || this.closed, 'a response head');
    const h = this.head();
    assert.ok(h, `no response head before close: ${JSON.stringify(this.data.toString())}`);
    return h;
  }

  /** The whole answer to a refused upgrade: head and body until the server closes the connection. */
  async readUntilClosed(): Promise<Head> {
    await this.until(() => this.gone, 'the server to close the connection');
    return this.readHead();
  }

  text(): string {
    return this.data.toString('latin1');
  }

  /** Status codes of the response heads read so far, in order. */
  statuses(): number[] {
    return [...this.text().matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
  }

  /** Header `name` of the first response head. */
  header(name: string): string | undefined {
    const head = this.text().split('\r\n\r\n')[0] ?? '';
    const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
    return line?.slice(name.length + 1).trim();
  }

  /** The first response's body (after the first head). */
  body(): string {
    return this.text().split('\r\n\r\n').slice(1).join('\r\n\r\n');
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A raw client on `port` that has sent `request`. */
export async function raw(port: number, request: string | Buffer): Promise<RawClient> {
  const c = new RawClient(port);
  await once(c.socket, 'connect');
  c.socket.write(request);
  return c;
}

/** Polls `cond` every 20 ms, at most `tries` times. */
export async function eventually(cond: () => boolean | Promise<boolean>, what: string, tries = 250): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await cond()) return;
    await sleep(20);
  }
  assert.fail(`never happened: ${what}`);
}

/** Resolves with `ws` once open; rejects with the status of a refused handshake. */
export async function opened(ws: WebSocket): Promise<WebSocket> {
  await Promise.race([
    once(ws, 'open'),
    once(ws, 'unexpected-response').then(([, res]) => {
      throw new Error(`handshake refused: ${(res as IncomingMessage).statusCode}`);
    }),
  ]);
  return ws;
}
