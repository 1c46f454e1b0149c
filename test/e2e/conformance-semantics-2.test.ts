/**
 * End to end, a second pass over RFC 9110 as an intermediary, where conformance-semantics.test.ts does not
 * look: HTTP/1.0 clients (§2.5, RFC 9112 §6.1, §9.3), interim responses (§15.2), `Date` (§6.6.1), status
 * codes passed through (§15), the fields a compressed response must lose (`Accept-Ranges`, integrity
 * digests), Accept-Encoding corner cases (§12.5.3) and event streams flushed through the compressor. The
 * upstream is a raw TCP server writing exact bytes; clients are raw sockets, node:http and node:http2.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { request } from 'node:http';
import http2 from 'node:http2';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { brotliDecompressSync, createGunzip, gunzipSync, gzipSync } from 'node:zlib';
import { rawUntilClose } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';

const TEXT = 'Compressible text for the second semantics audit, said again and again. '.repeat(60);
const GZIPPED_UPLOAD = gzipSync(Buffer.from('a gzip-coded request body, passed as it is'));

// --- the upstream: exact bytes per path ---

type Answer = string | ((socket: Socket) => void);

/** SSE: the second event is written only once the test has read the first one through Portico. */
let releaseSecondEvent: (() => void) | undefined;
/** What the upstream read for the last `/echo` request (head and body, latin1). */
let lastEcho = '';

function answer(path: string, request: string): Answer {
  const text = (status: string, fields: string, body = TEXT) =>
    `HTTP/1.1 ${status}\r\n${fields}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  switch (path) {
    case '/text':
      return text('200 OK', 'Content-Type: text/plain\r\nAccept-Ranges: bytes\r\nETag: "t"\r\n');
    case '/digest':
      return text(
        '200 OK',
        'Content-Type: text/plain\r\nContent-Digest: sha-256=:AAAA:\r\nRepr-Digest: sha-256=:AAAA:\r\n',
      );
    case '/md5':
      return text('200 OK', 'Content-Type: text/plain\r\nContent-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n');
    case '/identity-coded':
      return text('200 OK', 'Content-Type: text/plain\r\nContent-Encoding: identity\r\n');
    case '/chunked':
      return 'HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n';
    case '/many-chunks':
      // Head, five chunks and the last chunk in one write: they reach Portico in one read.
      return `HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n${['one', 'two', 'three', 'four', 'five'].map((w) => `${w.length.toString(16)}\r\n${w}\r\n`).join('')}0\r\n\r\n`;
    case '/short':
      return text('200 OK', 'Content-Type: application/octet-stream\r\n', 'ok');
    case '/dated':
      return text('200 OK', 'Date: Tue, 01 Jul 2025 10:00:00 GMT\r\nContent-Type: text/plain\r\n', 'ok');
    case '/hints':
      return (
        'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n' +
        'HTTP/1.1 102 Processing\r\n\r\n' +
        text('200 OK', 'Content-Type: application/octet-stream\r\n', 'ok')
      );
    case '/continue':
      return `HTTP/1.1 100 Continue\r\n\r\n${text('200 OK', 'Content-Type: application/octet-stream\r\n', 'ok')}`;
    case '/205':
      return 'HTTP/1.1 205 Reset Content\r\nContent-Length: 0\r\n\r\n';
    case '/204':
      return 'HTTP/1.1 204 No Content\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n';
    case '/304':
      return `HTTP/1.1 304 Not Modified\r\nETag: "t"\r\nContent-Length: ${TEXT.length}\r\n\r\n`;
    case '/401':
      return text(
        '401 Unauthorized',
        'WWW-Authenticate: Basic realm="a"\r\nWWW-Authenticate: Bearer realm="b"\r\nContent-Type: text/plain\r\n',
        'who?',
      );
    case '/407':
      return text(
        '407 Proxy Authentication Required',
        'Proxy-Authenticate: Basic realm="proxy"\r\nContent-Type: text/plain\r\n',
        'proxy?',
      );
    case '/421':
      return text('421 Misdirected Request', 'Content-Type: text/plain\r\n', 'not here');
    case '/503':
      return text('503 Service Unavailable', 'Retry-After: 7\r\nContent-Type: text/html\r\n');
    case '/302':
      return 'HTTP/1.1 302 Found\r\nLocation: https://elsewhere.example/a?b=c#d\r\nContent-Length: 0\r\n\r\n';
    case '/via':
      return text('200 OK', 'Via: 1.1 backend\r\nContent-Type: text/plain\r\n', 'ok');
    case '/sse':
      return (socket) => {
        socket.write(
          'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n' +
            'd\r\ndata: first\n\n\r\n',
        );
        releaseSecondEvent = () => socket.write('e\r\ndata: second\n\n\r\n0\r\n\r\n');
      };
    default:
      lastEcho = request;
      return text('200 OK', 'Content-Type: application/octet-stream\r\n', 'echoed');
  }
}

/** Splits what a connection sends into requests (Content-Length bodies only) and answers each. */
function startUpstream(): Promise<Server> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (let n = 0; n < 100; n++) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end === -1) return;
        const head = buffered.subarray(0, end).toString('latin1');
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffered.length < end + 4 + length) return;
        const whole = buffered.subarray(0, end + 4 + length).toString('latin1');
        buffered = buffered.subarray(end + 4 + length);
        const path = head
          .split(' ')[1]!
          .split('?')[0]!
          .replace(/^\/[a-z]+(?=\/)/, '');
        const reply = answer(path, whole);
        if (typeof reply === 'string') socket.write(reply, 'latin1');
        else reply(socket);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  return once(server, 'listening').then(() => server);
}

// --- raw client ---

interface Parsed {
  /** Status lines and fields of each head, interim ones first. */
  readonly heads: { status: number; fields: [string, string][] }[];
  /** The final response's body bytes as sent (chunk framing included). */
  readonly body: Buffer;
  readonly closed: boolean;
}

/** Sends `data` and reads until the server closes (bounded); splits heads from the final body. */
async function rawExchange(port: number, data: string | Buffer, ms = 5000): Promise<Parsed> {
  const { bytes, closed } = await rawUntilClose(port, data, ms);
  let all = bytes;
  const heads: Parsed['heads'] = [];
  for (let n = 0; n < 20; n++) {
    const end = all.indexOf('\r\n\r\n');
    if (end === -1) break;
    const lines = all.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const fields = lines.slice(1).map((l): [string, string] => {
      const colon = l.indexOf(':');
      return [l.slice(0, colon).toLowerCase(), l.slice(colon + 1).trim()];
    });
    heads.push({ status, fields });
    all = all.subarray(end + 4);
    if (status >= 200) break;
  }
  return { heads, body: all, closed };
}

function field(head: Parsed['heads'][number] | undefined, name: string): string | undefined {
  const values = head?.fields.filter(([n]) => n === name).map(([, v]) => v) ?? [];
  return values.length === 0 ? undefined : values.join(', ');
}

function final(parsed: Parsed): Parsed['heads'][number] {
  const last = parsed.heads.at(-1);
  assert.ok(last !== undefined && last.status >= 200, 'a final response');
  return last;
}

/** Decodes a chunked body (RFC 9112 §7.1); throws on bad framing. */
function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (let n = 0; n < 10_000; n++) {
    const eol = body.indexOf('\r\n', at);
    assert.ok(eol !== -1, 'chunk size line');
    const size = Number.parseInt(body.subarray(at, eol).toString('latin1'), 16);
    if (size === 0) return Buffer.concat(parts);
    parts.push(body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  throw new Error('too many chunks');
}

/** One request with node:http on a fresh connection (it never decodes bodies). */
function get(
  url: string,
  headers: Record<string, string | string[]> = {},
  method = 'GET',
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

let upstream: Server;
let p: PorticoProcess;
let port: number;
let base: string;

before(async () => {
  upstream = await startUpstream();
  p = await startPortico(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:0, h2c: true }
upstreams:
  - { name: u, targets: [ { url: http://127.0.0.1:${(upstream.address() as AddressInfo).port} } ] }
proxy: { serverHeader: portico }
routes:
  - { name: z, match: { path: /z/* }, rewrite: { stripPrefix: /z }, compress: true, upstream: u }
  - { name: o, match: { path: /o/* }, rewrite: { stripPrefix: /o }, upstream: u }
`);
  port = p.port();
  base = p.url();
});

after(async () => {
  await p?.stop();
  upstream?.close();
});

// --- 1. compression: what a compressed response must lose ---

describe('compression: fields that no longer hold once the bytes change', () => {
  it('Accept-Ranges is removed from a compressed response, GET and HEAD alike (ranges would be of other bytes)', async () => {
    for (const method of ['GET', 'HEAD']) {
      const res = await get(`${base}/z/text`, { 'accept-encoding': 'gzip' }, method);
      assert.equal(res.headers['content-encoding'], 'gzip', method);
      assert.equal(res.headers['accept-ranges'], undefined, `${method}: Accept-Ranges dropped`);
      assert.equal(res.headers['content-length'], undefined, `${method}: no identity length`);
      assert.equal(res.headers.etag, 'W/"t"');
      if (method === 'GET') assert.equal(gunzipSync(res.body).toString(), TEXT);
      else assert.equal(res.body.length, 0);
    }
    const identity = await get(`${base}/z/text`, { 'accept-encoding': 'identity' });
    assert.equal(identity.headers['content-encoding'], undefined);
    assert.equal(identity.headers['accept-ranges'], 'bytes', 'kept on the bytes the upstream sent');
    assert.equal(identity.headers['content-length'], String(TEXT.length));
  });

  it('a response with an integrity digest (Content-Digest, Repr-Digest, Content-MD5) is sent as is (RFC 9530)', async () => {
    for (const path of ['/z/digest', '/z/md5']) {
      const res = await get(`${base}${path}`, { 'accept-encoding': 'gzip, br, zstd' });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-encoding'], undefined, `${path}: not compressed`);
      assert.equal(res.body.toString(), TEXT, 'the digested bytes, intact');
      assert.equal(res.headers['content-length'], String(TEXT.length));
    }
    const digest = await get(`${base}/z/digest`, { 'accept-encoding': 'gzip' });
    assert.equal(digest.headers['content-digest'], 'sha-256=:AAAA:');
    assert.equal(digest.headers['repr-digest'], 'sha-256=:AAAA:');
  });

  it('an upstream `Content-Encoding: identity` is replaced by the one coding applied, never listed with it', async () => {
    const res = await get(`${base}/z/identity-coded`, { 'accept-encoding': 'br' });
    assert.equal(res.headers['content-encoding'], 'br');
    assert.equal(brotliDecompressSync(res.body).toString(), TEXT);
  });
});

// --- 2. Accept-Encoding corner cases (RFC 9110 §12.5.3, §12.4.2) ---

describe('Accept-Encoding corner cases', () => {
  const cases: [string | string[], string | undefined][] = [
    ['gzip;q=0.001', 'gzip'],
    ['br;q=0.5, gzip;q=0.8', 'gzip'],
    ['GZIP;Q=0.5, BR;Q=0.4', 'gzip'],
    ['gzip;q=1.000', 'gzip'],
    ['gzip;q=1.0000', undefined],
    ['gzip;q=0.5, br;q=1.0001', 'gzip'],
    ['unknown-coding, gzip;q=0.1', 'gzip'],
    ['gzip;  q=0.5', 'gzip'],
    ['identity;q=0.5, *;q=0', undefined],
    ['*;q=0, identity;q=0', undefined],
    [['gzip;q=0', 'br'], 'br'],
    [['deflate', 'gzip'], 'gzip'],
  ];
  for (const [accept, expected] of cases) {
    it(`${JSON.stringify(accept)} → ${expected ?? 'identity'}; never a 406`, async () => {
      const res = await get(`${base}/z/text`, { 'accept-encoding': accept });
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-encoding'], expected);
      const body =
        expected === 'gzip' ? gunzipSync(res.body) : expected === 'br' ? brotliDecompressSync(res.body) : res.body;
      assert.equal(body.toString(), TEXT);
    });
  }

  it('an event stream is flushed through the compressor event by event (the second waits for the first)', async () => {
    releaseSecondEvent = undefined;
    const text = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the first event never arrived on its own')), 10_000);
      const req = request(`${base}/z/sse`, { headers: { 'accept-encoding': 'gzip' }, agent: false }, (res) => {
        assert.equal(res.headers['content-encoding'], 'gzip');
        assert.equal(res.headers['content-type'], 'text/event-stream');
        const gunzip = createGunzip();
        res.pipe(gunzip);
        let decoded = '';
        gunzip.on('data', (c: Buffer) => {
          decoded += c.toString();
          // Only now does the upstream send the rest: a buffering compressor would wait here for ever.
          if (decoded === 'data: first\n\n') releaseSecondEvent?.();
        });
        gunzip.on('end', () => {
          clearTimeout(timer);
          resolve(decoded);
        });
        gunzip.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(text, 'data: first\n\ndata: second\n\n');
  });
});

// --- 3. framing of a chunked response (RFC 9112 §7.1) ---

describe('a chunked upstream response re-framed for an HTTP/1.1 client', () => {
  // Node's res.end() on a corked response wrote the last chunk before the chunks it still held, so a body
  // whose chunks arrived in one read ended after its first chunk, the rest after the end (a desync).
  it('every chunk before the last chunk, in order', async () => {
    for (const [path, expected] of [
      ['/o/chunked', 'hello world'],
      ['/o/many-chunks', 'onetwothreefourfive'],
    ] as const) {
      const res = await rawExchange(port, `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
      assert.equal(field(final(res), 'transfer-encoding'), 'chunked');
      assert.ok(res.body.subarray(-5).equals(Buffer.from('0\r\n\r\n')), `${path}: ends with the last chunk`);
      assert.equal(dechunk(res.body).toString(), expected, path);
    }
  });

  it('on a kept-alive connection too: the next request gets its own response', async () => {
    const res = await rawExchange(
      port,
      'GET /o/many-chunks HTTP/1.1\r\nHost: a\r\n\r\nGET /o/short HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    );
    assert.equal(dechunk(res.body).toString(), 'onetwothreefourfive');
    const second = res.body.subarray(res.body.indexOf('0\r\n\r\n') + 5).toString('latin1');
    assert.match(second, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(second.endsWith('\r\n\r\nok'));
  });
});

// --- 4. HTTP/1.0 clients ---

describe('HTTP/1.0 clients (RFC 9112 §6.1, §9.3; RFC 9110 §15.2)', () => {
  it('a chunked upstream body reaches an HTTP/1.0 client delimited by the close, never chunked', async () => {
    const res = await rawExchange(port, 'GET /o/chunked HTTP/1.0\r\n\r\n');
    const head = final(res);
    assert.equal(head.status, 200);
    assert.equal(field(head, 'transfer-encoding'), undefined);
    assert.equal(res.body.toString(), 'hello world');
    assert.equal(res.closed, true);
  });

  it('even when it asks for keep-alive (no length to give), and with a compressed body', async () => {
    const chunked = await rawExchange(port, 'GET /o/chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    assert.equal(field(final(chunked), 'transfer-encoding'), undefined);
    assert.equal(chunked.body.toString(), 'hello world');
    assert.equal(chunked.closed, true);
    const gz = await rawExchange(
      port,
      'GET /z/text HTTP/1.0\r\nConnection: keep-alive\r\nAccept-Encoding: gzip\r\n\r\n',
    );
    const head = final(gz);
    assert.equal(field(head, 'content-encoding'), 'gzip');
    assert.equal(field(head, 'transfer-encoding'), undefined);
    assert.equal(gunzipSync(gz.body).toString(), TEXT);
    assert.equal(gz.closed, true);
  });

  it('keep-alive only when asked, and only with a known length', async () => {
    const asked = await rawExchange(port, 'GET /o/short HTTP/1.0\r\nConnection: keep-alive\r\n\r\n', 1500);
    assert.equal(field(final(asked), 'content-length'), '2');
    assert.match(String(field(final(asked), 'connection')), /keep-alive/i);
    assert.equal(asked.closed, false, 'kept open as asked');
    const plain = await rawExchange(port, 'GET /o/short HTTP/1.0\r\n\r\n');
    assert.equal(plain.closed, true);
    assert.equal(plain.body.toString(), 'ok');
  });

  it('never gets a 1xx (103, 102, 100), only the final response', async () => {
    for (const path of ['/o/hints', '/o/continue']) {
      const res = await rawExchange(port, `GET ${path} HTTP/1.0\r\n\r\n`);
      assert.deepEqual(
        res.heads.map((h) => h.status),
        [200],
        path,
      );
      assert.equal(res.body.toString(), 'ok');
    }
  });

  it('HEAD: the header fields, no body, the connection closed', async () => {
    const res = await rawExchange(port, 'HEAD /z/text HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n');
    const head = final(res);
    assert.equal(field(head, 'content-encoding'), 'gzip');
    assert.equal(field(head, 'content-length'), undefined);
    assert.equal(res.body.length, 0);
    assert.equal(res.closed, true);
  });

  it('the request goes up as HTTP/1.1 with `Via: 1.0 portico` appended', async () => {
    await rawExchange(port, 'GET /o/echo HTTP/1.0\r\nVia: 1.1 front\r\n\r\n');
    assert.match(lastEcho, /^GET \/echo HTTP\/1\.1\r\n/);
    assert.match(lastEcho, /\r\nvia: 1\.1 front, 1\.0 portico\r\n/i);
  });
});

// --- 5. interim responses, Date, status codes ---

describe('interim responses (RFC 9110 §15.2)', () => {
  it('103 (with its Link) and 102 go to an HTTP/1.1 client before the final response; an unsolicited 100 does not', async () => {
    const res = await rawExchange(port, 'GET /o/hints HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.deepEqual(
      res.heads.map((h) => h.status),
      [103, 102, 200],
    );
    assert.equal(field(res.heads[0], 'link'), '</style.css>; rel=preload; as=style');
    assert.equal(res.body.toString(), 'ok');
    const cont = await rawExchange(port, 'GET /o/continue HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.deepEqual(
      cont.heads.map((h) => h.status),
      [200],
    );
  });

  it('103 goes to an HTTP/2 client as an informational HEADERS frame', async () => {
    const session = http2.connect(base);
    try {
      const stream = session.request({ ':path': '/o/hints' });
      const interim: number[] = [];
      let link: unknown;
      stream.on('headers', (h) => {
        interim.push(Number(h[':status']));
        link ??= h.link;
      });
      const [headers] = (await once(stream, 'response')) as [http2.IncomingHttpHeaders];
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      await once(stream, 'end');
      assert.deepEqual(interim, [103]);
      assert.equal(link, '</style.css>; rel=preload; as=style');
      assert.equal(headers[':status'], 200);
      assert.equal(Buffer.concat(chunks).toString(), 'ok');
    } finally {
      session.close();
    }
  });
});

describe('Date and Via on responses (RFC 9110 §6.6.1, §7.6.3)', () => {
  it('Date is added when the upstream sent none; the upstream’s is kept, once', async () => {
    const added = final(await rawExchange(port, 'GET /o/short HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
    assert.ok(!Number.isNaN(Date.parse(String(field(added, 'date')))));
    const kept = final(await rawExchange(port, 'GET /o/dated HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
    assert.deepEqual(
      kept.fields.filter(([n]) => n === 'date').map(([, v]) => v),
      ['Tue, 01 Jul 2025 10:00:00 GMT'],
    );
  });

  it('by default (a gateway) no Via is added to responses, and the upstream’s passes as it is', async () => {
    const plain = await get(`${base}/o/short`);
    assert.equal(plain.headers.via, undefined);
    const upstreamVia = await get(`${base}/o/via`);
    assert.equal(upstreamVia.headers.via, '1.1 backend');
    assert.equal(upstreamVia.headers.server, 'portico');
  });
});

describe('status codes pass through (RFC 9110 §15)', () => {
  it('205 with its empty content', async () => {
    const res = await get(`${base}/z/205`, { 'accept-encoding': 'gzip' });
    assert.equal(res.status, 205);
    assert.equal(res.body.length, 0);
    assert.equal(res.headers['content-encoding'], undefined);
  });

  it('204 and 304 on a compressing route: no body, no Content-Encoding; a 204 loses its Content-Length', async () => {
    const nc = await rawExchange(
      port,
      'GET /z/204 HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n',
    );
    assert.equal(final(nc).status, 204);
    assert.equal(field(final(nc), 'content-length'), undefined);
    assert.equal(field(final(nc), 'content-encoding'), undefined);
    assert.equal(nc.body.length, 0);
    const nm = await rawExchange(
      port,
      'GET /z/304 HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n',
    );
    assert.equal(final(nm).status, 304);
    assert.equal(field(final(nm), 'content-encoding'), undefined);
    assert.equal(field(final(nm), 'transfer-encoding'), undefined);
    assert.equal(nm.body.length, 0);
  });

  it('401 keeps every WWW-Authenticate challenge; 421 and its body pass', async () => {
    const res = await get(`${base}/o/401`);
    assert.equal(res.status, 401);
    assert.equal(res.headers['www-authenticate'], 'Basic realm="a", Bearer realm="b"');
    assert.equal(res.body.toString(), 'who?');
    const misdirected = await get(`${base}/o/421`);
    assert.equal(misdirected.status, 421);
    assert.equal(misdirected.body.toString(), 'not here');
  });

  it('407 from an upstream passes, without its Proxy-Authenticate (addressed to the hop before Portico)', async () => {
    const res = await get(`${base}/o/407`);
    assert.equal(res.status, 407);
    assert.equal(res.headers['proxy-authenticate'], undefined);
    assert.equal(res.body.toString(), 'proxy?');
  });

  it('a 5xx body passes (compressed when asked), with its Retry-After', async () => {
    const res = await get(`${base}/z/503`, { 'accept-encoding': 'gzip' });
    assert.equal(res.status, 503);
    assert.equal(res.headers['retry-after'], '7');
    assert.equal(gunzipSync(res.body).toString(), TEXT);
  });

  it('3xx: Location untouched, fragment included', async () => {
    const res = await get(`${base}/o/302`);
    assert.equal(res.status, 302);
    assert.equal(res.headers.location, 'https://elsewhere.example/a?b=c#d');
  });
});

describe('request side', () => {
  it('a gzip-coded request body goes up byte for byte, its Content-Encoding with it', async () => {
    const head = `POST /o/echo HTTP/1.1\r\nHost: a\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Length: ${GZIPPED_UPLOAD.length}\r\nConnection: close\r\n\r\n`;
    const res = await rawExchange(port, Buffer.concat([Buffer.from(head, 'latin1'), GZIPPED_UPLOAD]));
    assert.equal(final(res).status, 200);
    const sent = Buffer.from(lastEcho, 'latin1');
    const bodyAt = sent.indexOf('\r\n\r\n') + 4;
    assert.match(lastEcho, /\r\ncontent-encoding: gzip\r\n/i);
    assert.deepEqual(sent.subarray(bodyAt), GZIPPED_UPLOAD);
  });
});
