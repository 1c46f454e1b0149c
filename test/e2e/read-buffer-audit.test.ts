/**
 * End to end, adversarial: plain upstream connections read into one reusable buffer and hand Content-Length
 * bodies on as views of it (src/proxy/http1/read-buffer.ts, forwarder.ts onDataView). Each case looks for a
 * way a client could get wrong bytes (another response's, or bytes a later read overwrote), hang, or crash
 * Portico: pipelined clients, interim heads and framing edge cases in the same read as a body, bodies that
 * end on a read boundary, upstreams that close mid-body, clients that leave mid-body, retries, held bodies
 * for policies, HTTP/2 readers, back-pressure on a fast upstream, and a reload mid-stream. Every upstream
 * has one connection per target, so every response goes through the buffer the previous one used.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { type IncomingMessage, request } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { bodyOf, sha, writeInPieces } from '../helpers/bodies.ts';
import { startUpstream, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { type RawResponse, Session } from '../helpers/raw-session.ts';
import { type RawUpstream, startAnsweringUpstream, startRawUpstream } from '../helpers/raw-upstream.ts';
import { certDir, makeCert } from '../helpers/tls-certs.ts';

function head(status: number, length: number, extra = ''): string {
  return `HTTP/1.1 ${status} X\r\ncontent-length: ${length}\r\n${extra}\r\n`;
}

interface Got {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
}

/** One request on a fresh connection (or `agent`); rejects on an error or after `ms`. */
function get(url: string, opts: { method?: string; headers?: Record<string, string>; ms?: number } = {}): Promise<Got> {
  const ms = opts.ms ?? 8000;
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.setTimeout(ms, () => req.destroy(new Error(`no answer within ${ms}ms: ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

/** The origin: /body/SIZE/SEED written in pieces of varied sizes; /json/N a JSON array of N records. */
function originHandler(req: IncomingMessage, res: import('node:http').ServerResponse): void {
  const [, kind, size, seed] = (req.url ?? '').split('/');
  if (kind === 'json') {
    const json = Buffer.from(JSON.stringify(jsonRecords(Number(size))));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': json.length });
    res.end(json);
    return;
  }
  const body = bodyOf(Number(size), Number(seed));
  res.writeHead(200, { 'content-length': String(body.length), 'content-type': 'application/octet-stream' });
  writeInPieces(res, body, Number(seed));
}

function jsonRecords(n: number): Array<{ id: number; secret: string; text: string }> {
  return Array.from({ length: n }, (_, i) => ({ id: i, secret: `s${i}`, text: bodyOf(40, i).toString('latin1') }));
}

/**
 * The raw upstream's answers, exact bytes in one write each: interim heads, bodiless statuses with bytes
 * after them, bodies that end on a 64 KiB read boundary or carry bytes past their length.
 */
function rawAnswer(path: string): Buffer | string | undefined {
  const [, kind, a, b] = path.split('/');
  const size = Number(a);
  const seed = Number(b);
  switch (kind) {
    case 'body':
      return Buffer.concat([Buffer.from(head(200, size)), bodyOf(size, seed)]);
    case 'interim':
      // 103 and 100, then the final head and its body, all in one write.
      return Buffer.concat([
        Buffer.from('HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n'),
        Buffer.from(head(200, size)),
        bodyOf(size, seed),
      ]);
    case 'head':
      // Answered with the body even to a HEAD.
      return Buffer.concat([Buffer.from(head(200, size)), bodyOf(size, seed)]);
    case 'nocontent':
      return `HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\nEVIL!`;
    case 'notmodified':
      return `HTTP/1.1 304 Not Modified\r\ncontent-length: ${size}\r\netag: "x"\r\n\r\n${'E'.repeat(size)}`;
    case 'empty':
      return `${head(200, 0)}HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nEVIL!`;
    case 'boundary': {
      // Head and body are exactly `size` bytes (65536: one whole read), padded by a header.
      const length = size - 100;
      const pad = 100 - head(200, length, 'x-pad: \r\n').length;
      const exact = head(200, length, `x-pad: ${'p'.repeat(pad)}\r\n`);
      assert.equal(exact.length + length, size);
      return Buffer.concat([Buffer.from(exact), bodyOf(length, seed)]);
    }
    case 'extra':
      // The body, then a whole second response nobody asked for, in the same write.
      return Buffer.concat([Buffer.from(head(200, size)), bodyOf(size, seed), Buffer.from(`${head(200, 5)}EVIL!`)]);
    case 'unavailable':
      return Buffer.concat([Buffer.from(head(503, size)), bodyOf(size, seed)]);
    default:
      return `${head(404, 0)}`;
  }
}

describe('read buffer audit: views of the upstream read buffer under adversarial conditions', () => {
  let origin: TestServer;
  let raw: RawUpstream;
  /** Answers 503 with a body (in the same write as the head), so the retry's bytes follow in the same buffer. */
  let bad: RawUpstream;
  /** Head and half a body, then a close; or a fast endless-ish body for back-pressure. */
  let cutter: RawUpstream;
  /** Writes each response (sometimes after a 103) in pieces of random sizes at random short intervals. */
  let chopper: RawUpstream;
  let p: PorticoProcess;
  const cert = makeCert(certDir(), ['DNS:localhost', 'IP:127.0.0.1']);
  /** Bytes of the 'fast' body the kernel took from the upstream so far. */
  let fastWritten: () => number = () => 0;
  /** Bytes of the 'small' body written so far. */
  let smallSent = 0;

  const config = (extraRoute = ''): string => `
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:0, h2c: true }
  - { name: secure, protocol: https, address: 127.0.0.1:0, tls: { certificates: [ { cert: ${cert.cert}, key: ${cert.key} } ] } }
policies:
  held: { type: transform, response: { body: { drop: [secret] } } }
  headers-only: { type: transform, response: { headers: { set: { x-shaped: yes } } } }
upstreams:
  - { name: origin, targets: [ { url: ${origin.url} } ], maxConnectionsPerTarget: 1 }
  - { name: raw, targets: [ { url: ${raw.url} } ], maxConnectionsPerTarget: 1 }
  - { name: cutter, targets: [ { url: ${cutter.url} } ], maxConnectionsPerTarget: 1 }
  - { name: chopper, targets: [ { url: ${chopper.url} } ], maxConnectionsPerTarget: 2 }
  - name: flaky
    balance: round-robin
    targets: [ { url: ${bad.url} }, { url: ${raw.url} } ]
    maxConnectionsPerTarget: 1
    retries: { attempts: 2, on: [503] }
routes:${extraRoute}
  - { name: raw, match: { path: /raw/* }, rewrite: { stripPrefix: /raw }, upstream: raw }
  - { name: chop-held, match: { path: /chop/held/* }, rewrite: { stripPrefix: /chop/held }, policies: [held], upstream: chopper }
  - { name: chop-gz, match: { path: /chop/gz/* }, rewrite: { stripPrefix: /chop/gz }, compress: true, upstream: chopper }
  - name: chop-chunked
    match: { path: /chop/chunked/* }
    rewrite: { stripPrefix: /chop/chunked }
    headers: { response: { remove: [content-length] } }
    upstream: chopper
  - { name: chop, match: { path: /chop/* }, rewrite: { stripPrefix: /chop }, upstream: chopper }
  - { name: flaky, match: { path: /flaky/* }, rewrite: { stripPrefix: /flaky }, upstream: flaky }
  - { name: cutter, match: { path: /cut/* }, upstream: cutter }
  - { name: held, match: { path: /held/* }, rewrite: { stripPrefix: /held }, policies: [held], upstream: origin }
  - { name: shaped, match: { path: /shaped/* }, rewrite: { stripPrefix: /shaped }, policies: [headers-only], upstream: origin }
  - { name: gz, match: { path: /gz/* }, rewrite: { stripPrefix: /gz }, compress: true, upstream: origin }
  - { name: plain, match: { path: /* }, upstream: origin }
`;

  before(async () => {
    origin = await startUpstream(originHandler);
    raw = await startAnsweringUpstream((req) => rawAnswer(req.path));
    bad = await startAnsweringUpstream((req) => rawAnswer(`/unavailable/${req.path.split('/')[2] ?? 10}/1`));
    cutter = await startRawUpstream((conn) => {
      let seen = '';
      conn.socket.on('data', (c: Buffer) => {
        seen += c.toString('latin1');
        if (!seen.includes('\r\n\r\n')) return;
        const path = seen.split(' ')[1]!;
        seen = '';
        const [, , kind, a, b] = path.split('/');
        const size = Number(a);
        const body = bodyOf(size, Number(b));
        if (kind === 'small') {
          // The body in 32-byte writes, each sent at once (no Nagle), so Portico reads it in small pieces.
          conn.socket.setNoDelay(true);
          conn.socket.write(head(200, size));
          let at = 0;
          const pump = (): void => {
            if (conn.socket.destroyed || at >= size) return;
            const more = conn.socket.write(body.subarray(at, at + 32));
            at += 32;
            smallSent = at;
            if (more) setImmediate(pump);
            else conn.socket.once('drain', pump);
          };
          pump();
          return;
        }
        if (kind === 'half') {
          conn.socket.write(head(200, size));
          conn.socket.end(body.subarray(0, size >> 1));
          return;
        }
        // 'fast': the body as fast as the socket takes it, in pieces; what the kernel took is counted.
        let sent = 0;
        fastWritten = () => sent;
        conn.socket.write(head(200, size));
        let at = 0;
        const pump = (): void => {
          while (at < size) {
            const piece = body.subarray(at, at + 262_144);
            at += piece.length;
            const more = conn.socket.write(piece, () => {
              sent += piece.length;
            });
            if (!more) {
              conn.socket.once('drain', pump);
              return;
            }
          }
        };
        pump();
      });
    });
    let random = 12345;
    const next = (n: number): number => {
      random = (random * 1103515245 + 12345) >>> 0;
      return (random >>> 16) % n;
    };
    chopper = await startAnsweringUpstream((req, conn) => {
      const [, , a, b] = req.path.split('/');
      const size = Number(a);
      const bytes = Buffer.concat([
        Buffer.from(next(4) === 0 ? 'HTTP/1.1 103 Early Hints\r\nlink: </x>; rel=preload\r\n\r\n' : ''),
        Buffer.from(head(200, size, `x-seed: ${b}\r\n`)),
        bodyOf(size, Number(b)),
      ]);
      let at = 0;
      const piece = (): void => {
        if (conn.socket.destroyed) return;
        const n = [1, 7, 100, 1500, 16_384, 40_000, 65_536, 100_000][next(8)]! + next(64);
        conn.socket.write(bytes.subarray(at, at + n));
        at += n;
        if (at >= bytes.length) return;
        if (next(3) === 0) setImmediate(piece);
        else if (next(2) === 0) setTimeout(piece, next(3));
        else piece();
      };
      piece();
      return undefined;
    });
    // On SIGUSR2, Portico collects garbage and reports what its buffers hold (arrayBuffers) on stderr.
    const dir = await mkdtemp(join(tmpdir(), 'portico-audit-'));
    const preload = join(dir, 'memory.mjs');
    await writeFile(
      preload,
      "process.on('SIGUSR2', () => { gc(); process.stderr.write('MEM ' + process.memoryUsage().arrayBuffers + '\\n'); });\n",
    );
    p = await startPortico(config(), { env: { NODE_OPTIONS: `--expose-gc --import ${preload}` } });
  });

  after(async () => {
    await p?.stop();
    await Promise.all([origin?.close(), raw?.close(), bad?.close(), cutter?.close(), chopper?.close()]);
  });

  it('pipelined requests on one client connection each get their own bytes, in order', async () => {
    const session = await Session.open(p.port());
    const { socket } = session;
    const asks = [
      ['GET', '/body/70000/1'],
      ['GET', '/raw/body/3000/2'],
      ['HEAD', '/body/5000/3'],
      ['GET', '/body/1/4'],
      ['GET', '/raw/interim/20000/5'],
      ['GET', '/body/250000/6'],
      ['GET', '/raw/boundary/65536/7'],
      ['GET', '/body/16384/8'],
    ] as const;
    socket.write(asks.map(([m, path]) => `${m} ${path} HTTP/1.1\r\nhost: t\r\n\r\n`).join(''));
    for (const [method, path] of asks) {
      const res = await session.read(method);
      assert.equal(res.status, 200, `${method} ${path}: ${res.head}`);
      if (method === 'HEAD') continue;
      const parts = path.split('/');
      const seed = Number(parts.at(-1));
      const size = parts.includes('boundary') ? Number(parts.at(-2)) - 100 : Number(parts.at(-2));
      assert.equal(sha(res.bytes), sha(bodyOf(size, seed)), `${path}`);
    }
    socket.destroy();
  });

  it('interim heads, bodiless statuses, empty bodies, read-boundary bodies and extra bytes in the same read', async () => {
    const session = await Session.open(p.port());
    const { socket } = session;
    const ask = async (method: string, path: string): Promise<RawResponse> => {
      socket.write(`${method} ${path} HTTP/1.1\r\nhost: t\r\n\r\n`);
      return session.read(method);
    };
    // Each odd case, then an ordinary body on the same upstream connection (or its replacement): no byte of
    // the odd response may show in it.
    const cases: Array<[string, string, number]> = [
      ['GET', '/raw/interim/30000/11', 200],
      ['GET', '/raw/interim/70000/12', 200],
      ['HEAD', '/raw/head/9000/13', 200],
      ['GET', '/raw/nocontent', 204],
      ['GET', '/raw/notmodified/40', 304],
      ['GET', '/raw/empty', 200],
      ['GET', '/raw/boundary/65536/14', 200],
      ['GET', '/raw/boundary/65537/15', 200],
      ['GET', '/raw/boundary/131072/16', 200],
      ['GET', '/raw/extra/1000/17', 200],
      ['GET', '/raw/extra/100000/18', 200],
    ];
    for (const [i, [method, path, status]] of cases.entries()) {
      const res = await ask(method, path);
      assert.equal(res.status, status, `${path}: ${res.head}`);
      const parts = path.split('/');
      if (status === 200 && method === 'GET' && parts[2] !== 'empty') {
        const size = Number(parts[3]) - (parts[2] === 'boundary' ? 100 : 0);
        assert.equal(sha(res.bytes), sha(bodyOf(size, Number(parts[4]))), path);
      } else assert.equal(res.bytes.length, 0, `${path}: ${res.body.slice(0, 50)}`);
      if (path.includes('interim')) assert.deepEqual(res.interim, [103], path);
      const next = await ask('GET', `/raw/body/${2000 + i * 7000}/${100 + i}`);
      assert.equal(next.status, 200, `after ${path}: ${next.head}`);
      assert.equal(sha(next.bytes), sha(bodyOf(2000 + i * 7000, 100 + i)), `after ${path}`);
    }
    socket.destroy();
  });

  it('an upstream that closes mid-body: the client sees a cut-off response (never other bytes), then all is well', async () => {
    for (let i = 0; i < 3; i++) {
      const size = 200_000 + i;
      const got = await get(`${p.url()}/cut/half/${size}/${i}`).then(
        (r) => r,
        (err: Error) => err,
      );
      if (!(got instanceof Error)) {
        assert.ok(got.body.length < size, 'a cut-off body must not look complete');
        assert.ok(
          got.body.equals(bodyOf(size, i).subarray(0, got.body.length)),
          'the bytes that came are the upstream’s',
        );
      }
      const ok = await get(`${p.url()}/raw/body/90000/${30 + i}`);
      assert.equal(sha(ok.body), sha(bodyOf(90_000, 30 + i)));
    }
  });

  it('clients that leave mid-body while their bytes wait in Node do not disturb the next clients', async () => {
    for (let i = 0; i < 4; i++) {
      const { socket } = await Session.open(p.port());
      socket.write(`GET /body/${8 * 1024 * 1024}/${40 + i} HTTP/1.1\r\nhost: t\r\n\r\n`);
      // The client reads nothing, so Portico's writes wait in Node, then it leaves (a reset on some rounds).
      socket.pause();
      await sleep(40);
      if (i % 2 === 0) socket.resetAndDestroy();
      else socket.destroy();
      const results = await Promise.all(
        [1, 40_000, 70_000].map((size, j) => get(`${p.url()}/body/${size}/${50 + i * 3 + j}`)),
      );
      for (const [j, res] of results.entries()) {
        assert.equal(sha(res.body), sha(bodyOf([1, 40_000, 70_000][j]!, 50 + i * 3 + j)), `round ${i}, client ${j}`);
      }
    }
  });

  it('a 503 whose body came with its head is retried on another target, and the client gets only that answer', async () => {
    for (let i = 0; i < 6; i++) {
      const res = await get(`${p.url()}/flaky/body/${[500, 30_000, 70_000][i % 3]}/${60 + i}`);
      assert.equal(res.status, 200);
      assert.equal(sha(res.body), sha(bodyOf([500, 30_000, 70_000][i % 3]!, 60 + i)), `try ${i}`);
    }
    assert.ok(bad.connections.length > 0, 'the failing target was tried');
  });

  it('bodies held for policies, shaped heads and compression get the upstream bytes, beside plain clients', async () => {
    const sizes = [1, 3000, 16_383, 16_384, 65_536, 200_000];
    const all = await Promise.all([
      ...sizes.map((size, i) =>
        get(`${p.url()}/held/body/${size}/${200 + i}`).then((r) => ({ r, size, seed: 200 + i })),
      ),
      ...sizes.map((size, i) =>
        get(`${p.url()}/shaped/body/${size}/${300 + i}`).then((r) => ({ r, size, seed: 300 + i })),
      ),
      ...sizes.map((size, i) =>
        get(`${p.url()}/gz/body/${size}/${400 + i}`, { headers: { 'accept-encoding': 'gzip' } }).then((r) => ({
          r: { ...r, body: r.headers['content-encoding'] === 'gzip' ? gunzipSync(r.body) : r.body },
          size,
          seed: 400 + i,
        })),
      ),
      ...sizes.map((size, i) => get(`${p.url()}/body/${size}/${500 + i}`).then((r) => ({ r, size, seed: 500 + i }))),
    ]);
    for (const { r, size, seed } of all) {
      assert.equal(r.status, 200);
      assert.equal(sha(r.body), sha(bodyOf(size, seed)), `size ${size}, seed ${seed}`);
    }
    // A JSON body the policy rewrites: what it read must be exactly what the upstream sent.
    for (const n of [10, 3000]) {
      const res = await get(`${p.url()}/held/json/${n}`);
      assert.equal(res.status, 200);
      const want = jsonRecords(n).map(({ id, text }) => ({ id, text }));
      assert.deepEqual(JSON.parse(res.body.toString()), want);
    }
  });

  it('a slow HTTP/2 reader and fast HTTP/1 clients share one upstream connection and each get their own bytes', async () => {
    const session = h2connect(p.url());
    try {
      const size = 3 * 1024 * 1024;
      const slow = new Promise<Buffer>((resolve, reject) => {
        const stream = session.request({ ':path': `/body/${size}/600` });
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => {
          chunks.push(c);
          stream.pause();
          setTimeout(() => stream.resume(), chunks.length % 40 === 1 ? 30 : 0);
        });
        stream.on('end', () => resolve(Buffer.concat(chunks)));
        stream.on('error', reject);
        stream.end();
      });
      await sleep(30);
      const fast = await Promise.all([1, 16_384, 40_000, 70_000].map((s, i) => get(`${p.url()}/body/${s}/${610 + i}`)));
      for (const [i, res] of fast.entries()) {
        assert.equal(sha(res.body), sha(bodyOf([1, 16_384, 40_000, 70_000][i]!, 610 + i)), `fast ${i}`);
      }
      assert.equal(sha(await slow), sha(bodyOf(size, 600)));
    } finally {
      session.close();
    }
  });

  it('mixed clients against an upstream that writes in random pieces: each gets its own bytes or a cut-off', async () => {
    const sizes = [0, 1, 700, 16_383, 16_384, 30_000, 65_536, 65_537, 150_000, 400_000];
    let seed = 1000;
    const session = h2connect(p.url());
    const h2get = (path: string): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        const stream = session.request({ ':path': path });
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => {
          chunks.push(c);
          if (chunks.length % 3 === 0) {
            stream.pause();
            setTimeout(() => stream.resume(), 2);
          }
        });
        stream.on('end', () => resolve(Buffer.concat(chunks)));
        stream.on('error', reject);
        stream.end();
      });
    /** One client of kind `kind % 6`; resolves with nothing, or rejects with what went wrong. */
    const client = async (kind: number): Promise<void> => {
      const size = sizes[seed % sizes.length]!;
      const s = seed++;
      const want = sha(bodyOf(size, s));
      switch (kind % 7) {
        case 0:
        case 1: {
          const r = await get(`${p.url()}/chop/x/${size}/${s}`);
          assert.equal(sha(r.body), want, `plain ${size}/${s}`);
          return;
        }
        case 2: {
          // A slow reader on a raw socket, with its own pauses.
          const session = await Session.open(p.port());
          const { socket } = session;
          socket.write(`GET /chop/x/${size}/${s} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n`);
          socket.pause();
          setTimeout(() => socket.resume(), 30);
          const r = await session.read('GET', 8000);
          assert.equal(sha(r.bytes), want, `slow ${size}/${s}`);
          socket.destroy();
          return;
        }
        case 3: {
          // Leaves after the head or a few bytes.
          const { socket } = await Session.open(p.port());
          socket.write(`GET /chop/x/${size}/${s} HTTP/1.1\r\nhost: t\r\n\r\n`);
          await new Promise<void>((resolve) => {
            socket.once('data', () => resolve());
            socket.once('close', () => resolve());
          });
          socket.destroy();
          return;
        }
        case 4: {
          assert.equal(sha(await h2get(`/chop/x/${size}/${s}`)), want, `h2 ${size}/${s}`);
          return;
        }
        case 5: {
          const which = s % 3;
          const path = ['/chop/held', '/chop/gz', '/chop/chunked'][which]!;
          const r = await get(`${p.url()}${path}/x/${size}/${s}`, { headers: { 'accept-encoding': 'gzip' } });
          const body = r.headers['content-encoding'] === 'gzip' ? gunzipSync(r.body) : r.body;
          assert.equal(sha(body), want, `${path} ${size}/${s}`);
          return;
        }
        default: {
          const r = await get(`${p.url()}/chop/x/${size}/${s}`, { method: 'HEAD' });
          assert.equal(r.status, 200);
          assert.equal(r.body.length, 0);
          return;
        }
      }
    };
    try {
      const deadline = performance.now() + 2500;
      const workers = Array.from({ length: 10 }, async (_, w) => {
        for (let i = 0; performance.now() < deadline && i < 200; i++) await client(w + i);
      });
      await Promise.all(workers);
    } finally {
      session.close();
    }
  });

  it('HTTPS clients (TLS writes finish later) and HTTP/2 over TLS: slow and fast readers get their own bytes', async () => {
    const base = `https://127.0.0.1:${p.port('secure')}`;
    const tlsGet = (path: string, slow: boolean): Promise<Buffer> =>
      new Promise((resolve, reject) => {
        const req = httpsRequest(`${base}${path}`, { rejectUnauthorized: false, agent: false }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => {
            chunks.push(c);
            if (!slow) return;
            res.pause();
            setTimeout(() => res.resume(), chunks.length % 20 === 1 ? 20 : 0);
          });
          res.on('end', () => resolve(Buffer.concat(chunks)));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
    const sizes = [1, 700, 16_384, 70_000, 2_000_000];
    const got = await Promise.all([
      ...sizes.map((size, i) => tlsGet(`/body/${size}/${950 + i}`, true)),
      ...sizes.map((size, i) => tlsGet(`/chop/x/${size}/${960 + i}`, i % 2 === 0)),
    ]);
    for (const [i, body] of got.entries()) {
      const size = sizes[i % sizes.length]!;
      assert.equal(sha(body), sha(bodyOf(size, (i < sizes.length ? 950 : 955) + i)), `client ${i}: ${size}`);
    }
    const session = h2connect(base, { rejectUnauthorized: false });
    try {
      const streams = sizes.map(
        (size, i) =>
          new Promise<void>((resolve, reject) => {
            const stream = session.request({ ':path': `/chop/x/${size}/${970 + i}` });
            const chunks: Buffer[] = [];
            stream.on('data', (c: Buffer) => chunks.push(c));
            stream.on('end', () => {
              if (sha(Buffer.concat(chunks)) === sha(bodyOf(size, 970 + i))) resolve();
              else reject(new Error(`h2 stream ${i}: size ${size}`));
            });
            stream.on('error', reject);
            stream.end();
          }),
      );
      await Promise.all(streams);
    } finally {
      session.close();
    }
  });

  it('a fast upstream and a client that stops reading: Portico stops reading the upstream, then relays every byte', async () => {
    const size = 48 * 1024 * 1024;
    const session = await Session.open(p.port());
    const { socket } = session;
    socket.pause();
    socket.write(`GET /cut/fast/${size}/700 HTTP/1.1\r\nhost: t\r\n\r\n`);
    await sleep(600);
    const taken = fastWritten();
    // Kernel buffers on both sides and Node's high-water marks hold a few MiB; without back-pressure Portico
    // would have taken (and kept in memory) all of it.
    assert.ok(taken < 24 * 1024 * 1024, `Portico read ${taken} bytes of a body its client did not read`);
    socket.resume();
    const res = await session.read('GET', 15_000);
    assert.equal(res.body.length, size);
    assert.equal(sha(res.bytes), sha(bodyOf(size, 700)));
    socket.destroy();
  });

  it('a client that stops reading behind an upstream sending small pieces: Portico holds its bytes, not a buffer per read', async () => {
    const memory = async (): Promise<number> => {
      const seen = p.stderr.length;
      p.child.kill('SIGUSR2');
      for (let i = 0; i < 100 && !/MEM \d+\n/.test(p.stderr.slice(seen)); i++) await sleep(10);
      return Number(/MEM (\d+)\n/.exec(p.stderr.slice(seen))?.[1]);
    };
    const before = await memory();
    const { socket } = await Session.open(p.port());
    socket.pause();
    socket.write(`GET /cut/small/${64 * 1024 * 1024}/900 HTTP/1.1\r\nhost: t\r\n\r\n`);
    // Until the upstream stalls: the kernel buffers on the way are full and Portico holds what waits in Node.
    let last = -1;
    for (let i = 0; i < 40 && smallSent !== last; i++) {
      last = smallSent;
      await sleep(150);
    }
    const held = (await memory()) - before;
    socket.destroy();
    // About the client's high-water mark (64 KiB) of bytes; a 64 KiB buffer per read held hundreds of MiB.
    assert.ok(held < 4 * 1024 * 1024, `Portico holds ${held} bytes of buffers for one stalled client`);
  });

  it('a reload while a response streams to a slow client leaves every byte in place', async () => {
    const size = 6 * 1024 * 1024;
    const session = await Session.open(p.port());
    const { socket } = session;
    socket.write(`GET /body/${size}/800 HTTP/1.1\r\nhost: t\r\n\r\n`);
    socket.pause();
    await sleep(100);
    const reloaded = p.reload(config('\n  - { name: extra, match: { path: /extra/* }, upstream: origin }'));
    socket.resume();
    const line = await reloaded;
    assert.equal(line.msg, 'reloaded');
    const res = await session.read('GET', 15_000);
    assert.equal(sha(res.bytes), sha(bodyOf(size, 800)));
    // The new generation shares the upstream connection pool: its buffer serves the next clients.
    for (const s of [100, 70_000]) {
      const r = await get(`${p.url()}/body/${s}/${810 + s}`);
      assert.equal(sha(r.body), sha(bodyOf(s, 810 + s)));
    }
    socket.destroy();
  });
});
