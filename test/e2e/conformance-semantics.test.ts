/**
 * End to end, against RFC 9110 (HTTP Semantics) where the earlier audits did not look: on-the-fly compression
 * (§8.4, §12.5.3, RFC 9111 §5.2.2.6), the responses Portico makes itself (§6.6.1, §8.6, §10.2, §15), message
 * forwarding (§7.6, §7.7) and conditional / range requests passing through (§13, §14). Real node:http
 * upstreams and the real portico process; every compressed body is decoded here.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync, gunzipSync, gzipSync, zstdDecompressSync } from 'node:zlib';
import { rawUntilClose, statusOf } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { freePort } from '../helpers/ports.ts';

// --- client ---

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly rawHeaders: string[];
  readonly body: Buffer;
}

type HeaderInput = Record<string, string | string[]> | string[];

/** One request on a fresh connection with node:http (which never decodes a body). */
function call(
  base: string,
  path: string,
  options: { method?: string; headers?: HeaderInput; body?: string | Buffer } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, {
      method: options.method ?? 'GET',
      headers: options.headers as Record<string, string>,
      agent: false,
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks),
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The values of every field named `name` in a raw header list, in order. */
function fieldValues(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

function decode(encoding: string | string[] | undefined, body: Buffer): Buffer {
  switch (encoding) {
    case 'gzip':
      return gunzipSync(body);
    case 'br':
      return brotliDecompressSync(body);
    case 'zstd':
      return zstdDecompressSync(body);
    case undefined:
      return body;
    default:
      throw new Error(`unexpected content-encoding ${String(encoding)}`);
  }
}

// --- the origin ---

const TEXT = 'Portico compresses text on the fly; this sentence repeats. '.repeat(200);
const TEXT_ETAG = '"t1"';
const LAST_MODIFIED = 'Tue, 01 Jul 2025 10:00:00 GMT';
const MiB = 1024 * 1024;
const BIG = 160 * MiB;

interface Seen {
  method: string;
  url: string;
  rawHeaders: string[];
  headers: IncomingMessage['headers'];
  body: string;
}

/** Splits `a, b` lists of entity tags, ignoring the weak prefix (weak comparison, RFC 9110 §8.8.3.2). */
function tagsMatchWeak(list: string, etag: string): boolean {
  if (list.trim() === '*') return true;
  const bare = etag.replace(/^W\//, '');
  return list.split(',').some((t) => t.trim().replace(/^W\//, '') === bare);
}

/** Strong comparison: both tags strong and equal. */
function tagsMatchStrong(list: string, etag: string): boolean {
  if (list.trim() === '*') return true;
  return !etag.startsWith('W/') && list.split(',').some((t) => t.trim() === etag);
}

/** A small, correct origin for conditional and range requests on one representation (RFC 9110 §13.2.2). */
function serveConditional(req: IncomingMessage, res: ServerResponse, body: Buffer, etag: string): void {
  const h = req.headers;
  const base = { etag, 'last-modified': LAST_MODIFIED, 'content-type': 'text/plain; charset=utf-8' };
  const lm = Date.parse(LAST_MODIFIED);
  if (h['if-match'] !== undefined ? !tagsMatchStrong(h['if-match'], etag) : false) {
    res.writeHead(412, { 'content-length': 0 });
    res.end();
    return;
  }
  if (h['if-match'] === undefined && h['if-unmodified-since'] !== undefined) {
    if (lm > Date.parse(h['if-unmodified-since'])) {
      res.writeHead(412, { 'content-length': 0 });
      res.end();
      return;
    }
  }
  const notModified =
    h['if-none-match'] !== undefined
      ? tagsMatchWeak(h['if-none-match'], etag)
      : h['if-modified-since'] !== undefined && lm <= Date.parse(h['if-modified-since']);
  if (notModified) {
    res.writeHead(304, { etag, 'last-modified': LAST_MODIFIED });
    res.end();
    return;
  }
  const range = h.range;
  const ifRange = h['if-range'];
  const rangeApplies = range !== undefined && (ifRange === undefined || ifRange === etag);
  if (rangeApplies) {
    const m = /^bytes=(\d+)-(\d*)$/.exec(range);
    if (m === null || Number(m[1]) >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}`, 'content-length': 0 });
      res.end();
      return;
    }
    const start = Number(m[1]);
    const end = m[2] === '' ? body.length - 1 : Math.min(Number(m[2]), body.length - 1);
    const part = body.subarray(start, end + 1);
    res.writeHead(206, {
      ...base,
      'content-range': `bytes ${start}-${end}/${body.length}`,
      'content-length': part.length,
    });
    res.end(part);
    return;
  }
  res.writeHead(200, { ...base, 'accept-ranges': 'bytes', 'content-length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}

interface Origin {
  readonly url: string;
  readonly seen: Seen[];
  close(): Promise<void>;
}

async function startOrigin(): Promise<Origin> {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const textBuffer = Buffer.from(TEXT);
  const gzipped = gzipSync(textBuffer);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method!, url: req.url!, rawHeaders: req.rawHeaders, headers: req.headers, body });
      const url = new URL(req.url!, 'http://origin');
      const q = url.searchParams;
      switch (url.pathname) {
        case '/text':
        case '/cond':
          serveConditional(req, res, textBuffer, TEXT_ETAG);
          return;
        case '/typed': {
          // Headers chosen by the test: ?cc=…&vary=…&type=…&len=0 (no Content-Length).
          const headers: Record<string, string> = { 'content-type': q.get('type') ?? 'text/html; charset=utf-8' };
          if (q.has('cc')) headers['cache-control'] = q.get('cc')!;
          if (q.has('vary')) headers.vary = q.get('vary')!;
          if (q.has('etag')) headers.etag = q.get('etag')!;
          if (q.get('len') !== '0') headers['content-length'] = String(textBuffer.length);
          res.writeHead(Number(q.get('status') ?? 200), headers);
          res.end(req.method === 'HEAD' ? undefined : textBuffer);
          return;
        }
        case '/pre-encoded':
          res.writeHead(200, {
            'content-type': 'text/plain',
            'content-encoding': 'gzip',
            'content-length': gzipped.length,
          });
          res.end(gzipped);
          return;
        case '/tiny':
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 5 });
          res.end('small');
          return;
        case '/nocontent':
          res.writeHead(204, { 'content-type': 'text/plain' });
          res.end();
          return;
        case '/stream': {
          // No Content-Length: chunked, written in pieces.
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          for (let i = 0; i < 20; i++) res.write(`data: event ${i}\n\n`);
          res.end();
          return;
        }
        case '/big': {
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BIG });
          const chunk = Buffer.from(TEXT.repeat(Math.ceil((64 * 1024) / TEXT.length)).slice(0, 64 * 1024));
          let sent = 0;
          Readable.from(
            (function* () {
              while (sent < BIG) {
                sent += chunk.length;
                yield chunk;
              }
            })(),
          ).pipe(res);
          return;
        }
        case '/cached':
          res.writeHead(200, {
            'content-type': 'text/plain',
            'cache-control': 'max-age=60',
            etag: '"c1"',
            'content-length': textBuffer.length,
          });
          res.end(req.method === 'HEAD' ? undefined : textBuffer);
          return;
        case '/fields':
          // Order and repetition as sent: two interleaved names, three cookies, hop-by-hop fields of all kinds.
          res.writeHead(200, [
            'Content-Type',
            'text/plain; charset=utf-8',
            'X-Multi',
            'one',
            'Set-Cookie',
            'a=1; Path=/',
            'X-Other',
            'first',
            'X-Multi',
            'two',
            'Set-Cookie',
            'b=2; Path=/; HttpOnly',
            'X-Other',
            'second',
            'Set-Cookie',
            'c=3, d=4; Path=/',
            'ETag',
            '"e-1"',
            'Cache-Control',
            'public, max-age=10, no-transform',
            'Connection',
            'x-hop-a',
            'Connection',
            'X-Hop-B, keep-alive',
            'X-Hop-A',
            'secret',
            'X-Hop-B',
            'secret',
            'Keep-Alive',
            'timeout=5',
            'Proxy-Authenticate',
            'Basic realm="proxy"',
            'Upgrade',
            'h2c',
            'Trailer',
            'X-Checksum',
          ]);
          res.end('ok');
          return;
        case '/hang':
          // Never answers: the route's response timeout fires.
          return;
        default: {
          const json = JSON.stringify({
            method: req.method,
            url: req.url,
            headers: req.headers,
            raw: req.rawHeaders,
            body,
          });
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
          res.end(json);
        }
      }
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close').catch(() => {});
    },
  };
}

interface Echoed {
  method: string;
  url: string;
  headers: Record<string, string>;
  raw: string[];
  body: string;
}

let origin: Origin;
let p: PorticoProcess;
let base: string;

before(async () => {
  origin = await startOrigin();
  const dead = await freePort();
  p = await startPortico(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:0 }
  - { name: web6, protocol: http, address: "[::1]:0" }
  - { name: plain, protocol: http, address: 127.0.0.1:0, redirectToHttps: { port: 8443, status: 301 } }
upstreams:
  - { name: origin, targets: [ { url: ${origin.url} } ] }
  - { name: impatient, targets: [ { url: ${origin.url} } ], timeouts: { response: 300ms }, retries: { attempts: 1 } }
  - { name: dead, targets: [ { url: http://127.0.0.1:${dead} } ], retries: { attempts: 1 } }
  - name: unchecked
    targets: [ { url: http://127.0.0.1:${dead} } ]
    health: { active: { path: /, interval: 1m } }
policies:
  tight: { type: rate-limit, limit: 1, per: 1h, key: client-ip }
routes:
  - { name: z, match: { path: /z/* }, rewrite: { stripPrefix: /z }, compress: true, upstream: origin }
  - name: zc
    match: { path: /zc/* }
    rewrite: { stripPrefix: /zc }
    compress: true
    cache: { ttl: 30s }
    upstream: origin
  - { name: keep, match: { path: /keep/* }, preserveHost: true, upstream: origin }
  - { name: small, match: { path: /small/* }, limits: { maxBodySize: 100 }, upstream: origin }
  - { name: limited, match: { path: /limited/* }, policies: [tight], upstream: origin }
  - { name: bad, match: { path: /bad/* }, upstream: dead }
  - { name: down, match: { path: /down/* }, upstream: unchecked }
  - { name: slow, match: { path: /slow/* }, rewrite: { stripPrefix: /slow }, upstream: impatient }
  - name: fixed
    match: { path: /fixed }
    respond: { status: 200, body: "héllo", contentType: "text/plain; charset=utf-8", headers: { X-Fixed: yes } }
  - { name: empty, match: { path: /empty }, respond: { status: 204 } }
  - { name: r301, match: { path: /r301/* }, redirect: { to: "https://new.example{path}{query}", status: 301 } }
  - { name: r302, match: { path: /r302/* }, redirect: { to: "/elsewhere{path}{query}", status: 302 } }
  - { name: r303, match: { path: /r303/* }, redirect: { to: "/done", status: 303 } }
  - { name: r307, match: { path: /r307/* }, redirect: { to: "https://new.example{path}{query}", status: 307 } }
  - { name: r308, match: { path: /r308/* }, redirect: { to: "https://new.example{path}{query}", status: 308 } }
  - { name: all, match: { path: /o/* }, rewrite: { stripPrefix: /o }, upstream: origin }
`);
  base = p.url();
});

after(async () => {
  await p?.stop();
  await origin?.close();
});

// --- 1. compression ---

describe('compression (RFC 9110 §8.4, §12.5.3)', () => {
  const cases: [string, string | undefined][] = [
    ['gzip', 'gzip'],
    ['GZIP', 'gzip'],
    ['x-gzip', 'gzip'],
    ['br', 'br'],
    ['Br', 'br'],
    ['zstd', 'zstd'],
    ['gzip, br, zstd', 'zstd'],
    ['gzip;q=1, br;q=0.9', 'gzip'],
    ['gzip;q=0.5, br;q=0.5', 'br'],
    ['br;q=0, gzip', 'gzip'],
    ['*', 'zstd'],
    ['*;q=0.1, zstd;q=0, br;q=0', 'gzip'],
    ['identity;q=0, gzip', 'gzip'],
    ['*;q=0, br', 'br'],
    ['identity', undefined],
    ['gzip;q=0.5, identity', undefined],
    ['gzip;q=0', undefined],
    ['deflate, compress', undefined],
    ['', undefined],
    ['identity;q=0', undefined],
    ['*;q=0', undefined],
    ['gzip;q=0, identity;q=0', undefined],
    ['gzip;q=0.0001', undefined],
    ['gzip;q=2', undefined],
    ['gzip ; q=0.5', 'gzip'],
  ];
  for (const [accept, expected] of cases) {
    it(`Accept-Encoding ${JSON.stringify(accept)} → ${expected ?? 'identity'}, decodable`, async () => {
      const res = await call(base, '/z/text', { headers: { 'accept-encoding': accept } });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-encoding'], expected);
      assert.equal(decode(res.headers['content-encoding'], res.body).toString(), TEXT);
      assert.match(String(res.headers.vary), /accept-encoding/i);
      if (expected === undefined) {
        assert.equal(res.headers['content-length'], String(Buffer.byteLength(TEXT)));
        assert.equal(res.headers.etag, TEXT_ETAG);
      } else {
        assert.equal(res.headers['content-length'], undefined, 'Content-Length of the identity body removed');
        assert.equal(res.headers.etag, `W/${TEXT_ETAG}`, 'a strong ETag is weakened (§8.8.3)');
      }
    });
  }

  it('no Accept-Encoding: identity, with Vary', async () => {
    const res = await call(base, '/z/text');
    assert.equal(res.headers['content-encoding'], undefined);
    assert.equal(res.body.toString(), TEXT);
    assert.match(String(res.headers.vary), /accept-encoding/i);
  });

  it('never compresses a response that has a Content-Encoding already', async () => {
    const res = await call(base, '/z/pre-encoded', { headers: { 'accept-encoding': 'br, gzip' } });
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(res.body).toString(), TEXT);
  });

  it('Cache-Control: no-transform is never transformed (RFC 9111 §5.2.2.6, RFC 9110 §7.7)', async () => {
    for (const cc of ['no-transform', 'public, No-Transform, max-age=5']) {
      const res = await call(base, `/z/typed?cc=${encodeURIComponent(cc)}`, { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(res.headers['content-encoding'], undefined, cc);
      assert.equal(res.body.toString(), TEXT);
      assert.equal(res.headers['content-length'], String(Buffer.byteLength(TEXT)));
    }
  });

  it('206 and 416 pass through uncompressed, bytes intact', async () => {
    const part = await call(base, '/z/text', { headers: { 'accept-encoding': 'gzip', range: 'bytes=10-19' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-encoding'], undefined);
    assert.equal(part.body.toString(), TEXT.slice(10, 20));
    assert.equal(part.headers['content-range'], `bytes 10-19/${Buffer.byteLength(TEXT)}`);
    assert.equal(part.headers.etag, TEXT_ETAG);
    const bad = await call(base, '/z/text', { headers: { 'accept-encoding': 'gzip', range: 'bytes=999999-' } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers['content-encoding'], undefined);
  });

  it('HEAD gets the header fields GET would (RFC 9110 §9.3.2): Content-Encoding, Vary, weak ETag, no body', async () => {
    const get = await call(base, '/z/text', { headers: { 'accept-encoding': 'br' } });
    const head = await call(base, '/z/text', { method: 'HEAD', headers: { 'accept-encoding': 'br' } });
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
    for (const name of ['content-encoding', 'vary', 'etag', 'content-type', 'content-length']) {
      assert.equal(head.headers[name], get.headers[name], name);
    }
    const plainHead = await call(base, '/z/text', { method: 'HEAD' });
    assert.equal(plainHead.headers['content-encoding'], undefined);
    assert.equal(plainHead.headers['content-length'], String(Buffer.byteLength(TEXT)));
  });

  it('204 and 304 carry no body and no Content-Encoding', async () => {
    const nc = await call(base, '/z/nocontent', { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(nc.status, 204);
    assert.equal(nc.headers['content-encoding'], undefined);
    assert.equal(nc.body.length, 0);
    const nm = await call(base, '/z/text', {
      headers: { 'accept-encoding': 'gzip', 'if-none-match': `W/${TEXT_ETAG}` },
    });
    assert.equal(nm.status, 304);
    assert.equal(nm.headers['content-encoding'], undefined);
    assert.equal(nm.body.length, 0);
    // §15.4.5: the 304 carries the Vary and ETag the 200 would have had.
    assert.match(String(nm.headers.vary), /accept-encoding/i);
    assert.equal(nm.headers.etag, `W/${TEXT_ETAG}`);
  });

  it('bodies under minSize are sent as they are', async () => {
    const res = await call(base, '/z/tiny', { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(res.headers['content-encoding'], undefined);
    assert.equal(res.body.toString(), 'small');
    assert.equal(res.headers['content-length'], '5');
  });

  it('types outside the list are sent as they are', async () => {
    const res = await call(base, `/z/typed?type=${encodeURIComponent('image/png')}`, {
      headers: { 'accept-encoding': 'gzip' },
    });
    assert.equal(res.headers['content-encoding'], undefined);
    assert.equal(res.headers.vary, undefined);
  });

  it('Vary: merged with the upstream one, never duplicated, `*` left alone', async () => {
    const cases: [string, string][] = [
      ['Accept-Language', 'Accept-Language, Accept-Encoding'],
      ['accept-encoding', 'accept-encoding'],
      ['Origin, Accept-Encoding', 'Origin, Accept-Encoding'],
      ['*', '*'],
    ];
    for (const [vary, expected] of cases) {
      for (const ae of ['gzip', 'identity']) {
        const res = await call(base, `/z/typed?vary=${encodeURIComponent(vary)}`, {
          headers: { 'accept-encoding': ae },
        });
        assert.deepEqual(fieldValues(res.rawHeaders, 'vary'), [expected], `${vary} / ${ae}`);
        assert.equal(decode(res.headers['content-encoding'], res.body).toString(), TEXT);
      }
    }
  });

  it('a weak ETag stays as it is', async () => {
    const res = await call(base, `/z/typed?etag=${encodeURIComponent('W/"w"')}`, {
      headers: { 'accept-encoding': 'gzip' },
    });
    assert.equal(res.headers['content-encoding'], 'gzip');
    assert.equal(res.headers.etag, 'W/"w"');
  });

  it('a stream of unknown length is compressed and flushed per chunk, decodable for every coding', async () => {
    const expected = Array.from({ length: 20 }, (_, i) => `data: event ${i}\n\n`).join('');
    for (const ae of ['gzip', 'br', 'zstd']) {
      const res = await call(base, '/z/stream', { headers: { 'accept-encoding': ae } });
      assert.equal(res.headers['content-encoding'], ae);
      assert.equal(decode(ae, res.body).toString(), expected);
    }
  });

  it('streams a large body through the compressor with flat memory', async () => {
    const status = async (field: string) =>
      Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(await readFile(`/proc/${p.child.pid}/status`, 'utf8'))![1]) /
      1024;
    const before = await status('VmRSS');
    const res = await new Promise<{ encoding: string | undefined; length: number; decoded: number }>(
      (resolve, reject) => {
        request(`${base}/z/big`, { headers: { 'accept-encoding': 'zstd' }, agent: false }, (r) => {
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => {
            const body = Buffer.concat(chunks);
            resolve({
              encoding: r.headers['content-encoding'],
              length: body.length,
              decoded: zstdDecompressSync(body).length,
            });
          });
        })
          .on('error', reject)
          .end();
      },
    );
    assert.equal(res.encoding, 'zstd');
    assert.equal(res.decoded, BIG);
    assert.ok(res.length < BIG / 10);
    const peak = await status('VmHWM');
    // Garbage chunks wait for a collection (about 55 MiB here, whatever the size): what must not happen is
    // growth with the body, which buffering in front of the compressor would cause.
    assert.ok(peak - before < BIG / MiB / 2, `peak ${peak.toFixed(0)} MiB, at start ${before.toFixed(0)} MiB`);
  });

  it('with the cache: one stored identity copy, each client gets only what it accepts', async () => {
    const first = await call(base, '/zc/cached', { headers: { 'accept-encoding': 'br' } });
    assert.equal(first.headers['content-encoding'], 'br');
    assert.equal(decode('br', first.body).toString(), TEXT);
    const plain = await call(base, '/zc/cached');
    assert.equal(plain.headers['x-cache'], 'HIT');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.body.toString(), TEXT);
    assert.equal(plain.headers.etag, '"c1"');
    assert.equal(plain.headers['content-length'], String(Buffer.byteLength(TEXT)));
    const gz = await call(base, '/zc/cached', { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(gz.headers['x-cache'], 'HIT');
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(gz.body).toString(), TEXT);
    assert.equal(gz.headers.etag, 'W/"c1"');
    assert.deepEqual(fieldValues(gz.rawHeaders, 'vary'), ['Accept-Encoding']);
    const head = await call(base, '/zc/cached', { method: 'HEAD', headers: { 'accept-encoding': 'gzip' } });
    assert.equal(head.headers['content-encoding'], 'gzip');
    assert.equal(head.body.length, 0);
    // The client holds the weak tag of the compressed copy: the cache answers 304 with that tag again.
    const nm = await call(base, '/zc/cached', { headers: { 'accept-encoding': 'gzip', 'if-none-match': 'W/"c1"' } });
    assert.equal(nm.status, 304);
    assert.equal(nm.headers.etag, 'W/"c1"');
    assert.match(String(nm.headers.vary), /accept-encoding/i);
    assert.equal(nm.headers['content-encoding'], undefined);
    const range = await call(base, '/zc/cached', { headers: { 'accept-encoding': 'gzip', range: 'bytes=0-6' } });
    assert.equal(range.status, 206);
    assert.equal(range.headers['content-encoding'], undefined);
    assert.equal(range.body.toString(), TEXT.slice(0, 7));
    assert.equal(origin.seen.filter((s) => s.url === '/cached').length, 1);
  });
});

// --- 2. local replies ---

/** Sends raw bytes and waits (bounded) for the server to close; `closed` false when it kept the connection. */
async function rawText(port: number, data: string, ms = 3000): Promise<{ text: string; closed: boolean }> {
  const { bytes, closed } = await rawUntilClose(port, data, ms);
  return { text: bytes.toString('latin1'), closed };
}

/** The fields every reply Portico makes itself must have (RFC 9110 §6.6.1, §8.6, §8.3). */
function assertWellFormed(res: Reply, method: string, label: string): void {
  assert.ok(res.headers.date !== undefined && !Number.isNaN(Date.parse(res.headers.date as string)), `${label}: Date`);
  if (res.status === 204 || res.status === 304) {
    assert.equal(res.headers['content-length'], undefined, `${label}: no Content-Length on ${res.status}`);
    assert.equal(res.body.length, 0);
    return;
  }
  assert.ok(res.headers['content-length'] !== undefined, `${label}: Content-Length`);
  if (method === 'HEAD') assert.equal(res.body.length, 0, `${label}: no body on HEAD`);
  else assert.equal(Number(res.headers['content-length']), res.body.length, `${label}: exact Content-Length`);
  if (res.body.length > 0) assert.ok(res.headers['content-type'] !== undefined, `${label}: Content-Type`);
}

describe('replies Portico makes itself (RFC 9110 §6.6.1, §8.6, §15)', () => {
  const errors: [string, string, number, Record<string, string>?][] = [
    ['no route', '/nothing/here', 404],
    ['upstream refuses connections', '/bad/x', 502],
    ['no healthy target', '/down/x', 503],
    ['upstream too slow', '/slow/hang', 504],
  ];
  for (const [label, path, status] of errors) {
    it(`${status} (${label}): problem+json, Date, exact length, no-store; HEAD has the same fields`, async () => {
      const get = await call(base, path);
      assert.equal(get.status, status);
      assertWellFormed(get, 'GET', label);
      assert.equal(get.headers['content-type'], 'application/problem+json');
      assert.equal(get.headers['cache-control'], 'no-store');
      assert.equal((JSON.parse(get.body.toString()) as { status: number }).status, status);
      const head = await call(base, path, { method: 'HEAD' });
      assert.equal(head.status, status);
      assertWellFormed(head, 'HEAD', `${label} (HEAD)`);
      for (const name of ['content-type', 'content-length', 'cache-control']) {
        assert.equal(head.headers[name], get.headers[name], `${label}: HEAD ${name}`);
      }
    });
  }

  it('429 carries Retry-After (RFC 6585 §4), and the rate-limit fields', async () => {
    const first = await call(base, '/limited/x');
    assert.equal(first.status, 200);
    const refused = await call(base, '/limited/x');
    assert.equal(refused.status, 429);
    assertWellFormed(refused, 'GET', '429');
    assert.match(String(refused.headers['retry-after']), /^\d+$/);
    assert.equal(refused.headers['cache-control'], 'no-store');
  });

  it('413 for a declared length over the limit: the body is not read, so the connection closes', async () => {
    const { text, closed } = await rawText(
      p.port(),
      `POST /small/x HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Length: 200\r\n\r\n`,
    );
    assert.equal(statusOf(text), 413);
    assert.match(text, /\r\nconnection: close\r\n/i);
    assert.match(text, /\r\ndate: /i);
    assert.ok(closed, 'connection closed after the 413');
  });

  it('413 for a chunked body that grows past the limit: closes too', async () => {
    const chunk = 'x'.repeat(150);
    const { text, closed } = await rawText(
      p.port(),
      `POST /small/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n`,
    );
    assert.equal(statusOf(text), 413);
    assert.match(text, /\r\nconnection: close\r\n/i);
    assert.ok(closed);
  });

  it('a fixed response: exact Content-Length of the UTF-8 body, its Content-Type and fields; HEAD without body', async () => {
    const get = await call(base, '/fixed');
    assert.equal(get.status, 200);
    assertWellFormed(get, 'GET', 'respond');
    assert.equal(get.body.toString(), 'héllo');
    assert.equal(get.headers['content-length'], '6');
    assert.equal(get.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(get.headers['x-fixed'], 'yes');
    const head = await call(base, '/fixed', { method: 'HEAD' });
    assert.equal(head.body.length, 0);
    assert.equal(head.headers['content-length'], '6');
    assert.equal(head.headers['content-type'], get.headers['content-type']);
  });

  it('a fixed 204 has no Content-Length (RFC 9110 §8.6) and no body', async () => {
    const res = await call(base, '/empty');
    assert.equal(res.status, 204);
    assertWellFormed(res, 'GET', 'respond 204');
    const raw = await rawText(p.port(), 'GET /empty HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.doesNotMatch(raw.text, /content-length/i);
    assert.doesNotMatch(raw.text, /transfer-encoding/i);
  });

  it('redirects: the configured status, Location with path and query, Date, empty body; HEAD alike', async () => {
    const cases: [string, number, string][] = [
      ['/r301/a/b?x=1&y=%20', 301, 'https://new.example/r301/a/b?x=1&y=%20'],
      ['/r302/a', 302, '/elsewhere/r302/a'],
      ['/r302/a?q', 302, '/elsewhere/r302/a?q'],
      ['/r303/a?dropped=1', 303, '/done'],
      ['/r307/a?k=v', 307, 'https://new.example/r307/a?k=v'],
      ['/r308/%7Euser/x', 308, 'https://new.example/r308/~user/x'],
    ];
    for (const [path, status, location] of cases) {
      for (const method of ['GET', 'HEAD', 'POST']) {
        const res = await call(base, path, { method });
        assert.equal(res.status, status, `${method} ${path}`);
        assert.equal(res.headers.location, location, `${method} ${path}`);
        assertWellFormed(res, method, `${method} ${path}`);
        assert.equal(res.headers['content-length'], '0');
      }
    }
  });

  it('redirect to https keeps the path and query, and takes the authority of an absolute-form target', async () => {
    const res = await call(p.url('plain'), '/a/b?c=d', { headers: { host: 'shop.example' } });
    assert.equal(res.status, 301);
    assert.equal(res.headers.location, 'https://shop.example:8443/a/b?c=d');
    assertWellFormed(res, 'GET', 'https redirect');
    const raw = await rawText(
      p.port('plain'),
      'GET http://shop.example/x/y?z=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n',
    );
    assert.equal(statusOf(raw.text), 301);
    assert.match(raw.text, /\r\nlocation: https:\/\/shop\.example:8443\/x\/y\?z=1\r\n/i);
    assert.match(raw.text, /\r\ndate: /i);
  });

  it('OPTIONS with Max-Forwards: 0 is answered here (RFC 9110 §7.6.2) with Allow and Date', async () => {
    const before = origin.seen.length;
    const res = await call(base, '/o/echo', { method: 'OPTIONS', headers: { 'max-forwards': '0' } });
    assert.equal(res.status, 200);
    assert.ok(res.headers.allow !== undefined);
    assertWellFormed(res, 'OPTIONS', 'OPTIONS');
    assert.equal(origin.seen.length, before);
  });

  it('parse errors and refusals on the raw socket carry Date too', async () => {
    const { text } = await rawText(p.port(), 'GET /o/x HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n');
    assert.equal(statusOf(text), 400);
    assert.match(text, /\r\ndate: /i);
    assert.match(text, /\r\ncontent-length: \d+\r\n/i);
  });
});

// --- 3. message forwarding ---

/** One raw request whose response body is the origin's JSON echo. */
async function rawEcho(port: number, head: string, body = ''): Promise<Echoed> {
  const { text } = await rawText(port, `${head}Connection: close\r\n\r\n${body}`);
  assert.equal(statusOf(text), 200, text);
  return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Echoed;
}

describe('message forwarding (RFC 9110 §7.6, §7.7)', () => {
  it('request: hop-by-hop fields and every field Connection nominates are removed', async () => {
    const echoed = await rawEcho(
      p.port(),
      'GET /o/echo HTTP/1.1\r\nHost: a.example\r\n' +
        'Connection: X-Hop-1, keep-alive\r\nConnection: x-HOP-2, TE\r\n' +
        'X-Hop-1: one\r\nX-Hop-2: two\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n' +
        'TE: trailers, deflate;q=0.5\r\nTrailer: X-Sum\r\nProxy-Authorization: Basic cHJveHk6c2VjcmV0\r\n' +
        'Authorization: Bearer end-to-end\r\nX-Kept: yes\r\n',
    );
    const names = new Set(echoed.raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase()));
    for (const gone of ['x-hop-1', 'x-hop-2', 'keep-alive', 'proxy-connection', 'trailer', 'proxy-authorization']) {
      assert.ok(!names.has(gone), `${gone} forwarded`);
    }
    assert.equal(echoed.headers.te, undefined, 'HTTP/1.1 clients get no trailers, so `TE: trailers` is not passed on');
    assert.equal(echoed.headers.authorization, 'Bearer end-to-end');
    assert.equal(echoed.headers['x-kept'], 'yes');
    assert.doesNotMatch(echoed.headers.connection ?? '', /hop/i);
  });

  it('request: a non-WebSocket Upgrade is not forwarded, the request is', async () => {
    const echoed = await rawEcho(
      p.port(),
      'GET /o/echo HTTP/1.1\r\nHost: a.example\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n',
    );
    assert.equal(echoed.headers.upgrade, undefined);
    assert.equal(echoed.headers['http2-settings'], undefined);
    assert.equal(echoed.method, 'GET');
  });

  it('request: end-to-end fields arrive unchanged; repeated fields keep their order; name case does not matter', async () => {
    const sent = [
      'Host',
      'a.example',
      'Content-Type',
      'application/vnd.test+json; charset=utf-8',
      'Cache-Control',
      'no-cache, max-age=0',
      'If-None-Match',
      '"a", W/"b"',
      'X-Multi',
      'first',
      'x-MULTI',
      'second',
      'Accept',
      'text/html',
      'accept',
      'application/json;q=0.5',
      'Cookie',
      'a=1',
      'User-Agent',
      'test/1.0',
    ];
    const res = await call(base, '/o/echo', { method: 'POST', headers: sent, body: '{}' });
    const echoed = JSON.parse(res.body.toString()) as Echoed;
    assert.equal(echoed.headers['content-type'], 'application/vnd.test+json; charset=utf-8');
    assert.equal(echoed.headers['cache-control'], 'no-cache, max-age=0');
    assert.equal(echoed.headers['if-none-match'], '"a", W/"b"');
    assert.equal(echoed.headers['x-multi'], 'first, second');
    assert.equal(echoed.headers.accept, 'text/html, application/json;q=0.5');
    assert.equal(echoed.headers.cookie, 'a=1');
    assert.equal(echoed.headers['user-agent'], 'test/1.0');
    assert.equal(echoed.body, '{}');
  });

  for (const [route, label] of [
    ['/o', 'plain route'],
    ['/z', 'compressing route'],
  ] as const) {
    it(`response (${label}): hop-by-hop fields removed, Set-Cookie and repeated fields in order, the rest intact`, async () => {
      const res = await call(base, `${route}/fields`, { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(res.status, 200);
      assert.equal(res.body.toString(), 'ok');
      for (const gone of ['x-hop-a', 'x-hop-b', 'keep-alive', 'proxy-authenticate', 'upgrade', 'trailer']) {
        assert.deepEqual(fieldValues(res.rawHeaders, gone), [], `${gone} forwarded`);
      }
      assert.deepEqual(fieldValues(res.rawHeaders, 'set-cookie'), [
        'a=1; Path=/',
        'b=2; Path=/; HttpOnly',
        'c=3, d=4; Path=/',
      ]);
      assert.deepEqual(fieldValues(res.rawHeaders, 'x-multi').join(', ').split(', '), ['one', 'two']);
      assert.deepEqual(fieldValues(res.rawHeaders, 'x-other').join(', ').split(', '), ['first', 'second']);
      assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(res.headers.etag, '"e-1"');
      assert.equal(res.headers['cache-control'], 'public, max-age=10, no-transform');
      assert.equal(res.headers['content-encoding'], undefined);
    });
  }

  it('Host: the target’s by default, the client’s with preserveHost', async () => {
    const plain = JSON.parse(
      (await call(base, '/o/echo', { headers: { host: 'shop.example' } })).body.toString(),
    ) as Echoed;
    assert.equal(plain.headers.host, new URL(origin.url).host);
    assert.equal(plain.headers['x-forwarded-host'], 'shop.example');
    const kept = JSON.parse(
      (await call(base, '/keep/echo', { headers: { host: 'shop.example' } })).body.toString(),
    ) as Echoed;
    assert.equal(kept.headers.host, 'shop.example');
  });

  it('Forwarded (RFC 7239 §4, §6): an IPv6 client is quoted and bracketed; forged fields replaced', async () => {
    const url = `http://[::1]:${p.port('web6')}`;
    const res = await call(url, '/o/echo', {
      headers: { 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6', 'x-forwarded-proto': 'https' },
    });
    const echoed = JSON.parse(res.body.toString()) as Echoed;
    assert.equal(echoed.headers.forwarded, `for="[::1]";proto=http;host="[::1]:${p.port('web6')}"`);
    assert.equal(echoed.headers['x-forwarded-for'], '::1');
    assert.equal(echoed.headers['x-forwarded-proto'], 'http');
    const v4 = JSON.parse((await call(base, '/o/echo')).body.toString()) as Echoed;
    assert.equal(v4.headers.forwarded, `for=127.0.0.1;proto=http;host="127.0.0.1:${p.port()}"`);
    assert.equal(v4.headers.via, '1.1 portico');
  });

  const methods: [string, boolean][] = [
    ['GET', true],
    ['DELETE', true],
    ['PUT', true],
    ['PATCH', true],
    ['POST', true],
    ['OPTIONS', true],
    ['PROPFIND', true],
    ['PURGE', false],
    ['QUERY', true],
    ['MKCOL', false],
  ];
  for (const [method, withBody] of methods) {
    it(`${method}${withBody ? ' with a body' : ''} is forwarded as is`, async () => {
      const body = withBody ? `<body of ${method}/>` : '';
      const res = await call(base, '/o/echo?x=1', {
        method,
        headers: withBody ? { 'content-type': 'application/xml', 'content-length': String(body.length) } : {},
        body: withBody ? body : undefined,
      });
      assert.equal(res.status, 200);
      const echoed = JSON.parse(res.body.toString()) as Echoed;
      assert.equal(echoed.method, method);
      assert.equal(echoed.url, '/echo?x=1');
      assert.equal(echoed.body, body);
    });
  }

  it('a chunked body on GET is forwarded too', async () => {
    const echoed = await rawEcho(
      p.port(),
      'GET /o/echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n',
      '5\r\nhello\r\n0\r\n\r\n',
    );
    assert.equal(echoed.body, 'hello');
  });

  it('Max-Forwards on OPTIONS is decremented on the way up; other methods pass it as it is', async () => {
    const options = JSON.parse(
      (await call(base, '/o/echo', { method: 'OPTIONS', headers: { 'max-forwards': '3' } })).body.toString(),
    ) as Echoed;
    assert.equal(options.headers['max-forwards'], '2');
    const get = JSON.parse(
      (await call(base, '/o/echo', { headers: { 'max-forwards': '3' } })).body.toString(),
    ) as Echoed;
    assert.equal(get.headers['max-forwards'], '3');
  });

  it('TRACE is refused (405 with Allow), never forwarded', async () => {
    const before = origin.seen.length;
    const res = await call(base, '/o/echo', { method: 'TRACE', headers: { 'max-forwards': '5' } });
    assert.equal(res.status, 405);
    assert.ok(res.headers.allow !== undefined);
    assert.equal(origin.seen.length, before);
  });
});

// --- 4. conditional and range requests ---

describe('conditional and range requests pass through (RFC 9110 §13, §14)', () => {
  const length = Buffer.byteLength(TEXT);
  const cases: [string, Record<string, string>, number, ((r: Reply) => void)?][] = [
    ['If-None-Match match', { 'if-none-match': TEXT_ETAG }, 304],
    ['If-None-Match weak match', { 'if-none-match': `"zz", W/${TEXT_ETAG}` }, 304],
    ['If-None-Match miss', { 'if-none-match': '"other"' }, 200],
    ['If-Modified-Since later', { 'if-modified-since': 'Wed, 02 Jul 2025 10:00:00 GMT' }, 304],
    ['If-Modified-Since earlier', { 'if-modified-since': 'Mon, 30 Jun 2025 10:00:00 GMT' }, 200],
    ['If-Match miss', { 'if-match': '"other"' }, 412],
    ['If-Match weak (strong comparison)', { 'if-match': `W/${TEXT_ETAG}` }, 412],
    ['If-Match match', { 'if-match': TEXT_ETAG }, 200],
    ['If-Unmodified-Since earlier', { 'if-unmodified-since': 'Mon, 30 Jun 2025 10:00:00 GMT' }, 412],
    [
      'Range',
      { range: 'bytes=5-9' },
      206,
      (r) => {
        assert.equal(r.body.toString(), TEXT.slice(5, 10));
        assert.equal(r.headers['content-range'], `bytes 5-9/${length}`);
        assert.equal(r.headers['content-length'], '5');
      },
    ],
    [
      'Range past the end',
      { range: `bytes=${length}-` },
      416,
      (r) => assert.equal(r.headers['content-range'], `bytes */${length}`),
    ],
    ['If-Range match', { range: 'bytes=0-0', 'if-range': TEXT_ETAG }, 206],
    ['If-Range changed', { range: 'bytes=0-0', 'if-range': '"old"' }, 200, (r) => assert.equal(r.body.length, length)],
  ];
  for (const [label, headers, status, check] of cases) {
    it(`${label} → ${status}, fields untouched both ways`, async () => {
      const before = origin.seen.length;
      const res = await call(base, '/o/cond', { headers });
      assert.equal(res.status, status);
      const seen = origin.seen[before]!;
      for (const [name, value] of Object.entries(headers)) assert.equal(seen.headers[name], value, name);
      if (status === 304 || status === 412) assert.equal(res.body.length, 0);
      if (status === 304) {
        assert.equal(res.headers.etag, TEXT_ETAG);
        assert.equal(res.headers['last-modified'], LAST_MODIFIED);
      }
      if (status === 200 || status === 206) assert.equal(res.headers.etag, TEXT_ETAG);
      check?.(res);
    });
  }
});
