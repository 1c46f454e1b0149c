/**
 * @module A raw HTTP/2 client for tests: frames written by hand over a net or TLS socket (HPACK literals, so any
 * header block can be sent, malformed ones included), and every frame received kept in order.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const DATA = 0x0;
export const HEADERS = 0x1;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const PUSH_PROMISE = 0x5;
export const PING = 0x6;
export const GOAWAY = 0x7;
export const WINDOW_UPDATE = 0x8;
export const CONTINUATION = 0x9;
export const END_STREAM = 0x1;
export const END_HEADERS = 0x4;
export const ACK = 0x1;
/** Error codes (RFC 9113 §7). */
export const PROTOCOL_ERROR = 0x1;
export const INTERNAL_ERROR = 0x2;
export const FRAME_SIZE_ERROR = 0x6;
export const REFUSED_STREAM = 0x7;
export const CANCEL = 0x8;
export const COMPRESSION_ERROR = 0x9;
export const ENHANCE_YOUR_CALM = 0xb;

export type Fields = [string, string][];

function hpackInteger(value: number, prefixBits: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [value];
  const out = [max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

/** A header block of "literal without indexing, new name" fields, no Huffman (RFC 7541 §6.2.2): sent as given. */
export function headerBlock(fields: Fields): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    const n = Buffer.from(name, 'latin1');
    const v = Buffer.from(value, 'latin1');
    parts.push(Buffer.from([0, ...hpackInteger(n.length, 7)]), n, Buffer.from(hpackInteger(v.length, 7)), v);
  }
  return Buffer.concat(parts);
}

export function frame(type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** RFC 7541 Appendix B codes of the ten digits: enough to read a `:status` value. */
const HUFFMAN_DIGITS: Record<string, string> = {
  '00000': '0',
  '00001': '1',
  '00010': '2',
  '011001': '3',
  '011010': '4',
  '011011': '5',
  '011100': '6',
  '011101': '7',
  '011110': '8',
  '011111': '9',
};

/** RFC 7541 Appendix A: the static table's `:status` entries. */
const STATIC_STATUS: Record<number, number> = { 8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500 };

/**
 * The `:status` of a response header block that is the first on its connection (no dynamic table entry can
 * be referenced yet): Node writes `:status` first, either indexed from the static table or as a literal with
 * the static name `:status` (index 8), plain or Huffman-coded.
 */
export function statusOfBlock(block: Buffer): number {
  const first = block[0]!;
  if (first & 0x80) return STATIC_STATUS[first & 0x7f] ?? 0;
  assert.ok((first & 0x0f) === 8 || (first & 0x3f) === 8, 'status is not the first field');
  const huffman = (block[1]! & 0x80) !== 0;
  const bytes = block.subarray(2, 2 + (block[1]! & 0x7f));
  if (!huffman) return Number(bytes.toString('latin1'));
  let bits = '';
  for (const b of bytes) bits += b.toString(2).padStart(8, '0');
  let out = '';
  let code = '';
  for (const bit of bits) {
    code += bit;
    const digit = HUFFMAN_DIGITS[code];
    if (digit !== undefined) {
      out += digit;
      code = '';
    }
  }
  return Number(out);
}

export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly stream: number;
  readonly payload: Buffer;
}

export interface StreamResult {
  /** `:status` of the first HEADERS frame (0 when none came; 100 for an interim response). */
  readonly status: number;
  /** Statuses of every HEADERS frame on the stream (interim, final; trailers read as 0). */
  readonly statuses: number[];
  readonly body: string;
  /** RST_STREAM error code, when the stream was reset. */
  readonly rst: number | undefined;
}

/** One HTTP/2 connection written frame by frame. SETTINGS are acknowledged; PINGs too unless told not to. */
export class RawH2 {
  readonly socket: Socket;
  readonly frames: Frame[] = [];
  closed = false;
  ackPings = true;
  #buffer = Buffer.alloc(0);
  #waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.#read(chunk));
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    socket.on('error', () => {});
  }

  static async open(port: number, tls = false): Promise<RawH2> {
    const socket = tls
      ? tlsConnect({ port, host: '127.0.0.1', ALPNProtocols: ['h2'], rejectUnauthorized: false, servername: 'h2.test' })
      : netConnect(port, '127.0.0.1');
    await once(socket, tls ? 'secureConnect' : 'connect');
    const client = new RawH2(socket);
    socket.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
    return client;
  }

  #read(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    while (this.#buffer.length >= 9) {
      const length = this.#buffer.readUIntBE(0, 3);
      if (this.#buffer.length < 9 + length) break;
      const f: Frame = {
        type: this.#buffer[3]!,
        flags: this.#buffer[4]!,
        stream: this.#buffer.readUInt32BE(5) & 0x7fffffff,
        payload: this.#buffer.subarray(9, 9 + length),
      };
      this.#buffer = this.#buffer.subarray(9 + length);
      this.frames.push(f);
      if (f.type === SETTINGS && !(f.flags & ACK)) this.socket.write(frame(SETTINGS, ACK, 0));
      if (f.type === PING && !(f.flags & ACK) && this.ackPings) this.ackPing(f);
    }
    this.#wake();
  }

  ackPing(ping: Frame): void {
    this.socket.write(frame(PING, ACK, 0, ping.payload));
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves once `test` holds (checked after every frame); rejects when the connection closes or after `ms`. */
  async until<T>(test: () => T | undefined, what: string, ms = 10_000): Promise<T> {
    const deadline = performance.now() + ms;
    for (;;) {
      const value = test();
      if (value !== undefined) return value;
      if (this.closed) throw new Error(`connection closed while waiting for ${what}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  headers(stream: number, fields: Fields, endStream = true): void {
    this.socket.write(frame(HEADERS, END_HEADERS | (endStream ? END_STREAM : 0), stream, headerBlock(fields)));
  }

  data(stream: number, data: string | Buffer, endStream = false): void {
    this.socket.write(frame(DATA, endStream ? END_STREAM : 0, stream, Buffer.from(data)));
  }

  reset(stream: number, code: number): void {
    const payload = Buffer.alloc(4);
    payload.writeUInt32BE(code);
    this.socket.write(frame(RST_STREAM, 0, stream, payload));
  }

  /** GOAWAY frames received: last stream id and error code. */
  goaways(): { lastStream: number; code: number }[] {
    return this.frames
      .filter((f) => f.type === GOAWAY)
      .map((f) => ({ lastStream: f.payload.readUInt32BE(0) & 0x7fffffff, code: f.payload.readUInt32BE(4) }));
  }

  /** Waits for the stream to end (END_STREAM or RST_STREAM) and reports what came on it. */
  async result(stream: number): Promise<StreamResult> {
    await this.until(() => {
      const done = this.frames.some(
        (f) =>
          f.stream === stream && (f.type === RST_STREAM || ((f.type === DATA || f.type === HEADERS) && f.flags & 1)),
      );
      return done ? true : undefined;
    }, `the end of stream ${stream}`);
    const mine = this.frames.filter((f) => f.stream === stream);
    const heads = mine.filter((f) => f.type === HEADERS);
    const statuses = heads.map((f, i) => (i === 0 || !(f.flags & END_STREAM) ? statusOfBlock(f.payload) : 0));
    const rst = mine.find((f) => f.type === RST_STREAM);
    return {
      status: statuses[0] ?? 0,
      statuses,
      body: Buffer.concat(mine.filter((f) => f.type === DATA).map((f) => f.payload)).toString(),
      rst: rst?.payload.readUInt32BE(0),
    };
  }

  /** The frames of `stream` once it ended (END_STREAM or RST_STREAM). */
  async ended(stream: number): Promise<Frame[]> {
    await this.until(
      () =>
        this.frames.some(
          (f) =>
            f.stream === stream &&
            (f.type === RST_STREAM || ((f.type === DATA || f.type === HEADERS) && (f.flags & END_STREAM) !== 0)),
        )
          ? true
          : undefined,
      `the end of stream ${stream}`,
    );
    return this.frames.filter((f) => f.stream === stream);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A GET (or `method`) request's fields for `path` on authority a.test, plus `extra`. */
export const request = (path: string, extra: Fields = [], method = 'GET'): Fields => [
  [':method', method],
  [':scheme', 'http'],
  [':authority', 'a.test'],
  [':path', path],
  ...extra,
];
