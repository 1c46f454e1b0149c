/** @module A raw keep-alive client connection for conformance tests: one whole response read at a time. */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

export interface RawResponse {
  readonly status: number;
  readonly head: string;
  readonly body: string;
  /** Interim (1xx) status codes received before this response. */
  readonly interim: number[];
}

/** A keep-alive client connection that reads one whole response at a time (Content-Length or chunked). */
export class Session {
  readonly socket: Socket;
  #buf = Buffer.alloc(0);
  #closed = false;
  #wake: (() => void) | undefined;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => {
      this.#buf = Buffer.concat([this.#buf, c]);
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
      this.#buf = this.#buf.subarray(end + 4);
      const status = Number(head.slice(9, 12));
      if (status < 200) {
        interim.push(status);
        continue;
      }
      const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
      let body = '';
      if (method === 'HEAD' || status === 204 || status === 304) body = '';
      else if (/\r\ntransfer-encoding: *chunked/i.test(head)) body = await this.#chunked(deadline);
      else if (cl) {
        const n = Number(cl[1]);
        while (this.#buf.length < n) {
          if (!(await this.#more(deadline))) throw new Error('closed mid-body');
        }
        body = this.#buf.subarray(0, n).toString('latin1');
        this.#buf = this.#buf.subarray(n);
      } else throw new Error(`response without framing: ${head}`);
      return { status, head, body, interim };
    }
  }

  async #chunked(deadline: number): Promise<string> {
    let body = '';
    for (;;) {
      let nl = this.#buf.indexOf('\r\n');
      while (nl < 0) {
        if (!(await this.#more(deadline))) throw new Error('closed mid-chunk');
        nl = this.#buf.indexOf('\r\n');
      }
      const size = Number.parseInt(this.#buf.subarray(0, nl).toString('latin1'), 16);
      while (this.#buf.length < nl + 2 + size + 2) {
        if (!(await this.#more(deadline))) throw new Error('closed mid-chunk');
      }
      body += this.#buf.subarray(nl + 2, nl + 2 + size).toString('latin1');
      this.#buf = this.#buf.subarray(nl + 2 + size + 2);
      if (size === 0) return body;
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
