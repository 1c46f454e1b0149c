/**
 * Conformance: HTTP/2 clients against RFC 9113 §8 (message framing, field validity, pseudo-headers, CONNECT,
 * no push), §6.8 (GOAWAY on shutdown and reload), flow control both ways, RST_STREAM, trailers, and the RFC
 * 9110 semantics that must hold the same over h2 as over HTTP/1.1 (the same refusals, forwarding headers,
 * upstream failures). Clients: a tiny frame writer over net/tls sockets (HPACK literals, so any header block
 * can be sent) and node:http2; upstreams: a real node:http server that records what reaches it.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeRepeated } from '../helpers/bodies.ts';
import { rawExchange, statusOf } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { freePort } from '../helpers/ports.ts';
import {
  CANCEL,
  DATA,
  END_STREAM,
  type Fields,
  HEADERS,
  PROTOCOL_ERROR,
  PUSH_PROMISE,
  RawH2,
  RST_STREAM,
  request,
  type StreamResult,
} from '../helpers/raw-h2.ts';
import { certDir, makeCert } from '../helpers/tls-certs.ts';

/** One request on a fresh connection (so the response's `:status` can be read without HPACK state). */
async function exchange(port: number, fields: Fields, body?: string): Promise<StreamResult> {
  const c = await RawH2.open(port);
  try {
    c.headers(1, fields, body === undefined);
    if (body !== undefined) c.data(1, body, true);
    return await c.result(1);
  } finally {
    c.close();
  }
}

const codeOf = (body: string): string | undefined => /"code":"(\w+)"/.exec(body)?.[1];

// --- the recording upstream ---------------------------------------------------------------------------

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  /** Resolves when the request closes: whether its body was complete and the response finished. */
  readonly closed: Promise<{ complete: boolean; responded: boolean }>;
  /** Resolves when the first body bytes arrive. */
  readonly firstData: Promise<unknown>;
  bytes: number;
}

interface Recorder {
  readonly server: Server;
  readonly port: number;
  readonly seen: Seen[];
  /** Bytes of /big written so far (the upstream honours backpressure). */
  bigWritten: number;
  /** Releases the requests held on /hold. */
  release(): void;
  /** Resolves when a request whose URL starts with `prefix` arrives (or already arrived). */
  arrival(prefix: string): Promise<Seen>;
}

const BIG_CHUNK = 64 * 1024;
const BIG_CHUNKS = 1024; // 64 MiB

async function startRecorder(): Promise<Recorder> {
  const held: ServerResponse[] = [];
  const waiters: { prefix: string; resolve: (s: Seen) => void }[] = [];
  const rec: Recorder = {
    server: undefined as unknown as Server,
    port: 0,
    seen: [],
    bigWritten: 0,
    release() {
      for (const res of held.splice(0)) res.end('released');
    },
    arrival(prefix) {
      const already = rec.seen.find((s) => s.url.startsWith(prefix));
      if (already !== undefined) return Promise.resolve(already);
      return new Promise((resolve) => waiters.push({ prefix, resolve }));
    },
  };
  const server = createServer((req, res) => {
    const url = req.url!;
    let dataCame: (v?: unknown) => void = () => {};
    const seen: Seen = {
      firstData: new Promise((resolve) => {
        dataCame = resolve;
      }),
      method: req.method!,
      url,
      headers: req.headers,
      bytes: 0,
      closed: new Promise((resolve) => {
        res.on('close', () => resolve({ complete: req.complete, responded: res.writableFinished }));
      }),
    };
    rec.seen.push(seen);
    for (const w of waiters.filter((x) => url.startsWith(x.prefix))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(seen);
    }
    if (url.startsWith('/r/sink')) return; // never reads, never answers
    const hash = createHash('sha256');
    req.on('data', (c: Buffer) => {
      dataCame();
      seen.bytes += c.length;
      hash.update(c);
    });
    if (url.startsWith('/r/slow') || url.startsWith('/timeout')) return; // never answers
    if (url.startsWith('/r/hold')) {
      held.push(res);
      return;
    }
    if (url.startsWith('/r/big')) {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      writeRepeated(res, Buffer.alloc(BIG_CHUNK, 0x61), BIG_CHUNKS, (bytes) => {
        rec.bigWritten += bytes;
      });
      return;
    }
    if (url.startsWith('/r/sized')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5 });
      res.end('sized');
      return;
    }
    if (url.startsWith('/r/trailers')) {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum, grpc-status' });
      res.write('hello');
      res.addTrailers({ 'x-checksum': 'abc', 'grpc-status': '0' });
      res.end();
      return;
    }
    req.on('end', () => {
      const json = JSON.stringify({
        method: req.method,
        url,
        headers: req.headers,
        bytes: seen.bytes,
        sha: hash.digest('hex'),
      });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(json);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  Object.assign(rec, { server, port: (server.address() as AddressInfo).port });
  return rec;
}

// --- the tests ----------------------------------------------------------------------------------------

describe('conformance: HTTP/2 clients (RFC 9113, RFC 9110 over h2)', () => {
  const dir = certDir();
  const cert = makeCert(dir, ['DNS:h2.test']);
  let rec: Recorder;
  let p: PorticoProcess;
  let h2c: number;
  let deadPort: number;
  /** A backend that reads nothing of a request and resets the connection 300 ms after it opened. */
  let resetting: { port: number; close(): void };

  const config = (h2cAddress = '127.0.0.1:0'): string => `
listeners:
  - { name: h2c, protocol: http, address: ${h2cAddress}, h2c: true }
  - name: secure
    protocol: https
    address: 127.0.0.1:0
    tls: { certificates: [ { cert: ${cert.cert}, key: ${cert.key} } ] }
upstreams:
  - { name: rec, targets: [ { url: http://127.0.0.1:${rec.port} } ] }
  - { name: stalls, targets: [ { url: http://127.0.0.1:${rec.port} } ], timeouts: { response: 300ms } }
  - { name: dead, targets: [ { url: http://127.0.0.1:${deadPort} } ] }
  - name: resets
    targets: [ { url: http://127.0.0.1:${resetting.port} } ]
    retries: { attempts: 1 }
    health: { passive: { consecutiveFailures: 0 } }
routes:
  - { name: resets, match: { path: /resets/* }, upstream: resets }
  - { name: small, match: { path: /small/* }, limits: { maxBodySize: 10 }, upstream: rec }
  - { name: denied, match: { path: /denied/* }, deny: [127.0.0.0/8], upstream: rec }
  - { name: dead, match: { path: /dead/* }, upstream: dead }
  - { name: stalls, match: { path: /timeout/* }, upstream: stalls }
  - { name: rec, match: { path: /r/* }, upstream: rec }
`;

  before(async () => {
    rec = await startRecorder();
    deadPort = await freePort();
    const tcp = createTcpServer((socket) => {
      socket.pause();
      setTimeout(() => socket.resetAndDestroy(), 300).unref();
    });
    tcp.listen(0, '127.0.0.1');
    await once(tcp, 'listening');
    resetting = { port: (tcp.address() as AddressInfo).port, close: () => tcp.close() };
    p = await startPortico(config());
    h2c = p.port('h2c');
  });

  after(async () => {
    await p?.stop();
    resetting?.close();
    rec?.server.closeAllConnections();
    rec?.server.close();
  });

  it('resets malformed requests with PROTOCOL_ERROR and forwards none of them (§8.1.1, §8.2, §8.3)', async () => {
    const without = (name: string): Fields => request('/r/x').filter(([n]) => n !== name);
    const cases: Record<string, Fields> = {
      'uppercase field name (§8.2)': request('/r/x', [['X-Upper', '1']]),
      'connection (§8.2.2)': request('/r/x', [['connection', 'keep-alive']]),
      'keep-alive (§8.2.2)': request('/r/x', [['keep-alive', 'timeout=5']]),
      'proxy-connection (§8.2.2)': request('/r/x', [['proxy-connection', 'keep-alive']]),
      'transfer-encoding (§8.2.2)': request('/r/x', [['transfer-encoding', 'chunked']]),
      'upgrade (§8.2.2)': request('/r/x', [['upgrade', 'websocket']]),
      'te other than trailers (§8.2.2)': request('/r/x', [['te', 'gzip']]),
      'no :method (§8.3.1)': without(':method'),
      'no :scheme (§8.3.1)': without(':scheme'),
      'no :path (§8.3.1)': without(':path'),
      'neither :authority nor host (§8.3.1)': without(':authority'),
      'two :path (§8.3)': request('/r/x', [[':path', '/r/y']]),
      'unknown pseudo-header (§8.3)': request('/r/x', [[':foo', 'bar']]),
      'pseudo-header after a field (§8.3)': [
        [':method', 'GET'],
        [':scheme', 'http'],
        ['x-a', '1'],
        [':authority', 'a.test'],
        [':path', '/r/x'],
      ],
      'empty :path (§8.3.1)': request(''),
      ':path not starting with / (§8.3.1)': request('r/x'),
      ':path * for GET (§8.3.1)': request('*'),
      'absolute-form :path (§8.3.1)': request('http://b.test/r/x'),
      ':authority with userinfo (§8.3.1)': [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':authority', 'user@a.test'],
        [':path', '/r/x'],
      ],
      'two host fields (§8.3.1)': [...without(':authority'), ['host', 'a.test'], ['host', 'b.test']],
      'extended CONNECT, not offered (RFC 8441 §3)': [
        [':method', 'CONNECT'],
        [':protocol', 'websocket'],
        [':scheme', 'http'],
        [':authority', 'a.test'],
        [':path', '/r/ws'],
      ],
      'content-length on a request ended without data (§8.1.1)': request('/r/x', [['content-length', '5']]),
    };
    const before = rec.seen.length;
    const c = await RawH2.open(h2c);
    let stream = 1;
    for (const [name, fields] of Object.entries(cases)) {
      c.headers(stream, fields);
      const r = await c.result(stream);
      assert.equal(r.rst, PROTOCOL_ERROR, name);
      assert.deepEqual(r.statuses, [], name);
      stream += 2;
    }
    // The connection survives stream errors: a good request on it is served.
    c.headers(stream, request('/r/after'));
    assert.equal((await c.result(stream)).status, 200);
    assert.deepEqual(
      rec.seen.slice(before).map((s) => s.url),
      ['/r/after'],
    );
    c.close();
  });

  it('drops fields with characters §8.2.1 forbids, never forwarding them', async () => {
    const r = await exchange(
      h2c,
      request('/r/fields', [
        ['x-crlf', 'a\r\nx-injected: 1'],
        ['x-nul', 'a\0b'],
        ['x-space', ' padded'],
        ['x a', 'b'],
        ['x-kept', 'yes'],
      ]),
    );
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as { headers: Record<string, string> };
    assert.equal(seen.headers['x-kept'], 'yes');
    for (const name of ['x-crlf', 'x-injected', 'x-nul', 'x-space', 'x a']) assert.equal(seen.headers[name], undefined);
  });

  it('gives an h2 request the refusal an HTTP/1.1 request gets (RFC 9110 semantics, http1-checks.ts)', async () => {
    const cases: { name: string; h1: string; h2: Fields; body?: string; status: number; code?: string }[] = [
      {
        name: 'invalid host[:port]',
        h1: 'GET /r/x HTTP/1.1\r\nHost: a.test:999999\r\n',
        h2: request('/r/x').map(([n, v]) => [n, n === ':authority' ? 'a.test:999999' : v]),
        status: 400,
        code: 'GW_BAD_REQUEST',
      },
      {
        name: 'a method HTTP/1 does not know',
        h1: 'get /r/x HTTP/1.1\r\nHost: a.test\r\n',
        h2: request('/r/x', [], 'get'),
        status: 501,
        code: 'GW_NOT_IMPLEMENTED',
      },
      {
        name: 'CONNECT',
        h1: 'CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n',
        h2: [
          [':method', 'CONNECT'],
          [':authority', 'a.test:443'],
        ],
        status: 405,
        code: 'GW_METHOD_NOT_ALLOWED',
      },
      {
        name: 'TRACE',
        h1: 'TRACE /r/x HTTP/1.1\r\nHost: a.test\r\n',
        h2: request('/r/x', [], 'TRACE'),
        status: 405,
        code: 'GW_METHOD_NOT_ALLOWED',
      },
      {
        name: 'an expectation other than 100-continue',
        h1: 'GET /r/x HTTP/1.1\r\nHost: a.test\r\nExpect: teapot\r\n',
        h2: request('/r/x', [['expect', 'teapot']]),
        status: 417,
        code: 'GW_EXPECTATION_FAILED',
      },
      {
        name: 'an encoded NUL in the path',
        h1: 'GET /r/a%00b HTTP/1.1\r\nHost: a.test\r\n',
        h2: request('/r/a%00b'),
        status: 400,
        code: 'GW_BAD_PATH',
      },
      {
        name: 'no route',
        h1: 'GET /nowhere HTTP/1.1\r\nHost: a.test\r\n',
        h2: request('/nowhere'),
        status: 404,
        code: 'GW_ROUTE_NOT_FOUND',
      },
      {
        name: 'a denied client address',
        h1: 'GET /denied/x HTTP/1.1\r\nHost: a.test\r\n',
        h2: request('/denied/x'),
        status: 403,
        code: 'GW_ADDRESS_DENIED',
      },
      {
        name: 'Content-Length over the route limit',
        h1: 'POST /small/x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 20\r\n',
        h2: request('/small/x', [['content-length', '20']], 'POST'),
        body: 'x'.repeat(20),
        status: 413,
        code: 'GW_BODY_TOO_LARGE',
      },
      {
        name: 'a streamed body over the route limit',
        h1: 'POST /small/x HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n',
        h2: request('/small/x', [], 'POST'),
        body: 'x'.repeat(20),
        status: 413,
        code: 'GW_BODY_TOO_LARGE',
      },
      {
        name: 'OPTIONS * (answered here)',
        h1: 'OPTIONS * HTTP/1.1\r\nHost: a.test\r\n',
        h2: request('*', [], 'OPTIONS'),
        status: 200,
      },
    ];
    const before = rec.seen.length;
    for (const c of cases) {
      let h1Body = c.body ?? '';
      if (c.body !== undefined && c.h1.includes('chunked'))
        h1Body = `${c.body.length.toString(16)}\r\n${c.body}\r\n0\r\n\r\n`;
      const raw = await rawExchange(h2c, `${c.h1}Connection: close\r\n\r\n${h1Body}`);
      assert.equal(statusOf(raw), c.status, `HTTP/1.1: ${c.name}`);
      assert.equal(codeOf(raw), c.code, `HTTP/1.1: ${c.name}`);
      const r = await exchange(h2c, c.h2, c.body);
      assert.equal(r.status, c.status, `h2: ${c.name}`);
      assert.equal(codeOf(r.body), c.code, `h2: ${c.name}`);
    }
    assert.equal(rec.seen.length, before, 'no refused request reached the upstream');
  });

  it('checks :scheme, and :authority against Host after scheme-based normalisation (§8.3.1)', async () => {
    const withAuthority = (authority: string, extra: Fields, scheme = 'http'): Fields => [
      [':method', 'GET'],
      [':scheme', scheme],
      [':authority', authority],
      [':path', '/r/authority'],
      ...extra,
    ];
    const refused: Record<string, Fields> = {
      'a scheme Portico does not serve': withAuthority('a.test', [], 'ftp'),
      'Host naming another host': withAuthority('a.test', [['host', 'b.test']]),
      'Host naming another port': withAuthority('a.test:8080', [['host', 'a.test:8081']]),
      'an IP literal that is not one': withAuthority('[zz]', []),
      'a non-numeric port': withAuthority('a.test:https', []),
      // A comma names no host; `a,b` is what two joined Host lines look like (as over HTTP/1, host_list).
      'an authority with a comma': withAuthority('b.test,a.test', []),
      'a Host with a comma and no :authority': [
        [':method', 'GET'],
        [':scheme', 'http'],
        [':path', '/r/authority'],
        ['host', 'b.test,a.test'],
      ],
    };
    for (const [name, fields] of Object.entries(refused)) {
      const r = await exchange(h2c, fields);
      assert.equal(r.status, 400, name);
      assert.equal(codeOf(r.body), 'GW_BAD_REQUEST', name);
    }
    const accepted: Record<string, Fields> = {
      'the same authority': withAuthority('a.test', [['host', 'a.test']]),
      'case and the default port aside': withAuthority('A.Test:80', [['host', 'a.test']]),
      'https default port': withAuthority('a.test', [['host', 'a.test:443']], 'https'),
    };
    for (const [name, fields] of Object.entries(accepted)) {
      const r = await exchange(h2c, fields);
      assert.equal(r.status, 200, name);
      // :authority wins: it is the Host the route saw and the one forwarded in X-Forwarded-Host.
      const seen = JSON.parse(r.body) as { headers: Record<string, string> };
      assert.equal(seen.headers['x-forwarded-host'], fields.find(([n]) => n === ':authority')![1], name);
    }
  });

  it('forwards what an HTTP/1.1 client would have sent: cookies joined, X-Forwarded-Proto https, no hop-by-hop (§8.2.3)', async () => {
    const c = await RawH2.open(p.port('secure'), true);
    const crumbs: Fields = [];
    // More fields than Node's default limit of 128 per header block: browsers send each cookie alone.
    for (let i = 0; i < 200; i++) crumbs.push(['cookie', `c${i}=${i}`]);
    c.headers(1, [
      [':method', 'GET'],
      [':scheme', 'https'],
      [':authority', 'h2.test'],
      [':path', '/r/forwarded'],
      ['te', 'trailers'],
      ['x-request-id', 'from-client-1'],
      ...crumbs,
    ]);
    const r = await c.result(1);
    assert.equal(r.status, 200);
    const seen = JSON.parse(r.body) as { headers: Record<string, string> };
    assert.equal(seen.headers.cookie, crumbs.map(([, v]) => v).join('; '));
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    assert.equal(seen.headers['x-forwarded-host'], 'h2.test');
    assert.equal(seen.headers['x-request-id'], 'from-client-1');
    assert.equal(seen.headers.host, `127.0.0.1:${rec.port}`);
    assert.equal(seen.headers['transfer-encoding'], undefined);
    assert.ok(Object.keys(seen.headers).every((k) => !k.startsWith(':')));
    // §8.4: the server never pushes, even to a client that leaves push enabled (the default).
    assert.equal(
      c.frames.some((f) => f.type === PUSH_PROMISE),
      false,
    );
    c.close();
  });

  it('answers Expect: 100-continue only once the request is accepted (RFC 9110 §10.1.1)', async () => {
    const refused = await RawH2.open(h2c);
    refused.headers(
      1,
      request(
        '/small/x',
        [
          ['content-length', '20'],
          ['expect', '100-continue'],
        ],
        'POST',
      ),
      false,
    );
    assert.deepEqual((await refused.result(1)).statuses, [413]);
    refused.close();
    const c = await RawH2.open(h2c);
    c.headers(
      1,
      request(
        '/r/continue',
        [
          ['content-length', '5'],
          ['expect', '100-Continue'],
        ],
        'POST',
      ),
      false,
    );
    await c.until(() => (c.frames.some((f) => f.stream === 1 && f.type === HEADERS) ? true : undefined), '100');
    c.data(1, 'hello', true);
    const r = await c.result(1);
    assert.deepEqual(r.statuses, [100, 200]);
    assert.equal((JSON.parse(r.body) as { bytes: number }).bytes, 5);
    c.close();
  });

  it('aborts the upstream request when the client resets the stream (§8.1, §5.4.2)', async () => {
    const c = await RawH2.open(h2c);
    c.headers(1, request('/r/slow/cancel'));
    const seen = await rec.arrival('/r/slow/cancel');
    c.reset(1, CANCEL);
    assert.deepEqual(await seen.closed, { complete: true, responded: false });
    // Mid-upload: the upstream sees its request body cut short.
    c.headers(3, request('/r/slow/upload', [], 'POST'), false);
    c.data(3, 'abc');
    const upload = await rec.arrival('/r/slow/upload');
    await upload.firstData;
    c.reset(3, CANCEL);
    assert.deepEqual(await upload.closed, { complete: false, responded: false });
    c.close();
  });

  it('does not buffer a large response for a client that does not read; a reset then stops the upstream', async () => {
    rec.bigWritten = 0;
    const c = await RawH2.open(h2c);
    c.headers(1, request('/r/big'));
    const seen = await rec.arrival('/r/big');
    // Wait until the upstream is held back (its count stops moving), bounded.
    let last = -1;
    for (let i = 0; i < 100 && rec.bigWritten !== last; i++) {
      last = rec.bigWritten;
      await sleep(100);
    }
    const received = c.frames.filter((f) => f.type === DATA).reduce((n, f) => n + f.payload.length, 0);
    assert.ok(received <= 65_535, `the client's initial window bounds what it is sent (got ${received})`);
    assert.ok(
      rec.bigWritten < (BIG_CHUNK * BIG_CHUNKS) / 2,
      `Portico took ${rec.bigWritten} bytes of a 64 MiB response the client never read`,
    );
    c.reset(1, CANCEL);
    assert.equal((await seen.closed).responded, false);
    c.close();
  });

  it('streams a large request body upstream as it arrives, and holds a client back when the upstream does not read', async () => {
    const session = http2Connect(`http://127.0.0.1:${h2c}`);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/r/upload' }, { endStream: false });
      const hash = createHash('sha256');
      const chunk = Buffer.alloc(1 << 20, 0x62);
      hash.update(chunk);
      stream.write(chunk);
      // The upstream has the first bytes before the client sent the rest.
      await (await rec.arrival('/r/upload')).firstData;
      for (let i = 0; i < 15; i++) {
        hash.update(chunk);
        if (!stream.write(chunk)) await once(stream, 'drain');
      }
      stream.end();
      let text = '';
      stream.setEncoding('utf8');
      stream.on('data', (s: string) => {
        text += s;
      });
      await once(stream, 'end');
      const echoed = JSON.parse(text) as { bytes: number; sha: string; headers: Record<string, string> };
      assert.equal(echoed.bytes, 16 << 20);
      assert.equal(echoed.sha, hash.digest('hex'));

      // An upstream that reads nothing: flow control stops the client, Portico does not take it all.
      const sink = session.request({ ':method': 'POST', ':path': '/r/sink' }, { endStream: false });
      const big = Buffer.alloc(BIG_CHUNK);
      let accepted = 0;
      for (let i = 0; i < BIG_CHUNKS; i++) {
        accepted += big.length;
        if (sink.write(big)) continue;
        const drained = await Promise.race([once(sink, 'drain').then(() => true), sleep(1000).then(() => false)]);
        if (!drained) break;
      }
      assert.ok(accepted < (BIG_CHUNK * BIG_CHUNKS) / 2, `the client could hand over ${accepted} bytes`);
    } finally {
      // Node's client holds back a RST_STREAM behind data flow control blocks: drop the connection instead.
      session.destroy();
    }
  });

  it('refuses a body whose DATA disagrees with Content-Length, and the upstream sees it aborted (§8.1.1)', async () => {
    // Shorter: the stream is reset when it ends.
    const c = await RawH2.open(h2c);
    c.headers(1, request('/r/short', [['content-length', '10']], 'POST'), false);
    c.data(1, 'abc');
    const short = await rec.arrival('/r/short');
    c.data(1, 'de', true);
    assert.equal((await c.result(1)).rst, PROTOCOL_ERROR);
    assert.equal((await short.closed).complete, false);
    c.close();
    // Longer: nghttp2 ends the whole connection (GOAWAY), which is stricter than the stream error §8.1.1 asks.
    const d = await RawH2.open(h2c);
    d.headers(1, request('/r/long', [['content-length', '4']], 'POST'), false);
    d.data(1, 'abc');
    const long = await rec.arrival('/r/long');
    d.data(1, 'de', true);
    await d.until(() => (d.goaways().length > 0 ? true : undefined), 'GOAWAY');
    assert.equal((await long.closed).complete, false);
    d.close();
  });

  it('after answering a request whose body is still coming, resets the stream with NO_ERROR (§8.1)', async () => {
    // The upstream fails mid-upload (its socket full, so the upload was paused): 502 while the client still
    // has most of its body to send. Without the reset its stream stays open for good (the upload held by
    // flow control) and the exchange never ends: no access-log line.
    const c = await RawH2.open(h2c);
    try {
      c.headers(1, request('/resets/upload', [['content-length', String(4 * 1024 * 1024)]], 'POST'), false);
      // Up to the connection's initial window (64 KiB), in frames of the default maximum size.
      for (let i = 0; i < 4; i++) c.data(1, Buffer.alloc(16 * 1024 - 1, 'u'));
      const r = await c.result(1);
      assert.equal(r.status, 502);
      await c.until(
        () => (c.frames.some((f) => f.stream === 1 && f.type === RST_STREAM) ? true : undefined),
        'RST_STREAM',
      );
      assert.equal((await c.result(1)).rst, 0);
    } finally {
      c.close();
    }
    await p.waitFor((l) => l.msg === 'request' && l.path === '/resets/upload' && l.status === 502);
  });

  it('passes response trailers on to h2 clients (§8.1)', async () => {
    const session = http2Connect(`http://127.0.0.1:${h2c}`);
    try {
      const stream = session.request({ ':path': '/r/trailers', te: 'trailers' });
      let body = '';
      stream.setEncoding('utf8');
      stream.on('data', (s: string) => {
        body += s;
      });
      const trailing = once(stream, 'trailers');
      await once(stream, 'end');
      const [trailers] = (await trailing) as [Record<string, string>];
      assert.equal(body, 'hello');
      assert.equal(trailers['x-checksum'], 'abc');
      assert.equal(trailers['grpc-status'], '0');
    } finally {
      session.close();
    }
  });

  // Waiting for trailers makes Node end a response with a frame of its own (an empty DATA frame when none came):
  // only a body of unannounced length (or a client sending TE: trailers) is answered that way (h2-exchange.ts).
  it('ends a response of announced length with its last DATA frame, one of unannounced length with its trailers', async () => {
    const c = await RawH2.open(h2c);
    c.headers(1, request('/r/sized'));
    const plain = await c.result(1);
    assert.equal(plain.body, 'sized');
    const mine = c.frames.filter((f) => f.stream === 1);
    assert.deepEqual(
      mine.map((f) => [f.type, f.flags & END_STREAM]),
      [[HEADERS, 0], ...mine.slice(1, -1).map(() => [DATA, 0]), [DATA, END_STREAM]],
      'HEADERS, then DATA, the last with END_STREAM',
    );
    assert.ok(mine.at(-1)!.payload.length > 0, 'END_STREAM comes with the body, not in a frame of its own');
    c.headers(3, request('/r/trailers'));
    const chunked = await c.result(3);
    assert.equal(chunked.body, 'hello');
    const last = c.frames.filter((f) => f.stream === 3).at(-1)!;
    assert.equal(last.type, HEADERS, 'a trailing HEADERS frame ends it');
    assert.ok(last.flags & END_STREAM);
    assert.ok(last.payload.length > 0, 'holding the trailer fields');
    c.close();
  });

  it('maps upstream failures to 502 / 504 problem+json without the backend address', async () => {
    for (const [path, status, code] of [
      ['/dead/x', 502, 'GW_UPSTREAM_CONNECT_FAILED'],
      ['/timeout/x', 504, 'GW_UPSTREAM_TIMEOUT'],
    ] as const) {
      const r = await exchange(h2c, request(path));
      assert.equal(r.status, status, path);
      assert.equal(codeOf(r.body), code, path);
      assert.ok(
        !r.body.includes('127.0.0.1') && !r.body.includes(String(deadPort)) && !r.body.includes(String(rec.port)),
      );
      assert.ok(!/Error|\bat\s/.test(r.body), r.body);
    }
  });
});

describe('conformance: HTTP/2 GOAWAY on reload and shutdown (RFC 9113 §6.8)', () => {
  let rec: Recorder;

  before(async () => {
    rec = await startRecorder();
  });

  after(() => {
    rec?.server.closeAllConnections();
    rec?.server.close();
  });

  /**
   * Drives one session through a graceful GOAWAY: the stream in flight is served to its end, a stream the
   * client opened after the GOAWAY is not processed (its id is past the GOAWAY's last stream, so the client
   * knows it may retry it), then the connection closes.
   */
  async function drains(c: RawH2, trigger: () => void): Promise<void> {
    c.headers(1, request('/r/hold'));
    await rec.arrival('/r/hold');
    trigger();
    const goaway = await c.until(() => c.goaways()[0], 'GOAWAY');
    assert.deepEqual(goaway, { lastStream: 1, code: 0 });
    c.headers(3, request('/r/late'));
    rec.release();
    await c.until(() => (c.closed ? true : undefined), 'the connection to close');
    const held = await c.result(1);
    assert.equal(held.status, 200);
    assert.equal(held.body, 'released');
    assert.equal(
      c.frames.some((f) => f.stream === 3),
      false,
    );
    assert.deepEqual(
      rec.seen.map((s) => s.url),
      ['/r/hold'],
    );
    rec.seen.length = 0;
  }

  it('drains open sessions when a reload moves the listener, and on SIGTERM', async () => {
    const config = (address: string): string => `
listeners:
  - { name: h2c, protocol: http, address: ${address}, h2c: true }
upstreams:
  - { name: rec, targets: [ { url: http://127.0.0.1:${rec.port} } ] }
routes:
  - { name: rec, match: { path: /r/* }, upstream: rec }
`;
    const p = await startPortico(config('127.0.0.1:0'));
    try {
      const moved = await RawH2.open(p.port('h2c'));
      const next = await freePort();
      let reloaded: Promise<unknown> = Promise.resolve();
      await drains(moved, () => {
        reloaded = p.reload(config(`127.0.0.1:${next}`));
      });
      assert.equal(((await reloaded) as { msg: string }).msg, 'reloaded');
      const stopping = await RawH2.open(p.port('h2c'));
      await drains(stopping, () => p.child.kill('SIGTERM'));
      assert.equal(await p.exited(), 0);
      // Access-log lines of HTTP/2 exchanges are JSON like any other.
      assert.deepEqual(
        p.lines.filter((l) => l.msg === 'raw'),
        [],
      );
      const held = p.accessLog().filter((l) => l.path === '/r/hold');
      assert.deepEqual(
        held.map((l) => [l.status, l.aborted]),
        [
          [200, undefined],
          [200, undefined],
        ],
      );
    } finally {
      await p.stop();
    }
  });
});
