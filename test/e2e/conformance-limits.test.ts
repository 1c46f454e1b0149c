/**
 * End to end: limits, timeouts and shielding against hostile clients, as nginx, HAProxy and Caddy behave —
 * slow heads and bodies (slowloris), idle and silent connections, oversize inputs over HTTP/1.1 and h2c,
 * connection limits per client, allow / deny lists (IPv4-mapped peers, X-Forwarded-For from untrusted peers),
 * and a normal client still answered under a flood of idle and slow connections.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { rawExchange, statusOf } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { END_STREAM, RawH2, RST_STREAM, request } from '../helpers/raw-h2.ts';
import { within } from '../helpers/within.ts';

/** What the upstream saw of one request: whether its body arrived whole, or the upload was cut. */
interface Seen {
  readonly url: string;
  readonly method: string;
  bytes: number;
  complete: boolean;
  aborted: boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A raw connection that collects everything it receives and notes when it closes. */
class Raw {
  readonly socket: Socket;
  data = '';
  closed = false;
  #wake: (() => void) | undefined;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => {
      this.data += c.toString('latin1');
      this.#wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.#wake?.();
    });
    socket.on('error', () => {});
  }

  static async open(port: number, host = '127.0.0.1'): Promise<Raw> {
    const socket = connect(port, host);
    await once(socket, 'connect');
    return new Raw(socket);
  }

  /** Waits (at most `ms`) until `test` holds or the connection closes. */
  async until(test: () => boolean, ms = 10_000): Promise<void> {
    const deadline = performance.now() + ms;
    while (!test() && !this.closed && performance.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - performance.now()));
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Writes `text` one byte every `everyMs` until done or the connection closes; returns the bytes written. */
  async trickle(text: string, everyMs: number): Promise<number> {
    let i = 0;
    for (; i < text.length && !this.closed; i++) {
      this.socket.write(text[i]!);
      await sleep(everyMs);
    }
    return i;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

describe('limits, timeouts and shielding against hostile clients', () => {
  let upstream: Server;
  let upstreamUrl: string;
  const seen: Seen[] = [];
  let p: PorticoProcess;

  before(async () => {
    upstream = createServer((req: IncomingMessage, res) => {
      const entry: Seen = { url: req.url!, method: req.method!, bytes: 0, complete: false, aborted: false };
      seen.push(entry);
      req.on('data', (c: Buffer) => {
        entry.bytes += c.length;
      });
      req.on('aborted', () => {
        entry.aborted = true;
      });
      req.on('error', () => {});
      req.on('end', () => {
        entry.complete = true;
        const body = JSON.stringify({ url: req.url, bytes: entry.bytes, xff: req.headers['x-forwarded-for'] ?? null });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
    });
    upstream.keepAliveTimeout = 30_000;
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    const limits = '{ maxHeaderSize: 4KiB, headersTimeout: 1s, requestTimeout: 2s, idleTimeout: 1s }';
    p = await startPortico(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:0, limits: ${limits} }
  - { name: h2, protocol: http, address: 127.0.0.1:0, h2c: true, limits: ${limits} }
  - name: few
    protocol: http
    address: 127.0.0.1:0
    limits: { maxConnectionsPerClient: 2, maxRequestsPerConnection: 2, idleTimeout: 5s }
  - { name: fewh2, protocol: http, address: 127.0.0.1:0, h2c: true, limits: { maxRequestsPerConnection: 2 } }
  - { name: dual, protocol: http, address: "[::]:0", allow: [127.0.0.0/8] }
  - { name: dualdeny, protocol: http, address: "[::]:0", deny: [127.0.0.1/32] }
  - { name: tenonly, protocol: http, address: 127.0.0.1:0, allow: [10.0.0.0/8] }
  - { name: trusting, protocol: http, address: 127.0.0.1:0, allow: [10.0.0.0/8], trustedProxies: [127.0.0.0/8] }
upstreams: [ { name: up, targets: [ { url: ${upstreamUrl} } ] } ]
routes:
  - { name: small, match: { path: /small/* }, limits: { maxBodySize: 1KiB }, upstream: up }
  - { name: all, match: { path: /* }, upstream: up }
`);
  });

  after(async () => {
    await p?.stop();
    upstream?.closeAllConnections();
    upstream?.close();
  });

  const forUrl = (url: string): Seen[] => seen.filter((s) => s.url === url);
  /** The access-log line of `path` (log lines arrive through a pipe: waited for, at most 3 s). */
  const accessFor = (path: string): Promise<Record<string, unknown> | undefined> =>
    p.waitFor((l) => l.msg === 'request' && l.path === path, 3000).catch(() => undefined);
  const accessWith = (status: number): Promise<Record<string, unknown> | undefined> =>
    p.waitFor((l) => l.msg === 'request' && l.status === status && l.path === '-', 3000).catch(() => undefined);

  // ---- slow heads (slowloris) ----

  it('answers 408 to a head trickled one byte at a time: the header timer covers the whole head', async () => {
    const c = await Raw.open(p.port());
    // 40 bytes at 100 ms each would take 4 s; the head timeout is 1 s and must not restart with each byte.
    const written = await c.trickle(`GET /trickle-head HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(20)}`, 100);
    await c.until(() => false, 5000);
    assert.ok(c.closed, 'the connection is closed');
    assert.equal(statusOf(c.data), 408, c.data);
    assert.ok(written < 40, `closed before the trickle ended (${written} bytes written)`);
    assert.match(c.data, /content-type: application\/problem\+json/i);
    assert.match(c.data, /connection: close/i);
    assert.equal(forUrl('/trickle-head').length, 0, 'nothing reached the upstream');
  });

  it('answers 408 to a slow head on a keep-alive connection’s second request', async () => {
    const c = await Raw.open(p.port());
    c.socket.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.until(() => c.data.includes('"url":"/first"'));
    assert.equal(statusOf(c.data), 200);
    const firstLength = c.data.length;
    const written = await c.trickle(`GET /second-slow HTTP/1.1\r\nHost: x\r\nX-Slow: ${'a'.repeat(20)}`, 100);
    await c.until(() => false, 5000);
    assert.ok(c.closed);
    const second = c.data.slice(firstLength);
    assert.equal(statusOf(second), 408, second);
    assert.ok(written < 50, `closed before the trickle ended (${written} bytes written)`);
    assert.equal(forUrl('/second-slow').length, 0);
  });

  it('closes an idle keep-alive connection at the idle timeout, without a response', async () => {
    const c = await Raw.open(p.port());
    c.socket.write('GET /idle HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.until(() => c.data.includes('"url":"/idle"'));
    const length = c.data.length;
    await c.until(() => false, 5000);
    assert.ok(c.closed, 'closed');
    assert.equal(c.data.length, length, 'nothing was sent on the idle connection');
  });

  it('answers 408 to a connection that opens and sends nothing, then closes it', async () => {
    const c = await Raw.open(p.port());
    await c.until(() => false, 5000);
    assert.ok(c.closed);
    assert.equal(statusOf(c.data), 408, c.data);
    assert.match(c.data, /connection: close/i);
  });

  // ---- slow and oversize bodies ----

  it('answers 408 to a body trickled under the request timeout; the upstream upload is aborted', async () => {
    const c = await Raw.open(p.port());
    c.socket.write('POST /trickle-body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n');
    const written = await c.trickle('b'.repeat(100), 100);
    await c.until(() => false, 5000);
    assert.ok(c.closed);
    assert.equal(statusOf(c.data), 408, c.data);
    assert.ok(written < 100, 'cut before the body was complete');
    await sleep(200);
    for (const s of forUrl('/trickle-body')) assert.equal(s.complete, false, 'the upstream never got a whole body');
    const log = await accessFor('/trickle-body');
    assert.equal(log?.status, 408, JSON.stringify(log));
  });

  it('answers 408 when the request timeout covers head and body, even with a quick head', async () => {
    const c = await Raw.open(p.port());
    c.socket.write('POST /stalled-body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    await c.until(() => false, 5000);
    assert.ok(c.closed);
    assert.equal(statusOf(c.data), 408, c.data);
    await sleep(200);
    for (const s of forUrl('/stalled-body')) assert.equal(s.complete, false);
  });

  it('answers 413 to a declared Content-Length over maxBodySize before any byte goes upstream', async () => {
    const raw = await rawExchange(p.port(), 'POST /small/declared HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n');
    assert.equal(statusOf(raw), 413);
    assert.match(raw, /connection: close/i);
    assert.match(raw, /application\/problem\+json/);
    assert.equal(forUrl('/small/declared').length, 0);
    assert.equal((await accessFor('/small/declared'))?.status, 413);
  });

  it('answers 413 to a chunked body past the limit, and the upstream never gets it whole', async () => {
    const chunk = 'c'.repeat(600);
    const raw = await rawExchange(
      p.port(),
      `POST /small/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`,
    );
    assert.equal(statusOf(raw), 413);
    assert.match(raw, /connection: close/i);
    await sleep(200);
    for (const s of forUrl('/small/chunked')) assert.equal(s.complete, false);
  });

  it('over h2c: 413 for a content-length past the limit, never forwarded', async () => {
    const h2 = await RawH2.open(p.port('h2'));
    try {
      h2.headers(1, request('/small/h2-declared', [['content-length', '4096']], 'POST'), false);
      const r = await h2.result(1);
      assert.equal(r.status, 413);
      assert.equal(forUrl('/small/h2-declared').length, 0);
    } finally {
      h2.close();
    }
  });

  it('over h2c: DATA frames past the limit get 413, and the upstream never gets them whole', async () => {
    const h2 = await RawH2.open(p.port('h2'));
    try {
      h2.headers(1, request('/small/h2-data', [], 'POST'), false);
      for (let i = 0; i < 3; i++) h2.data(1, 'd'.repeat(600));
      h2.data(1, '', true);
      const r = await h2.result(1);
      assert.equal(r.status, 413, JSON.stringify(r));
      assert.match(r.body, /"code":"GW_BODY_TOO_LARGE"/);
      await sleep(200);
      for (const s of forUrl('/small/h2-data')) assert.equal(s.complete, false);
    } finally {
      h2.close();
    }
  });

  it('over h2c: a body trickled past the request timeout gets 408 and a reset, never a complete upload', async () => {
    const h2 = await RawH2.open(p.port('h2'));
    try {
      h2.headers(1, request('/h2-trickle', [['content-length', '100']], 'POST'), false);
      let sent = 0;
      for (; sent < 60 && !h2.closed; sent++) {
        if (h2.frames.some((f) => f.stream === 1 && (f.type === RST_STREAM || f.flags & END_STREAM))) break;
        h2.data(1, 'x');
        await sleep(100);
      }
      const r = await h2.result(1);
      assert.equal(r.status, 408, JSON.stringify(r));
      assert.match(r.body, /"code":"GW_REQUEST_TIMEOUT"/);
      assert.ok(sent < 60, 'cut before the trickle ended');
      await sleep(200);
      for (const s of forUrl('/h2-trickle')) assert.equal(s.complete, false);
      assert.equal((await accessFor('/h2-trickle'))?.status, 408);
    } finally {
      h2.close();
    }
  });

  // ---- oversize heads ----

  it('answers 414 to a request line over the head limit and 431 to too large or too many fields', async () => {
    const uri = await rawExchange(p.port(), `GET /${'u'.repeat(6000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    assert.equal(statusOf(uri), 414);
    assert.match(uri, /connection: close/i);
    const big = await rawExchange(p.port(), `GET /big HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(5000)}\r\n\r\n`);
    assert.equal(statusOf(big), 431);
    const many = Array.from({ length: 1100 }, (_, i) => `x${i}: 1\r\n`).join('');
    // 1100 short fields fit in no 4 KiB head either; whichever limit trips, the answer is 431.
    const crowd = await rawExchange(p.port(), `GET /many HTTP/1.1\r\nHost: x\r\n${many}\r\n`);
    assert.equal(statusOf(crowd), 431);
    for (const raw of [uri, big, crowd]) assert.doesNotMatch(raw, /at .*\.ts:\d+/);
    assert.equal(seen.filter((s) => s.url.startsWith('/uuu') || s.url === '/big' || s.url === '/many').length, 0);
  });

  it('over h2c: a header list past the limit is refused (reset or 431), never forwarded', async () => {
    const h2 = await RawH2.open(p.port('h2'));
    try {
      h2.headers(1, request('/h2-big', [['x-big', 'b'.repeat(5000)]]));
      const r = await h2.result(1);
      assert.ok(r.status === 431 || r.rst !== undefined, `431 or reset, got ${JSON.stringify(r)}`);
      assert.equal(forUrl('/h2-big').length, 0);
    } finally {
      h2.close();
    }
  });

  // ---- connection limits ----

  it('refuses a connection past maxConnectionsPerClient with 429, and a freed slot is reusable', async () => {
    const port = p.port('few');
    const held = [await Raw.open(port), await Raw.open(port)];
    try {
      for (const c of held) {
        c.socket.write('GET /held HTTP/1.1\r\nHost: x\r\n\r\n');
        await c.until(() => c.data.includes('"url":"/held"'));
      }
      const raw = await rawExchange(port, 'GET /third HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal(statusOf(raw), 429);
      assert.match(raw, /connection: close/i);
      assert.match(raw, /retry-after: /i);
      assert.equal(forUrl('/third').length, 0);
      assert.ok((await accessWith(429)) !== undefined, 'the refusal is in the access log');
    } finally {
      held[0]!.destroy();
    }
    let status = 0;
    for (let i = 0; i < 40 && status !== 200; i++) {
      await sleep(25);
      status = statusOf(await rawExchange(port, 'GET /freed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    }
    assert.equal(status, 200, 'the freed slot is usable again');
    held[1]!.destroy();
  });

  it('closes a connection after maxRequestsPerConnection, saying Connection: close on the last response', async () => {
    let c: Raw | undefined;
    // The slots of the previous test may take a moment to be freed.
    for (let i = 0; i < 40; i++) {
      c = await Raw.open(p.port('few'));
      c.socket.write('GET /n1 HTTP/1.1\r\nHost: x\r\n\r\n');
      await c.until(() => c!.data.includes('"url":"/n1"') || statusOf(c!.data) === 429);
      if (statusOf(c.data) === 200) break;
      c.destroy();
      await sleep(25);
    }
    assert.ok(c !== undefined && statusOf(c.data) === 200);
    assert.doesNotMatch(c.data, /connection: close/i);
    const first = c.data.length;
    // A third request pipelined behind the last allowed one is neither answered nor forwarded.
    c.socket.write('GET /n2 HTTP/1.1\r\nHost: x\r\n\r\nGET /n3 HTTP/1.1\r\nHost: x\r\n\r\n');
    await c.until(() => c!.data.includes('"url":"/n2"'));
    assert.match(c.data.slice(first), /connection: close/i);
    await c.until(() => false, 3000);
    assert.ok(c.closed, 'closed after the last allowed request');
    assert.equal(c.data.match(/HTTP\/1\.1 /g)?.length, 2, c.data);
    assert.equal(forUrl('/n3').length, 0);
  });

  it('over h2c: maxRequestsPerConnection sends GOAWAY after N streams and refuses the streams past it', async () => {
    const h2 = await RawH2.open(p.port('fewh2'));
    try {
      for (const id of [1, 3, 5, 7]) h2.headers(id, request(`/h2n${id}`));
      const served = await Promise.all([1, 3].map((id) => h2.result(id)));
      assert.deepEqual(
        served.map((r) => r.status),
        [200, 200],
      );
      await h2.until(() => (h2.goaways().length > 0 ? true : undefined), 'a GOAWAY');
      assert.equal(h2.goaways()[0]!.code, 0);
      // Streams 5 and 7 are refused unprocessed (RFC 9113 §8.7, safe to retry): by RST_STREAM REFUSED_STREAM,
      // or by a GOAWAY whose last stream id is below theirs, depending on when they arrived.
      await h2.until(() => (h2.closed ? true : undefined), 'the connection to close', 5000).catch(() => {});
      for (const id of [5, 7]) {
        const mine = h2.frames.filter((f) => f.stream === id);
        const refused = mine.length === 1 && mine[0]!.type === RST_STREAM && mine[0]!.payload.readUInt32BE(0) === 7;
        const unprocessed = mine.length === 0 && h2.goaways()[0]!.lastStream < id;
        assert.ok(refused || unprocessed, `stream ${id}: ${JSON.stringify(mine.map((f) => f.type))}`);
      }
      assert.equal(forUrl('/h2n5').length + forUrl('/h2n7').length, 0, 'refused streams never reach the upstream');
    } finally {
      h2.close();
    }
  });

  // ---- allow / deny ----

  it('matches an IPv4-mapped IPv6 peer against IPv4 blocks (allow and deny)', async () => {
    const allowed = await rawExchange(
      p.port('dual'),
      'GET /mapped-allowed HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    assert.equal(statusOf(allowed), 200, allowed);
    const denied = await rawExchange(
      p.port('dualdeny'),
      'GET /mapped-denied HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    assert.equal(statusOf(denied), 403, denied);
    assert.match(denied, /GW_ADDRESS_DENIED/);
    assert.equal(forUrl('/mapped-denied').length, 0);
  });

  it('does not take X-Forwarded-For from an untrusted peer for allow / deny; a trusted one is believed', async () => {
    const spoofed = await rawExchange(
      p.port('tenonly'),
      'GET /spoof HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.1.2.3\r\nConnection: close\r\n\r\n',
    );
    assert.equal(statusOf(spoofed), 403);
    assert.match(spoofed, /application\/problem\+json/);
    assert.equal(forUrl('/spoof').length, 0);
    const html = await rawExchange(
      p.port('tenonly'),
      'GET /spoof-html HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\nConnection: close\r\n\r\n',
    );
    assert.equal(statusOf(html), 403);
    assert.match(html, /content-type: text\/html/i);
    const trusted = await rawExchange(
      p.port('trusting'),
      'GET /trusted HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.1.2.3\r\nConnection: close\r\n\r\n',
    );
    assert.equal(statusOf(trusted), 200, trusted);
    assert.equal((await accessFor('/spoof'))?.status, 403);
  });

  // ---- floods ----

  it('answers a normal client while 500 idle and 50 slowloris connections are open', async () => {
    const port = p.port();
    const idle: Socket[] = [];
    const slow: Socket[] = [];
    try {
      for (let i = 0; i < 500; i++) {
        const s = connect(port, '127.0.0.1');
        s.on('error', () => {});
        idle.push(s);
      }
      for (let i = 0; i < 50; i++) {
        const s = connect(port, '127.0.0.1');
        s.on('error', () => {});
        s.write('GET /loris HTTP/1.1\r\nHost: x\r\n');
        slow.push(s);
      }
      await Promise.all(
        [...idle, ...slow].map((s) => (s.connecting ? once(s, 'connect').catch(() => {}) : Promise.resolve())),
      );
      const raw = await within(
        rawExchange(port, 'GET /under-flood HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 10_000),
        15_000,
        'an answer under flood',
      );
      assert.equal(statusOf(raw), 200);
    } finally {
      for (const s of [...idle, ...slow]) s.destroy();
    }
    assert.equal(forUrl('/loris').length, 0);
  });

  it('logs raw refusals (408, 414, 431) in the access log', async () => {
    await rawExchange(p.port(), `GET /logged-431 HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(5000)}\r\n\r\n`);
    await sleep(200);
    for (const status of [408, 414, 431]) {
      const line = await accessWith(status);
      assert.ok(line !== undefined, `an access-log line with status ${status}`);
      assert.match(String(line.code), /^GW_/);
      assert.equal(line.client, '127.0.0.1');
    }
  });
});
