/** @module A raw keep-alive client connection for conformance tests: one whole response read at a time. */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  readonly status: number;
  readonly head: string;
  /** The body as latin1 text, and as bytes. */
  readonly body: string;
  readonly bytes: Buffer;
  /** Interim (1xx) status codes received before this response. */
  readonly interim: number[];
}

const EMPTY: Buffer = Buffer.alloc(0);

/** A keep-alive client connection that reads one whole response at a time (Content-Length or chunked). */
export class Session {
  readonly socket: Socket;
  /** Bytes received and not yet read, joined only when a read needs them (a large body comes in many reads). */
  #chunks: Buffer[] = [];
  #length = 0;
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => {
      this.#chunks.push(c);
      this.#length += c.length;
      this.#wake?.();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#wake?.();
    });
    socket.on('error', () => {});
  }

  static async open(port: number): Promise<Session> {
    const socket = connect(port, '127.0.0.1');
    await once(socket, 'connect');
    return new Session(socket);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Everything received and not yet read as a response. */
  get pending(): Buffer {
    return this.#buf;
  }

  get #buf(): Buffer {
    if (this.#chunks.length !== 1) this.#chunks = [Buffer.concat(this.#chunks, this.#length)];
    return this.#chunks[0]!;
  }

  /** Drops the first `n` bytes received. */
  #consume(n: number): void {
    this.#chunks = [this.#buf.subarray(n)];
    this.#length -= n;
  }

  async #more(deadline: number): Promise<boolean> {
    if (this.#closed) return false;
    const left = deadline - performance.now();
    if (left <= 0) throw new Error(`no complete response in time; have: ${this.#buf.toString('latin1').slice(0, 300)}`);
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      timer = setTimeout(resolve, left);
    });
    clearTimeout(timer);
    this.#wake = undefined;
    return true;
  }

  /** Sends a request and reads its response. */
  async exchange(method: string, path: string, extra = ''): Promise<RawResponse> {
    this.socket.write(`${method} ${path} HTTP/1.1\r\nhost: test\r\n${extra}\r\n`);
    return this.read(method);
  }

  /** Reads the next final response; the 1xx status codes before it are in `interim`. */
  async read(method: string, ms = 10_000): Promise<RawResponse> {
    const deadline = performance.now() + ms;
    const interim: number[] = [];
    for (;;) {
      let end = this.#buf.indexOf('\r\n\r\n');
      while (end < 0) {
        if (!(await this.#more(deadline))) throw new Error(`closed before a response head: ${this.#buf}`);
        end = this.#buf.indexOf('\r\n\r\n');
      }
      const head = this.#buf.subarray(0, end).toString('latin1');
      this.#consume(end + 4);
      const status = Number(head.slice(9, 12));
      if (status < 200) {
        interim.push(status);
        continue;
      }
      const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
      let bytes = EMPTY;
      if (method === 'HEAD' || status === 204 || status === 304) bytes = EMPTY;
      else if (/\r\ntransfer-encoding: *chunked/i.test(head)) bytes = await this.#chunked(deadline);
      else if (cl) {
        const n = Number(cl[1]);
        while (this.#length < n) {
          if (!(await this.#more(deadline))) throw new Error('closed mid-body');
        }
        bytes = this.#buf.subarray(0, n);
        this.#consume(n);
      } else throw new Error(`response without framing: ${head}`);
      return { status, head, body: bytes.toString('latin1'), bytes, interim };
    }
  }

  async #chunked(deadline: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (;;) {
      let nl = this.#buf.indexOf('\r\n');
      while (nl < 0) {
        if (!(await this.#more(deadline))) throw new Error('closed mid-chunk');
        nl = this.#buf.indexOf('\r\n');
      }
      const size = Number.parseInt(this.#buf.subarray(0, nl).toString('latin1'), 16);
      while (this.#length < nl + 2 + size + 2) {
        if (!(await this.#more(deadline))) throw new Error('closed mid-chunk');
      }
      parts.push(this.#buf.subarray(nl + 2, nl + 2 + size));
      this.#consume(nl + 2 + size + 2);
      if (size === 0) return Buffer.concat(parts);
    }
  }

  /** Resolves once the connection is closed, or false after `ms`. */
  async waitClosed(ms: number): Promise<boolean> {
    const deadline = performance.now() + ms;
    while (!this.#closed && performance.now() < deadline) await this.#more(deadline).catch(() => false);
    return this.#closed;
  }

  close(): void {
    this.socket.destroy();
  }
}
