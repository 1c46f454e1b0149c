/**
 * End to end: Portico's own HTTP/1.1 upstream client (src/proxy/http1/) as the rest of the proxy uses it — the
 * forwarder and its retries, request bodies, WebSocket upgrades, the cache's background revalidation (undici's
 * `request()` over this pool), https targets and the transform policy's header templates — judged against
 * RFC 9110 / RFC 9112 and how nginx treats broken backends. The real `portico` process sits between raw
 * node:net clients and raw (or node:http / node:https) upstreams that record every byte they receive.
 *
 * Complements test/e2e/conformance-upstream.test.ts (one broken response at a time) with what only shows across
 * requests: a keep-alive pool shared by clients (response splitting, keep-alive races, early answers, timers
 * carried from one request to the next), bodies in both directions, and the client's integration points.
 * Each bug this audit found was fixed with the test that shows it (docs/conformance.md lists them).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, request, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { freePort } from '../helpers/ports.ts';
import { Session } from '../helpers/raw-session.ts';
import {
  onRequests,
  type RawConnection,
  type RawRequest,
  type RawUpstream,
  startRawUpstream,
} from '../helpers/raw-upstream.ts';
import { certDir, makeCa, makeCert } from '../helpers/tls-certs.ts';

const CRLF = '\r\n';
const KiB = 1024;
const MiB = 1024 * KiB;

/** A complete response an upstream sends nobody asked for: if a client ever gets `evil`, responses were split. */
const EVIL = `HTTP/1.1 200 OK${CRLF}content-length: 4${CRLF}x-evil: 1${CRLF}${CRLF}evil`;

// --- clients -------------------------------------------------------------------------------------------------

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  /** The whole response arrived (false: the connection was cut before its end). */
  readonly complete: boolean;
  /** Error before any response head (status 0). */
  readonly error?: string;
  /** Milliseconds from the request to the end of the response. */
  readonly ms: number;
}

/** One request on a fresh client connection; never rejects. */
function call(
  base: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<Reply> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = request(`${base}${path}`, { method: options.method ?? 'GET', headers: options.headers, agent: false });
    const timer = setTimeout(() => req.destroy(new Error('test timeout')), options.timeoutMs ?? 15_000);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let done = false;
      const finish = (complete: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('latin1'),
          complete,
          ms: performance.now() - started,
        });
      };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish(res.complete));
      res.on('error', () => finish(false));
      res.on('close', () => finish(res.complete));
    });
    req.on('error', (err: Error & { code?: string }) => {
      clearTimeout(timer);
      resolve({
        status: 0,
        headers: {},
        body: '',
        complete: false,
        error: err.code ?? err.message,
        ms: performance.now() - started,
      });
    });
    req.end(options.body);
  });
}

function assertProblem(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, `status (body: ${r.body}, error: ${r.error ?? ''})`);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  const body = JSON.parse(r.body) as { code: string; status: number };
  assert.equal(body.code, code, r.body);
  assert.doesNotMatch(r.body, /127\.0\.0\.1|localhost|:\d{4,5}\b|\bat\s|Error:/, 'no address, message or stack');
}

/** Waits (bounded) until `check` holds. */
async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Settles with true when `p` settles within `ms`, false otherwise. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([
    p.then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]);
  clearTimeout(timer);
  return result;
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

// --- upstreams -----------------------------------------------------------------------------------------------

/** A raw upstream that hands each parsed request to `handler` and records them with their connection. */
interface Answering extends RawUpstream {
  readonly requests: { readonly req: RawRequest; readonly conn: number }[];
}

async function answering(handler: (req: RawRequest, conn: RawConnection) => void): Promise<Answering> {
  const requests: { req: RawRequest; conn: number }[] = [];
  const up = await startRawUpstream((conn) => {
    // Real servers send at once (TCP_NODELAY): with Nagle, a late write waits for Portico's delayed ACK (up to
    // 40 ms), i.e. until Portico's next request on the connection, and then is indistinguishable from its answer.
    conn.socket.setNoDelay(true);
    onRequests(conn.socket, (req) => {
      requests.push({ req, conn: conn.index });
      handler(req, conn);
    });
  });
  return Object.assign(up, { requests });
}

/** A request body as text, its chunk framing (the raw-upstream helper keeps it) taken off. */
function dechunk(req: RawRequest): string {
  const raw = req.body.toString('latin1');
  if (req.headers['transfer-encoding'] === undefined) return raw;
  let out = '';
  let rest = raw;
  for (let guard = 0; guard < 1000; guard++) {
    const nl = rest.indexOf(CRLF);
    const size = Number.parseInt(rest.slice(0, nl), 16);
    if (!(size > 0)) break;
    out += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 2 + size + 2);
  }
  return out;
}

function ok(body: string, extra = ''): string {
  return `HTTP/1.1 200 OK${CRLF}${extra}content-length: ${Buffer.byteLength(body)}${CRLF}${CRLF}${body}`;
}

/** Writes `text` to `socket` after `ms`, unless it is gone by then. */
/**
 * How long after its response a misbehaving upstream sends its extra bytes: long enough that the next request's
 * whole exchange fits before them on a loaded CI machine (an HTTP/1.1 client cannot tell bytes that arrive
 * after its next request went out from that request's answer; nginx cannot either).
 */
const LATE_MS = 150;

function later(socket: Socket, ms: number, text: string | Buffer): void {
  setTimeout(() => {
    if (!socket.destroyed) socket.write(text);
  }, ms);
}

/**
 * Reads a chunked body strictly (RFC 9112 §7.1): hex size, CRLF, exactly that many bytes, CRLF; the last chunk
 * and an empty trailer section end it. Anything else is a framing error. Hashes the data as it goes.
 */
class ChunkedReader {
  state: 'size' | 'data' | 'data-end' | 'trailer' | 'done' | 'error' = 'size';
  error = '';
  bytes = 0;
  chunks = 0;
  readonly hash = createHash('sha256');
  #line = '';
  #left = 0;

  /** Consumes from `buf`; returns how many bytes belonged to the body (the rest is after its end). */
  push(buf: Buffer): number {
    let i = 0;
    while (i < buf.length && this.state !== 'done' && this.state !== 'error') {
      if (this.state === 'data') {
        const n = Math.min(this.#left, buf.length - i);
        this.hash.update(buf.subarray(i, i + n));
        this.bytes += n;
        this.#left -= n;
        i += n;
        if (this.#left === 0) this.state = 'data-end';
        continue;
      }
      const ch = String.fromCharCode(buf[i]!);
      i++;
      this.#line += ch;
      if (this.#line.length > 64) return this.#fail('line too long');
      if (ch !== '\n') continue;
      if (!this.#line.endsWith('\r\n')) return this.#fail('bare LF');
      const line = this.#line.slice(0, -2);
      this.#line = '';
      if (this.state === 'data-end') {
        if (line !== '') return this.#fail('no CRLF after chunk data');
        this.state = 'size';
      } else if (this.state === 'size') {
        if (!/^[0-9a-fA-F]{1,8}$/.test(line)) return this.#fail(`bad chunk size ${JSON.stringify(line)}`);
        const size = Number.parseInt(line, 16);
        if (size === 0) this.state = 'trailer';
        else {
          this.chunks++;
          this.#left = size;
          this.state = 'data';
        }
      } else if (this.state === 'trailer' && line === '') this.state = 'done';
    }
    return i;
  }

  #fail(why: string): number {
    this.state = 'error';
    this.error = why;
    return 0;
  }
}

/** What the strict upload sink saw of one request. */
interface Upload {
  readonly conn: number;
  readonly head: string;
  framing: 'length' | 'chunked' | 'none';
  bytes: number;
  sha: string;
  complete: boolean;
  error: string;
}

/**
 * An upstream that reads request bodies strictly and hashes them without buffering: each complete request is
 * answered with `{ framing, bytes, sha, chunks }` as JSON. A framing error is answered 400 and closes.
 */
async function uploadSink(): Promise<RawUpstream & { uploads: Upload[] }> {
  const uploads: Upload[] = [];
  const up = await startRawUpstream((conn) => {
    let head = Buffer.alloc(0);
    let current: Upload | undefined;
    let chunked: ChunkedReader | undefined;
    let hash = createHash('sha256');
    let left = 0;
    const finish = (chunks: number) => {
      const u = current!;
      u.complete = true;
      const json = JSON.stringify({ framing: u.framing, bytes: u.bytes, sha: u.sha, chunks });
      conn.socket.write(ok(json, 'content-type: application/json\r\n'));
      current = undefined;
      chunked = undefined;
    };
    const onData = (data: Buffer): void => {
      let buf = data;
      while (buf.length > 0 && !conn.socket.destroyed) {
        if (current === undefined) {
          head = Buffer.concat([head, buf]);
          const end = head.indexOf('\r\n\r\n');
          if (end < 0) return;
          const text = head.subarray(0, end).toString('latin1');
          buf = head.subarray(end + 4);
          head = Buffer.alloc(0);
          const te = /\r\ntransfer-encoding: *([^\r]*)/i.exec(text)?.[1];
          const cl = /\r\ncontent-length: *(\d+)/i.exec(text)?.[1];
          current = { conn: conn.index, head: text, framing: 'none', bytes: 0, sha: '', complete: false, error: '' };
          uploads.push(current);
          if (te !== undefined && cl !== undefined) {
            current.error = 'both framings';
            conn.socket.end(`HTTP/1.1 400 Bad Request${CRLF}content-length: 0${CRLF}${CRLF}`);
            return;
          }
          if (te !== undefined) {
            current.framing = 'chunked';
            chunked = new ChunkedReader();
          } else if (cl !== undefined) {
            current.framing = 'length';
            left = Number(cl);
            hash = createHash('sha256');
          }
          if (current.framing === 'none' || (current.framing === 'length' && left === 0)) {
            current.sha = createHash('sha256').digest('hex');
            finish(0);
          }
          continue;
        }
        if (chunked !== undefined) {
          const used = chunked.push(buf);
          current.bytes = chunked.bytes;
          if (chunked.state === 'error') {
            current.error = chunked.error;
            conn.socket.end(`HTTP/1.1 400 Bad Request${CRLF}content-length: 0${CRLF}${CRLF}`);
            return;
          }
          buf = buf.subarray(used);
          if (chunked.state === 'done') {
            current.sha = chunked.hash.digest('hex');
            finish(chunked.chunks);
          }
          continue;
        }
        const n = Math.min(left, buf.length);
        hash.update(buf.subarray(0, n));
        current.bytes += n;
        left -= n;
        buf = buf.subarray(n);
        if (left === 0) {
          current.sha = hash.digest('hex');
          finish(0);
        }
      }
    };
    conn.socket.on('data', onData);
  });
  return Object.assign(up, { uploads });
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Sends `body` as a POST with node:http, in 64 KiB writes honouring back-pressure; chunked unless `length`. */
function upload(base: string, path: string, body: Buffer, length: boolean): Promise<Reply> {
  const started = performance.now();
  return new Promise((resolve) => {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
    if (length) headers['content-length'] = String(body.length);
    const req = request(`${base}${path}`, { method: 'POST', headers, agent: false });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
          complete: res.complete,
          ms: performance.now() - started,
        }),
      );
    });
    req.on('error', (err: Error & { code?: string }) =>
      resolve({ status: 0, headers: {}, body: '', complete: false, error: err.code, ms: 0 }),
    );
    Readable.from(slices(body, 64 * KiB)).pipe(req);
  });
}

function* slices(b: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const wsAccept = (key: string): string =>
  createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');

function wsUpgrade(path: string): string {
  return (
    `GET ${path} HTTP/1.1${CRLF}host: ws.test${CRLF}upgrade: websocket${CRLF}connection: Upgrade${CRLF}` +
    `sec-websocket-key: ${WS_KEY}${CRLF}sec-websocket-version: 13${CRLF}${CRLF}`
  );
}

/** An unmasked server frame (RFC 6455 §5.2), payload under 126 bytes. */
function serverFrame(opcode: number, payload: string): Buffer {
  const data = Buffer.from(payload);
  return Buffer.concat([Buffer.from([0x80 | opcode, data.length]), data]);
}

// --- the scenarios -------------------------------------------------------------------------------------------

describe('conformance: the HTTP/1.1 upstream client, end to end', () => {
  let p: PorticoProcess;
  let base: string;
  const closers: (() => Promise<void> | void)[] = [];

  let split: Answering;
  let ka: Answering;
  /** POST bodies the keep-alive upstream read and answered. */
  const kaPosts: string[] = [];
  /** POST bodies that reached the keep-alive upstream's socket, answered or not. */
  const kaArrived: string[] = [];
  let kaLost = 0;
  let die: RawUpstream & { heads: { conn: number; method: string; path: string }[] };
  let sink: Awaited<ReturnType<typeof uploadSink>>;
  let early: RawUpstream & { heads: { conn: number; path: string }[] };
  let drip: Answering;
  let big: { server: Server; produced: Map<string, number> };
  let ws: Answering;
  let cacheUp: Answering;
  let tlsGood: { server: Server; secure: number; tcp: number };
  let rt: Answering;
  let idleUp: Answering;
  let queue: Answering;
  let echo: Answering;

  before(async () => {
    // Response splitting: complete responses nobody asked for, in the same write or LATE_MS later.
    split = await answering((req, conn) => {
      const s = conn.socket;
      const path = req.path.split('?')[0];
      switch (path) {
        case '/split/same-cl':
          s.write(`${ok('A')}${EVIL}`);
          return;
        case '/split/same-chunked':
          s.write(
            `HTTP/1.1 200 OK${CRLF}transfer-encoding: chunked${CRLF}${CRLF}1${CRLF}A${CRLF}0${CRLF}${CRLF}${EVIL}`,
          );
          return;
        case '/split/same-204':
          s.write(`HTTP/1.1 204 No Content${CRLF}${CRLF}${EVIL}`);
          return;
        case '/split/late-cl':
          s.write(ok('A'));
          later(s, LATE_MS, EVIL);
          return;
        case '/split/late-chunked':
          s.write(`HTTP/1.1 200 OK${CRLF}transfer-encoding: chunked${CRLF}${CRLF}1${CRLF}A${CRLF}0${CRLF}${CRLF}`);
          later(s, LATE_MS, EVIL);
          return;
        case '/split/late-head':
          s.write(`HTTP/1.1 200 OK${CRLF}content-length: 4${CRLF}${CRLF}`);
          later(s, LATE_MS, `evil${EVIL}`);
          return;
        case '/split/late-204':
          s.write(`HTTP/1.1 204 No Content${CRLF}${CRLF}`);
          later(s, LATE_MS, EVIL);
          return;
        case '/split/late-304':
          s.write(`HTTP/1.1 304 Not Modified${CRLF}etag: "x"${CRLF}${CRLF}`);
          later(s, LATE_MS, EVIL);
          return;
        case '/split/304-cl':
          s.write(`HTTP/1.1 304 Not Modified${CRLF}content-length: 5${CRLF}${CRLF}`);
          later(s, LATE_MS, 'hello');
          return;
        case '/split/304-te':
        case '/split/204-te':
          s.write(
            path.endsWith('304')
              ? `HTTP/1.1 304 Not Modified${CRLF}transfer-encoding: chunked${CRLF}${CRLF}`
              : `HTTP/1.1 204 No Content${CRLF}transfer-encoding: chunked${CRLF}${CRLF}`,
          );
          later(s, LATE_MS, `5${CRLF}hello${CRLF}0${CRLF}${CRLF}`);
          return;
        case '/split/slow':
          later(s, 60, ok(`real ${req.method} ${req.path}`));
          return;
        default:
          s.write(ok(`real ${req.method} ${req.path}`));
      }
    });

    // Announces `Keep-Alive: timeout=1` and closes a connection idle for exactly 1 s. It stands for a server
    // 10 ms away: its close reaches Portico 10 ms after it happened, and Portico's requests reach it 10 ms after
    // they left, so a request that arrives in the last 20 ms is one the server had already closed on (it is
    // never read; the close follows at the full second).
    ka = await answering((req, conn) => {
      const c = conn as RawConnection & { deaf?: boolean; timers?: NodeJS.Timeout[] };
      if (c.deaf === true) {
        kaLost++;
        if (req.method === 'POST') kaArrived.push(req.body.toString());
        return;
      }
      if (req.method === 'POST') kaArrived.push(req.body.toString());
      for (const t of c.timers ?? []) clearTimeout(t);
      if (req.method === 'POST') kaPosts.push(req.body.toString());
      conn.socket.write(ok(`${req.method} ${req.body.toString()}`, `keep-alive: timeout=1${CRLF}`));
      c.timers = [
        setTimeout(() => {
          c.deaf = true;
        }, 980),
        setTimeout(() => conn.socket.destroy(), 1000),
      ];
    });
    closers.push(() => {
      for (const c of ka.connections as (RawConnection & { timers?: NodeJS.Timeout[] })[]) {
        for (const t of c.timers ?? []) clearTimeout(t);
      }
    });

    // Closes (FIN) or resets (RST) each connection as soon as a request head arrived: the request may have
    // reached the application, so only idempotent requests may be sent again.
    const heads: { conn: number; method: string; path: string }[] = [];
    const dieUp = await startRawUpstream((conn) => {
      let buf = Buffer.alloc(0);
      let done = false;
      conn.socket.on('data', (c: Buffer) => {
        if (done) return;
        buf = Buffer.concat([buf, c]);
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        done = true;
        const [method = '', path = ''] = buf.subarray(0, end).toString('latin1').split(' ');
        heads.push({ conn: conn.index, method, path });
        if (path.includes('rst')) conn.socket.resetAndDestroy();
        else conn.socket.destroy();
      });
    });
    die = Object.assign(dieUp, { heads });

    sink = await uploadSink();

    // Answers 413 after the first KiB of a body, without Connection: close, and reads on (as some servers do):
    // the connection is in the middle of a request and must not be used again.
    const earlyHeads: { conn: number; path: string }[] = [];
    const earlyUp = await startRawUpstream((conn) => {
      let buf = Buffer.alloc(0);
      let left = -1;
      let seen = 0;
      let answered = false;
      conn.socket.on('data', (c: Buffer) => {
        let data = c;
        while (data.length > 0) {
          if (left < 0) {
            buf = Buffer.concat([buf, data]);
            const end = buf.indexOf('\r\n\r\n');
            if (end < 0) return;
            const head = buf.subarray(0, end).toString('latin1');
            data = buf.subarray(end + 4);
            buf = Buffer.alloc(0);
            const path = head.split(' ')[1] ?? '';
            earlyHeads.push({ conn: conn.index, path });
            left = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? '0');
            seen = 0;
            answered = false;
            if (!path.startsWith('/early/upload')) {
              conn.socket.write(ok(`next on ${conn.index}`));
              left = left === 0 ? -1 : left;
            }
            continue;
          }
          const n = Math.min(left, data.length);
          seen += n;
          left -= n;
          data = data.subarray(n);
          if (!answered && seen >= KiB) {
            answered = true;
            conn.socket.write(`HTTP/1.1 413 Content Too Large${CRLF}content-length: 4${CRLF}${CRLF}nope`);
          }
          if (left === 0) left = -1;
        }
      });
    });
    early = Object.assign(earlyUp, { heads: earlyHeads });

    // Slow drips, and a response of 100,000 one-byte chunks.
    drip = await answering((req, conn) => {
      const s = conn.socket;
      const dripBytes = (text: string, every: number) => {
        let i = 0;
        const timer = setInterval(() => {
          if (s.destroyed || i >= text.length) {
            clearInterval(timer);
            return;
          }
          s.write(text[i++]!, 'latin1');
        }, every);
      };
      const path = req.path.replace(/^\/drip(fast)?/, '');
      if (path === '/head') dripBytes(`HTTP/1.1 200 ${CRLF}content-length:2${CRLF}${CRLF}ok`, 50);
      else if (path === '/body-cl') {
        s.write(`HTTP/1.1 200 OK${CRLF}content-length: 20${CRLF}${CRLF}`);
        dripBytes('abcdefghijklmnopqrst', 50);
      } else if (path === '/body-chunked') {
        s.write(`HTTP/1.1 200 OK${CRLF}transfer-encoding: chunked${CRLF}${CRLF}`);
        dripBytes(`5${CRLF}hello${CRLF}6${CRLF} world${CRLF}0${CRLF}${CRLF}`, 50);
      } else if (path === '/tiny') {
        const parts = [`HTTP/1.1 200 OK${CRLF}transfer-encoding: chunked${CRLF}${CRLF}`];
        for (let i = 0; i < 100_000; i++) parts.push(`1${CRLF}x${CRLF}`);
        parts.push(`0${CRLF}${CRLF}`);
        s.write(parts.join(''));
      } else s.write(ok('drip?'));
    });

    // 64 MiB from a generator that counts what it produced (node:http, so the upstream honours back-pressure).
    const produced = new Map<string, number>();
    const bigServer = createHttpServer((req, res) => {
      const path = req.url!;
      const total = 64 * MiB;
      const chunk = Buffer.alloc(64 * KiB, 0x61);
      produced.set(path, 0);
      if (path === '/big/cl') res.writeHead(200, { 'content-length': String(total) });
      else res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let sent = 0;
      const body = new Readable({
        read() {
          if (sent >= total) {
            this.push(null);
            return;
          }
          sent += chunk.length;
          produced.set(path, sent);
          this.push(chunk);
        },
      });
      body.pipe(res);
      res.on('close', () => body.destroy());
    });
    bigServer.listen(0, '127.0.0.1');
    await once(bigServer, 'listening');
    big = { server: bigServer, produced };
    closers.push(() => {
      bigServer.closeAllConnections();
      bigServer.close();
    });

    // WebSocket backend: a 101 whose head arrives in two writes, the second carrying frames; or a refusal
    // that keeps the connection open.
    ws = await answering((req, conn) => {
      const s = conn.socket;
      if (req.path === '/ws/frames') {
        s.write(`HTTP/1.1 101 Switching Protocols${CRLF}upgrade: websocket${CRLF}connection: Upgrade${CRLF}`);
        later(
          s,
          20,
          Buffer.concat([
            Buffer.from(`sec-websocket-accept: ${wsAccept(WS_KEY)}${CRLF}${CRLF}`),
            serverFrame(1, 'hello'),
            serverFrame(2, 'in the same write'),
          ]),
        );
      } else if (req.path === '/ws/refuse') s.write(`HTTP/1.1 403 Forbidden${CRLF}content-length: 4${CRLF}${CRLF}nope`);
      else s.write(ok(`plain on ${conn.index}`));
    });

    // Cache origin: a short lifetime with stale-while-revalidate; 304 to the stored ETag (for /c/leaky, a 304
    // followed LATE_MS later by a response nobody asked for).
    cacheUp = await answering((req, conn) => {
      const s = conn.socket;
      const cc = `cache-control: max-age=1, stale-while-revalidate=30${CRLF}etag: "v1"${CRLF}`;
      if (req.headers['if-none-match'] === '"v1"') {
        s.write(`HTTP/1.1 304 Not Modified${CRLF}cache-control: max-age=60${CRLF}etag: "v1"${CRLF}${CRLF}`);
        if (req.path === '/c/leaky') later(s, LATE_MS, EVIL);
        return;
      }
      if (req.path.startsWith('/c/')) s.write(ok(`stored ${req.path}`, cc));
      else s.write(ok(`plain ${req.path}`));
    });

    // https: a certificate for 127.0.0.1 from a test CA; another for a different name only.
    const dir = certDir();
    const ca = makeCa(dir, 'client-test-ca');
    const good = makeCert(dir, ['IP:127.0.0.1'], { ca, file: 'good' });
    const wrong = makeCert(dir, ['DNS:wrong.test'], { ca, file: 'wrong' });
    const pem = async (f: string) => readFile(f);
    const goodServer = createHttpsServer({ cert: await pem(good.cert), key: await pem(good.key) }, (_req, res) => {
      res.writeHead(200, { 'content-length': '6' });
      res.end('tls ok');
    });
    tlsGood = { server: goodServer, secure: 0, tcp: 0 };
    goodServer.on('connection', () => tlsGood.tcp++);
    goodServer.on('secureConnection', () => tlsGood.secure++);
    goodServer.listen(0, '127.0.0.1');
    await once(goodServer, 'listening');
    const wrongServer = createHttpsServer({ cert: await pem(wrong.cert), key: await pem(wrong.key) }, (_q, res) =>
      res.end('should never be reached'),
    );
    wrongServer.listen(0, '127.0.0.1');
    await once(wrongServer, 'listening');
    // A plain HTTP server where an https target was configured.
    const plainServer = createHttpServer((_q, res) => res.end('plain'));
    plainServer.listen(0, '127.0.0.1');
    await once(plainServer, 'listening');
    closers.push(() => {
      for (const s of [goodServer, wrongServer, plainServer]) {
        s.closeAllConnections();
        s.close();
      }
    });

    // Answers at once; a POST once its body is in.
    rt = await answering((req, conn) => {
      conn.socket.write(ok(`${req.method} ${dechunk(req)}`));
    });
    // Closes a connection idle for 300 ms (a short keep-alive timeout, not announced; RFC 9112 §9.6 allows a
    // close at any time): a request head that has not arrived by then finds it gone.
    idleUp = await answering((req, conn) => {
      const c = conn as RawConnection & { timer?: NodeJS.Timeout };
      clearTimeout(c.timer);
      conn.socket.write(ok(`${req.method} ${dechunk(req)} on ${conn.index}`));
      c.timer = setTimeout(() => conn.socket.end(), 300);
    });
    // Answers /q/slow after 400 ms, /q/slow1000 after 1 s, anything else at once.
    queue = await answering((req, conn) => {
      const path = req.path.split('?')[0];
      const delay = path === '/q/slow' ? 400 : path === '/q/slow1000' ? 1000 : 0;
      later(conn.socket, delay, ok(`${req.path} on ${conn.index}`));
    });
    // Records heads; answers with the path it saw.
    echo = await answering((req, conn) => conn.socket.write(ok(`echo ${req.path}`)));

    const port = (s: Server) => (s.address() as AddressInfo).port;
    const refused = await freePort();
    const off = 'health: { passive: { consecutiveFailures: 0 } }';
    p = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0, limits: { maxHeaderSize: 16KiB } } ]
policies:
  inj-header: { type: transform, request: { headers: { set: { x-q: "{{request.query.q}}" } } } }
  inj-path: { type: transform, request: { path: "/p/{{request.query.q}}" } }
upstreams:
  - { name: split, targets: [ { url: ${split.url} } ], maxConnectionsPerTarget: 1, ${off} }
  - { name: ka, targets: [ { url: ${ka.url} } ], ${off} }
  - { name: die, targets: [ { url: ${die.url} } ], ${off} }
  - { name: sink, targets: [ { url: ${sink.url} } ], ${off} }
  - name: failover
    balance: round-robin
    targets: [ { url: "http://127.0.0.1:${refused}" }, { url: ${sink.url} } ]
    ${off}
  - { name: early, targets: [ { url: ${early.url} } ], ${off} }
  - { name: drip, targets: [ { url: ${drip.url} } ], timeouts: { response: 3s, idle: 400ms }, ${off} }
  - { name: dripfast, targets: [ { url: ${drip.url} } ], timeouts: { response: 1s, idle: 400ms }, ${off} }
  - { name: big, targets: [ { url: "http://127.0.0.1:${port(bigServer)}" } ], ${off} }
  - { name: ws, targets: [ { url: ${ws.url} } ], ${off} }
  - { name: cache, targets: [ { url: ${cacheUp.url} } ], ${off} }
  - { name: tls-good, targets: [ { url: "https://127.0.0.1:${port(goodServer)}" } ], tls: { ca: ${ca.cert} }, ${off} }
  - { name: tls-wrong, targets: [ { url: "https://127.0.0.1:${port(wrongServer)}" } ], tls: { ca: ${ca.cert} }, ${off} }
  - name: tls-plain
    targets: [ { url: "https://127.0.0.1:${port(plainServer)}" } ]
    tls: { ca: ${ca.cert} }
    timeouts: { connect: 2s }
    ${off}
  - name: tls-mixed
    balance: round-robin
    targets: [ { url: "https://127.0.0.1:${port(plainServer)}" }, { url: "https://127.0.0.1:${port(goodServer)}" } ]
    tls: { ca: ${ca.cert} }
    ${off}
  - { name: rt, targets: [ { url: ${rt.url} } ], timeouts: { response: 1s }, ${off} }
  - { name: rt-fresh, targets: [ { url: ${rt.url} } ], timeouts: { response: 1s, keepAlive: 3999ms }, ${off} }
  - { name: idle, targets: [ { url: ${idleUp.url} } ], ${off} }
  - { name: queue, targets: [ { url: ${queue.url} } ], maxConnectionsPerTarget: 1, ${off} }
  - name: pertry
    targets: [ { url: ${queue.url} } ]
    maxConnectionsPerTarget: 1
    retries: { perTryTimeout: 300ms }
    ${off}
  - { name: echo, targets: [ { url: ${echo.url} } ], ${off} }
routes:
  - { name: split, match: { path: /split/* }, upstream: split }
  - { name: ka, match: { path: /ka/* }, upstream: ka }
  - { name: die, match: { path: /die/* }, upstream: die }
  - { name: sink, match: { path: /sink/* }, upstream: sink }
  - { name: failover, match: { path: /failover/* }, upstream: failover }
  - { name: early, match: { path: /early/* }, upstream: early }
  - { name: drip, match: { path: /drip/* }, upstream: drip }
  - { name: dripfast, match: { path: /dripfast/* }, upstream: dripfast }
  - { name: big, match: { path: /big/* }, upstream: big }
  - { name: ws, match: { path: /ws/* }, websocket: true, upstream: ws }
  - { name: cached, match: { path: /c/* }, cache: true, upstream: cache }
  - { name: uncached, match: { path: /nc/* }, upstream: cache }
  - { name: tls-good, match: { path: /tls/good }, upstream: tls-good }
  - { name: tls-wrong, match: { path: /tls/wrong }, upstream: tls-wrong }
  - { name: tls-plain, match: { path: /tls/plain }, upstream: tls-plain }
  - { name: tls-mixed, match: { path: /tls/mixed }, upstream: tls-mixed }
  - { name: rt, match: { path: /rt/* }, upstream: rt }
  - { name: rt-fresh, match: { path: /rtfresh/* }, upstream: rt-fresh }
  - { name: idle, match: { path: /idle/* }, upstream: idle }
  - { name: queue, match: { path: /q/* }, upstream: queue }
  - { name: pertry, match: { path: /pt/* }, rewrite: { stripPrefix: /pt, addPrefix: /q }, upstream: pertry }
  - { name: inj-header, match: { path: /inj/* }, policies: [inj-header], upstream: echo }
  - { name: inj-path, match: { path: /injp/* }, policies: [inj-path], upstream: echo }
  - { name: echo, match: { path: /echo/* }, upstream: echo }
`);
    base = p.url();
  });

  after(async () => {
    await p?.stop();
    for (const close of closers) await close();
    for (const c of (idleUp?.connections ?? []) as (RawConnection & { timer?: NodeJS.Timeout })[]) {
      clearTimeout(c.timer);
    }
    for (const u of [split, ka, die, sink, early, drip, ws, cacheUp, rt, idleUp, queue, echo]) await u?.close();
  });

  // --- 1. response splitting: bytes nobody asked for never reach another client ---------------------------

  describe('response splitting across clients sharing a keep-alive pool (RFC 9112 §6.3, §9.3)', () => {
    for (const path of ['/split/same-cl', '/split/same-chunked', '/split/same-204']) {
      it(`${path}: a second response in the same write never answers a concurrent client`, async () => {
        for (let round = 0; round < 3; round++) {
          const [a, b, c] = await Promise.all([
            call(base, path),
            call(base, `/split/ok?b${round}`),
            call(base, `/split/ok?c${round}`),
          ]);
          assert.equal(a.status, path.endsWith('204') ? 204 : 200);
          assert.equal(a.body, path.endsWith('204') ? '' : 'A');
          assert.equal(b.body, `real GET /split/ok?b${round}`);
          assert.equal(c.body, `real GET /split/ok?c${round}`);
        }
      });
    }

    for (const [method, path] of [
      ['GET', '/split/late-cl'],
      ['GET', '/split/late-chunked'],
      ['HEAD', '/split/late-head'],
      ['GET', '/split/late-204'],
      ['GET', '/split/late-304'],
    ] as const) {
      it(`${method} ${path}: a response written ${LATE_MS} ms later reaches neither the next GET nor the one after`, async () => {
        const a = await call(base, path, { method });
        assert.ok([200, 204, 304].includes(a.status), `status ${a.status}`);
        assert.equal(a.body, method === 'HEAD' || a.status !== 200 ? '' : 'A');
        // On A's connection (one per target) when A kept it, B goes out and is answered before the late bytes.
        const b = await call(base, '/split/ok?b');
        assert.equal(b.body, 'real GET /split/ok?b');
        assert.equal(b.headers['x-evil'], undefined);
        await sleep(LATE_MS + 100);
        const c = await call(base, '/split/ok?c');
        assert.equal(c.body, 'real GET /split/ok?c');
      });
    }

    // While a streamed request's head is held back for its first body bytes, nothing of the request has been
    // written, so bytes arriving on the connection cannot be its response. They are taken as one.
    for (const path of ['/split/late-cl', '/split/late-chunked', '/split/late-204', '/split/late-304']) {
      it(`${path}: late bytes never answer a POST whose body is still on its way (its head not yet sent)`, async () => {
        await sleep(LATE_MS + 50);
        const a = await call(base, path);
        assert.ok(a.status >= 200);
        const s = await Session.open(p.port());
        try {
          // A slow client (or one that waited for 100 Continue): the body follows the head after the late bytes.
          s.socket.write(`POST /split/ok?held HTTP/1.1${CRLF}host: test${CRLF}content-length: 4${CRLF}${CRLF}`);
          later(s.socket, LATE_MS + 100, 'body');
          const b = await s.read('POST');
          assert.doesNotMatch(b.head, /x-evil/i, 'the bytes sent after A became the answer to B');
          assert.equal(b.body, 'real POST /split/ok?held');
        } finally {
          s.close();
        }
      });
    }
  });

  describe('a body announced on a response that has none (RFC 9112 §6.3 rule 1)', () => {
    // The body a 204/304 announced may still come, late, and be read as the answer to whatever request is on
    // the connection by then (here a slow one): a connection whose bodiless response announced a body goes.
    it('a 304 that announced a Content-Length: the next request, slow to answer, is not on that connection', async () => {
      await sleep(60);
      const a = await call(base, '/split/304-cl');
      assert.equal(a.status, 304);
      const b = await call(base, '/split/slow');
      assert.equal(b.status, 200, b.body);
      assert.equal(b.body, 'real GET /split/slow');
    });

    for (const path of ['/split/304-te', '/split/204-te']) {
      it(`a ${path.slice(7, 10)} that announced a chunked body: the next request, slow to answer, is not on that connection`, async () => {
        await sleep(60);
        const a = await call(base, path);
        assert.ok(a.status === 204 || a.status === 304, `status ${a.status}`);
        const b = await call(base, '/split/slow');
        assert.equal(b.status, 200, b.body);
        assert.equal(b.body, 'real GET /split/slow');
      });
    }
  });

  // --- 2. keep-alive races ---------------------------------------------------------------------------------

  describe('keep-alive races with a server that closes idle connections (RFC 9112 §9.6)', () => {
    it('a steady stream of GETs and POSTs for 2 s: no GET fails, no POST reaches the upstream twice', async (t) => {
      kaPosts.length = 0;
      kaArrived.length = 0;
      kaLost = 0;
      const results: { method: string; id: string; r: Reply }[] = [];
      // Pauses around the server's one-second limit, so requests meet connections in every state.
      const pauses = [0, 985, 120, 992, 0, 500, 988];
      const started = performance.now();
      await Promise.all(
        [0, 1, 2].map(async (w) => {
          for (let i = 0; i < 12 && performance.now() - started < 2000; i++) {
            const method = (i + w) % 2 === 0 ? 'GET' : 'POST';
            const id = `w${w}-${i}`;
            const r = await call(base, `/ka/${id}`, method === 'POST' ? { method, body: id } : {});
            results.push({ method, id, r });
            await sleep(pauses[(i + w * 3) % pauses.length]!);
          }
        }),
      );
      assert.ok(results.length >= 9, `only ${results.length} requests`);
      t.diagnostic(`${results.length} requests, ${kaLost} of them met a connection the server was closing`);
      for (const { method, id, r } of results) {
        const arrived = kaArrived.filter((b) => b === id).length;
        const answered = kaPosts.filter((b) => b === id).length;
        if (method === 'GET') assert.equal(r.status, 200, `GET ${id}: ${r.body}`);
        else {
          // Sent once, whether the server read it, answered it, or closed on it.
          assert.ok(arrived <= 1, `POST ${id} reached the upstream ${arrived} times`);
          if (r.status === 200) assert.equal(answered, 1);
          else assertProblem(r, 502, 'GW_UPSTREAM_RESET');
        }
      }
    });

    it('a GET that meets a connection the server is closing is sent again on a fresh one', async () => {
      const warm = await call(base, '/ka/warm-get');
      assert.equal(warm.status, 200);
      await sleep(990);
      const r = await call(base, '/ka/get-at-deadline');
      assert.equal(r.status, 200, r.body);
      assert.equal(r.body, 'GET ');
    });

    it('Keep-Alive: timeout=1 — Portico lets the connection go a second early, so a POST at the deadline is not lost', async () => {
      kaPosts.length = 0;
      const warm = await call(base, '/ka/warm-post');
      assert.equal(warm.status, 200);
      await sleep(990);
      const r = await call(base, '/ka/post-at-deadline', { method: 'POST', body: 'deadline' });
      assert.equal(r.status, 200, r.body);
      assert.deepEqual(kaPosts, ['deadline']);
    });
  });

  // --- 3. a connection that dies with the request in it ----------------------------------------------------

  describe('a connection that dies after the request head (RFC 9110 §9.2.2)', () => {
    for (const [how, path] of [
      ['closes', '/die/fin'],
      ['resets', '/die/rst'],
    ] as const) {
      for (const framing of ['length', 'chunked'] as const) {
        it(`a POST (${framing} body) whose upstream ${how} after the head: 502, sent once`, async () => {
          const before = die.heads.length;
          const body = randomBytes(64 * KiB);
          const r = await upload(base, `${path}/${framing}`, body, framing === 'length');
          assertProblem(r, 502, 'GW_UPSTREAM_RESET');
          await sleep(50);
          assert.equal(die.heads.length - before, 1, 'the upstream saw the request once');
        });
      }
    }

    it('a GET whose fresh connection closes after the head: 502 after one try (not a keep-alive race)', async () => {
      const before = die.heads.length;
      assertProblem(await call(base, '/die/fin-get'), 502, 'GW_UPSTREAM_RESET');
      await sleep(50);
      assert.equal(die.heads.length - before, 1);
    });

    it('a GET whose fresh connection is reset after the head: 502 after one try (not a keep-alive race)', async () => {
      const before = die.heads.length;
      assertProblem(await call(base, '/die/rst-get'), 502, 'GW_UPSTREAM_RESET');
      await sleep(50);
      assert.equal(die.heads.length - before, 1, 'the upstream saw the GET more than once');
    });

    it('an upload nobody read (connect refused on one target) goes whole to the next target', async () => {
      const before = sink.uploads.length;
      for (let i = 0; i < 4; i++) {
        const body = randomBytes(256 * KiB + i);
        const chunked = i % 2 === 0;
        const r = await upload(base, `/failover/u${i}`, body, !chunked);
        assert.equal(r.status, 200, `upload ${i}: ${r.body}`);
        const seen = JSON.parse(r.body) as { framing: string; bytes: number; sha: string };
        assert.equal(seen.framing, chunked ? 'chunked' : 'length');
        assert.equal(seen.bytes, body.length);
        assert.equal(seen.sha, sha256(body));
      }
      const got = sink.uploads.slice(before);
      assert.equal(got.length, 4, 'each upload reached the healthy target exactly once');
      assert.ok(
        got.every((u) => u.complete && u.error === ''),
        JSON.stringify(got.map((u) => u.error)),
      );
      // Access lines are written in batches: wait (bounded) for the four.
      const lines = () => p.accessLog().filter((l) => String(l.path).startsWith('/failover/'));
      await until(() => lines().length >= 4, 3000, 'the access log lines');
      const retried = lines().filter((l) => Number(l.retries) > 0);
      assert.ok(retried.length >= 1, 'round-robin sent some uploads to the refused target first');
    });
  });

  // --- 4. request bodies -------------------------------------------------------------------------------------

  describe('request bodies arrive framed and whole (RFC 9112 §6, §7.1)', () => {
    const body = randomBytes(8 * MiB);
    for (const length of [false, true]) {
      const framing = length ? 'length' : 'chunked';
      it(`an 8 MiB ${length ? 'Content-Length' : 'chunked'} upload: exact bytes, ${framing} framing upstream`, async () => {
        const before = sink.uploads.length;
        const r = await upload(base, `/sink/${framing}`, body, length);
        assert.equal(r.status, 200, r.body);
        const seen = JSON.parse(r.body) as { framing: string; bytes: number; sha: string; chunks: number };
        assert.equal(seen.framing, framing);
        assert.equal(seen.bytes, body.length);
        assert.equal(seen.sha, sha256(body));
        const u = sink.uploads[before]!;
        assert.equal(u.error, '');
        if (length) {
          assert.match(u.head, /\r\ncontent-length: 8388608(\r|$)/i);
          assert.doesNotMatch(u.head, /transfer-encoding/i);
        } else {
          assert.match(u.head, /\r\ntransfer-encoding: chunked(\r|$)/i);
          assert.doesNotMatch(u.head, /content-length/i);
          assert.ok(seen.chunks >= 1);
        }
      });
    }

    for (const chunked of [true, false]) {
      it(`a ${chunked ? 'chunked' : 'Content-Length'} upload the client aborts: the upstream sees a close, never a complete request`, async () => {
        const before = sink.uploads.length;
        const s = await Session.open(p.port());
        const framing = chunked ? `transfer-encoding: chunked${CRLF}` : `content-length: ${4 * MiB}${CRLF}`;
        s.socket.write(`POST /sink/abort HTTP/1.1${CRLF}host: test${CRLF}${framing}${CRLF}`);
        const piece = Buffer.alloc(256 * KiB, 0x62);
        for (let i = 0; i < 4; i++) {
          s.socket.write(chunked ? Buffer.concat([Buffer.from(`40000${CRLF}`), piece, Buffer.from(CRLF)]) : piece);
          await sleep(20);
        }
        await until(() => sink.uploads.length > before && sink.uploads[before]!.bytes > 0, 3000, 'the upload upstream');
        s.close();
        const conn = sink.connections[sink.uploads[before]!.conn]!;
        assert.ok(await within(conn.closed, 3000), 'the upstream connection is closed');
        const u = sink.uploads[before]!;
        assert.equal(u.complete, false, 'the upstream saw a complete request');
        assert.equal(u.error, '', 'the framing that arrived is valid');
        assert.ok(u.bytes < (chunked ? 2 * MiB : 4 * MiB), `${u.bytes} bytes`);
        assert.equal(sink.uploads.length, before + 1);
      });
    }
  });

  // --- 5. early response -------------------------------------------------------------------------------------

  describe('an answer before the upload ended (RFC 9112 §9.3)', () => {
    it('413 after 1 KiB of a 4 MiB upload: the client gets it and keeps its connection; the upstream connection is not reused', async () => {
      const connsBefore = early.connections.length;
      const headsBefore = early.heads.length;
      const s = await Session.open(p.port());
      try {
        s.socket.write(`POST /early/upload HTTP/1.1${CRLF}host: test${CRLF}content-length: ${4 * MiB}${CRLF}${CRLF}`);
        s.socket.write(Buffer.alloc(64 * KiB, 0x63));
        const r = await s.read('POST');
        assert.equal(r.status, 413);
        assert.equal(r.body, 'nope');
        // The client finishes its upload (Portico reads and drops the rest), then sends another request.
        for (let sent = 64 * KiB; sent < 4 * MiB; sent += 64 * KiB) {
          if (!s.socket.write(Buffer.alloc(64 * KiB, 0x63))) await once(s.socket, 'drain');
        }
        const next = await s.exchange('GET', '/early/next');
        assert.equal(next.status, 200);
        assert.equal(next.body, `next on ${connsBefore + 1}`, 'the next request went out on a new connection');
        assert.ok(await within(early.connections[connsBefore]!.closed, 2000), 'Portico closed the first connection');
        assert.deepEqual(
          early.heads.slice(headsBefore).map((h) => h.conn - connsBefore),
          [0, 1],
        );
      } finally {
        s.close();
      }
    });
  });

  // --- 6. slow upstreams -------------------------------------------------------------------------------------

  describe('slow-drip upstreams and the timeouts (docs/proxying.md: Timeouts and limits)', () => {
    it('a head dripped a byte every 50 ms: 200 within timeouts.response, 504 past it; a dripped body within timeouts.idle completes', async () => {
      const [slowOk, tooSlow, bodyCl, bodyChunked] = await Promise.all([
        call(base, '/drip/head'),
        call(base, '/dripfast/head'),
        call(base, '/drip/body-cl'),
        call(base, '/drip/body-chunked'),
      ]);
      assert.equal(slowOk.status, 200);
      assert.equal(slowOk.body, 'ok');
      assert.ok(slowOk.ms > 1500, `the drip took ${slowOk.ms} ms`);
      assertProblem(tooSlow, 504, 'GW_UPSTREAM_TIMEOUT');
      assert.ok(tooSlow.ms >= 900 && tooSlow.ms < 1600, `504 after ${tooSlow.ms} ms`);
      assert.equal(bodyCl.status, 200);
      assert.ok(bodyCl.complete);
      assert.equal(bodyCl.body, 'abcdefghijklmnopqrst');
      assert.equal(bodyChunked.status, 200);
      assert.ok(bodyChunked.complete);
      assert.equal(bodyChunked.body, 'hello world');
    });

    it('a POST whose body follows its head later than timeouts.response, on a fresh connection: 200', async () => {
      const s = await Session.open(p.port());
      try {
        s.socket.write(`POST /rtfresh/x HTTP/1.1${CRLF}host: test${CRLF}transfer-encoding: chunked${CRLF}${CRLF}`);
        await sleep(1200);
        s.socket.write(`5${CRLF}hello${CRLF}0${CRLF}${CRLF}`);
        const r = await s.read('POST');
        assert.equal(r.status, 200, r.body);
        assert.equal(r.body, 'POST hello');
      } finally {
        s.close();
      }
    });

    it('the same POST on a reused connection: the previous request’s response timer does not time it out', async () => {
      const warm = await call(base, '/rt/warm');
      assert.equal(warm.status, 200);
      await sleep(300);
      const s = await Session.open(p.port());
      try {
        s.socket.write(`POST /rt/x HTTP/1.1${CRLF}host: test${CRLF}transfer-encoding: chunked${CRLF}${CRLF}`);
        await sleep(1000);
        s.socket.write(`5${CRLF}hello${CRLF}0${CRLF}${CRLF}`);
        const r = await s.read('POST');
        assert.equal(r.status, 200, `the upstream got nothing, yet: ${r.body}`);
        assert.equal(r.body, 'POST hello');
      } finally {
        s.close();
      }
    });
    it('a pooled connection the upstream closes while a POST waits for its first body bytes: the POST still goes out', async () => {
      const warm = await call(base, '/idle/warm');
      assert.equal(warm.status, 200);
      const s = await Session.open(p.port());
      try {
        s.socket.write(`POST /idle/post HTTP/1.1${CRLF}host: test${CRLF}transfer-encoding: chunked${CRLF}${CRLF}`);
        await sleep(600);
        s.socket.write(`5${CRLF}hello${CRLF}0${CRLF}${CRLF}`);
        const r = await s.read('POST');
        assert.equal(r.status, 200, r.body);
        assert.match(r.body, /^POST hello on \d+$/);
        assert.equal(idleUp.requests.filter((q) => q.req.path === '/idle/post').length, 1);
      } finally {
        s.close();
      }
    });
  });

  // --- 7. back-pressure --------------------------------------------------------------------------------------

  describe('back-pressure from a client that does not read', () => {
    it('64 MiB to a client that stops reading: the upstream stalls, RSS stays bounded, and the body then arrives whole', async () => {
      const pid = p.child.pid!;
      const baseline = await rssMiB(pid);
      const readers = ['/big/cl', '/big/chunked'].map((path) => {
        let received = 0;
        let res: IncomingMessage | undefined;
        const done = new Promise<{ complete: boolean; bytes: number }>((resolve) => {
          const req = request(`${base}${path}`, { agent: false }, (r) => {
            res = r;
            r.pause();
            r.on('data', (c: Buffer) => {
              received += c.length;
            });
            r.on('end', () => resolve({ complete: r.complete, bytes: received }));
            r.on('error', () => resolve({ complete: false, bytes: received }));
          });
          req.on('error', () => resolve({ complete: false, bytes: received }));
          req.end();
        });
        return { path, done, resume: () => res?.resume() };
      });
      await sleep(1200);
      const atStall = readers.map((r) => big.produced.get(r.path) ?? 0);
      const rss = await rssMiB(pid);
      await sleep(400);
      const later = readers.map((r) => big.produced.get(r.path) ?? 0);
      for (let i = 0; i < readers.length; i++) {
        assert.ok(atStall[i]! > 0, `${readers[i]!.path} started`);
        assert.ok(atStall[i]! < 48 * MiB, `${readers[i]!.path}: the upstream wrote ${atStall[i]! / MiB} MiB`);
        assert.ok(later[i]! - atStall[i]! <= 1 * MiB, `${readers[i]!.path}: the upstream kept writing`);
      }
      assert.ok(rss - baseline < 100, `RSS grew by ${(rss - baseline).toFixed(0)} MiB`);
      for (const r of readers) r.resume();
      const results = await Promise.all(readers.map((r) => r.done));
      for (const r of results) {
        assert.ok(r.complete);
        assert.equal(r.bytes, 64 * MiB);
      }
    });

    it('100,000 one-byte chunks to a slow reader: delivered whole, without piling listeners on the client response', async () => {
      const r = await new Promise<{ bytes: number; complete: boolean }>((resolve) => {
        const req = request(`${base}/drip/tiny`, { agent: false }, (res) => {
          res.pause();
          let bytes = 0;
          setTimeout(() => {
            res.on('data', (c: Buffer) => {
              bytes += c.length;
            });
            res.on('end', () => resolve({ bytes, complete: res.complete }));
            res.resume();
          }, 300);
        });
        req.on('error', () => resolve({ bytes: 0, complete: false }));
        req.end();
      });
      assert.equal(r.bytes, 100_000);
      assert.ok(r.complete);
      await sleep(100);
      assert.doesNotMatch(p.stderr, /MaxListenersExceededWarning/);
    });
  });

  // --- 8. upgrades -------------------------------------------------------------------------------------------

  describe('upgrades through the pool (RFC 9110 §7.8, RFC 6455)', () => {
    it('a 101 whose head ends in the same write as the first frames: the frames reach the client intact', async () => {
      const s = await Session.open(p.port());
      try {
        s.socket.write(wsUpgrade('/ws/frames'));
        const expected = Buffer.concat([serverFrame(1, 'hello'), serverFrame(2, 'in the same write')]);
        await until(
          () => {
            const end = s.pending.indexOf('\r\n\r\n');
            return end >= 0 && s.pending.length >= end + 4 + expected.length;
          },
          3000,
          'the 101 and the frames',
        );
        const raw = s.pending;
        const end = raw.indexOf('\r\n\r\n');
        assert.match(raw.subarray(0, end).toString('latin1'), /^HTTP\/1\.1 101 /);
        assert.deepEqual(raw.subarray(end + 4), expected);
      } finally {
        s.close();
      }
    });

    it('a refused upgrade (403, keep-alive) closes that upstream connection; the next request gets a new one', async () => {
      const connsBefore = ws.connections.length;
      const s = await Session.open(p.port());
      s.socket.write(wsUpgrade('/ws/refuse'));
      const r = await s.read('GET');
      assert.equal(r.status, 403);
      assert.equal(r.body, 'nope');
      assert.ok(await s.waitClosed(2000), 'the client connection closes after a refused upgrade');
      assert.ok(await within(ws.connections[connsBefore]!.closed, 2000), 'Portico closed the upstream connection');
      const next = await call(base, '/ws/plain');
      assert.equal(next.body, `plain on ${connsBefore + 1}`);
      assert.deepEqual(
        ws.requests.filter((q) => q.conn === connsBefore).map((q) => q.req.path),
        ['/ws/refuse'],
      );
    });
  });

  // --- 9. cache revalidation over the pool -----------------------------------------------------------------

  describe("the cache's background revalidation (undici's request() over this pool)", () => {
    it('stale-while-revalidate: the 304 refreshes the entry, over the same keep-alive connection; a late extra response reaches nobody', async () => {
      const connsBefore = cacheUp.connections.length;
      const first = await Promise.all([call(base, '/c/etag'), call(base, '/c/leaky')]);
      assert.deepEqual(
        first.map((r) => r.body),
        ['stored /c/etag', 'stored /c/leaky'],
      );
      await sleep(1100);
      const stale = await Promise.all([call(base, '/c/etag'), call(base, '/c/leaky')]);
      assert.deepEqual(
        stale.map((r) => [r.body, r.headers['x-cache']]),
        [
          ['stored /c/etag', 'STALE'],
          ['stored /c/leaky', 'STALE'],
        ],
      );
      const conditional = (path: string) =>
        cacheUp.requests.filter((q) => q.req.path === path && q.req.headers['if-none-match'] === '"v1"').length;
      await until(() => conditional('/c/etag') === 1 && conditional('/c/leaky') === 1, 3000, 'the revalidations');
      // The leaky 304's late bytes arrive (and close its connection) before anything else is asked.
      await sleep(LATE_MS + 60);
      // Refreshed by the 304s: fresh hits, and nothing else asked of the origin.
      for (const path of ['/c/etag', '/c/leaky']) {
        let r: Reply | undefined;
        for (let i = 0; i < 50; i++) {
          r = await call(base, path);
          if (r.headers['x-cache'] === 'HIT') break;
          await sleep(10);
        }
        assert.equal(r!.headers['x-cache'], 'HIT');
        assert.equal(r!.body, `stored ${path}`);
      }
      for (let i = 0; i < 3; i++) {
        const plain = await call(base, `/nc/${i}`);
        assert.equal(plain.body, `plain /nc/${i}`);
        assert.equal(plain.headers['x-evil'], undefined);
      }
      const used = cacheUp.requests.filter((q) => q.conn >= connsBefore);
      assert.equal(used.filter((q) => q.req.path.startsWith('/c/')).length, 4);
      // Two connections for the two concurrent misses, reused by the revalidations; one more after the leak.
      assert.ok(cacheUp.connections.length - connsBefore <= 3, `${cacheUp.connections.length - connsBefore} conns`);
    });
  });

  // --- 10. https targets -------------------------------------------------------------------------------------

  describe('https targets (tls.ca)', () => {
    it('requests work and reuse one TLS connection', async () => {
      const before = tlsGood.secure;
      for (let i = 0; i < 3; i++) {
        const r = await call(base, '/tls/good');
        assert.equal(r.status, 200);
        assert.equal(r.body, 'tls ok');
      }
      assert.equal(tlsGood.secure - before, 1);
    });

    it('a certificate for another name → 502 GW_UPSTREAM_CONNECT_FAILED, no stack trace', async () => {
      assertProblem(await call(base, '/tls/wrong'), 502, 'GW_UPSTREAM_CONNECT_FAILED');
      const line = await p.waitFor((l) => l.msg === 'request' && l.path === '/tls/wrong');
      assert.match(String(line.details), /connect_failed:ERR_TLS_CERT_ALTNAME_INVALID/);
    });

    it('a plain HTTP server behind an https target → 502 problem, no stack trace', async () => {
      const r = await call(base, '/tls/plain');
      assert.equal(r.status, 502, r.body);
      assert.equal(r.headers['content-type'], 'application/problem+json');
      assert.ok(r.ms < 1900, 'answered before the connect timeout');
      assert.doesNotMatch(p.stderr, /\n\s+at /);
    });

    it('a failed TLS handshake is a connect failure: nothing was sent, so a POST goes to the next target', async () => {
      for (let i = 0; i < 2; i++) {
        const r = await call(base, '/tls/mixed', { method: 'POST', body: `upload ${i}` });
        assert.equal(r.status, 200, `POST ${i}: ${r.body}`);
        assert.equal(r.body, 'tls ok');
      }
    });
  });

  // --- 11. header injection ----------------------------------------------------------------------------------

  describe('header injection through templates (RFC 9110 §5.5)', () => {
    for (const [what, q] of [
      ['CR LF', 'a%0D%0Ax-evil:%201'],
      ['a bare LF', 'a%0Ax-evil:%201'],
      ['NUL', 'a%00b'],
      ['U+010A, whose latin1 byte is LF', 'a%C4%8Ax-evil:%201'],
    ] as const) {
      it(`${what} from the query into a header → 400, nothing sent upstream`, async () => {
        const before = echo.requests.length;
        const r = await call(base, `/inj/x?q=${q}`);
        assertProblem(r, 400, 'GW_TRANSFORM_FAILED');
        await sleep(30);
        assert.equal(echo.requests.length, before);
      });
    }

    it('CR LF from the query into the path is percent-encoded: one request line, no split', async () => {
      const before = echo.requests.length;
      const r = await call(base, '/injp/x?q=a%0D%0AGET%20/evil%20HTTP/1.1');
      assert.equal(r.status, 200, r.body);
      await sleep(30);
      const seen = echo.requests.slice(before);
      assert.equal(seen.length, 1);
      assert.doesNotMatch(seen[0]!.req.head, /\r\nGET \/evil/);
      assert.match(seen[0]!.req.path, /^\/p\/a%0D%0AGET%20%2Fevil%20HTTP%2F1\.1/i);
    });

    it('an obs-text byte in a client header goes upstream as the same byte', async () => {
      const before = echo.requests.length;
      const s = await Session.open(p.port());
      try {
        s.socket.write(
          Buffer.from(`GET /echo/obs HTTP/1.1${CRLF}host: test${CRLF}x-name: caf\xe9${CRLF}${CRLF}`, 'latin1'),
        );
        const r = await s.read('GET');
        assert.equal(r.status, 200);
      } finally {
        s.close();
      }
      const head = Buffer.from(echo.requests[before]!.req.head, 'latin1');
      assert.ok(head.includes(Buffer.from('x-name: caf\xe9\r\n', 'latin1')));
    });
  });

  // --- 12. the pool's queue ----------------------------------------------------------------------------------

  describe('requests queued for a connection (maxConnectionsPerTarget)', () => {
    it('a queued request whose client left does not cost the pool its keep-alive connection', async () => {
      const connsBefore = queue.connections.length;
      const a = call(base, '/q/slow');
      await sleep(50);
      const gone = request(`${base}/q/gone`, { agent: false });
      gone.on('error', () => {});
      gone.end();
      await sleep(100);
      gone.destroy();
      assert.equal((await a).body, `/q/slow on ${connsBefore}`);
      const c = await call(base, '/q/after');
      assert.equal(c.body, `/q/after on ${connsBefore}`, 'a new connection replaced the one that served A');
      assert.ok(!queue.requests.some((q) => q.req.path === '/q/gone'));
    });

    it('retries.perTryTimeout bounds a try that waited in the queue', async () => {
      const [a, b] = await Promise.all([call(base, '/pt/slow1000'), call(base, '/pt/slow1000?b')]);
      assertProblem(a, 504, 'GW_UPSTREAM_TIMEOUT');
      assertProblem(b, 504, 'GW_UPSTREAM_TIMEOUT');
      assert.ok(b.ms < 900, `the queued request took ${b.ms.toFixed(0)} ms`);
    });
  });

  it('portico never wrote a stack trace', () => {
    assert.doesNotMatch(p.stderr, /\n\s+at /);
  });
});
