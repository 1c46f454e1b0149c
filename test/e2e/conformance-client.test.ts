/**
 * End to end, against RFC 9112 (HTTP/1.1 syntax and framing) and RFC 9110, and how nginx and HAProxy treat
 * malformed or hostile clients: raw bytes over node:net into the real portico process, in front of a real
 * upstream whose received bytes are recorded. Every refusal is the right status as problem+json, closes the
 * connection, and sends nothing upstream; nothing a client sends is passed on ambiguously (no smuggling).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect, createServer, type Server as NetServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';

interface Parsed {
  readonly version: string;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

interface Echo {
  readonly method: string;
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly trailers: Record<string, string>;
}

/** Splits a raw HTTP/1 response stream into responses (Content-Length, chunked or close-delimited bodies). */
function parseResponses(raw: string): Parsed[] {
  const out: Parsed[] = [];
  let rest = raw;
  for (let guard = 0; guard < 50 && rest.length > 0; guard++) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine = '', ...lines] = rest.slice(0, end).split('\r\n');
    const m = /^HTTP\/(\d\.\d) (\d{3})/.exec(statusLine);
    if (!m) break;
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
    }
    rest = rest.slice(end + 4);
    const status = Number(m[2]);
    let body = '';
    if (status >= 200 && headers['transfer-encoding'] !== undefined) {
      for (let g = 0; g < 1000; g++) {
        const eol = rest.indexOf('\r\n');
        const size = Number.parseInt(rest.slice(0, eol), 16);
        rest = rest.slice(eol + 2);
        if (size === 0) {
          rest = rest.slice(rest.indexOf('\r\n') + 2);
          break;
        }
        body += rest.slice(0, size);
        rest = rest.slice(size + 2);
      }
    } else if (status >= 200 && headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      body = rest.slice(0, n);
      rest = rest.slice(n);
    } else if (status >= 200) {
      body = rest;
      rest = '';
    }
    out.push({ version: m[1]!, status, headers, body });
  }
  return out;
}

describe('client conformance (RFC 9112 / RFC 9110)', () => {
  let upstream: Server;
  let relay: NetServer;
  /** Every byte the upstream received, all connections, in arrival order. */
  let upstreamBytes = '';
  const seen: Echo[] = [];
  let p: PorticoProcess;

  before(async () => {
    // The upstream echoes what it understood; the relay in front of it records the exact bytes Portico sent.
    upstream = createHttpServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const echo: Echo = {
          method: req.method!,
          url: req.url!,
          headers: req.headers as Record<string, string>,
          body: Buffer.concat(chunks).toString('latin1'),
          trailers: req.trailers as Record<string, string>,
        };
        seen.push(echo);
        if (req.url === '/stream') {
          // No Content-Length: chunked to Portico.
          res.write('part one, ');
          setTimeout(() => res.end('part two'), 10);
          return;
        }
        const json = JSON.stringify(echo);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
        res.end(json);
      });
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    const upstreamPort = (upstream.address() as AddressInfo).port;
    relay = createServer((client: Socket) => {
      const back = connect(upstreamPort, '127.0.0.1');
      client.on('data', (c: Buffer) => {
        upstreamBytes += c.toString('latin1');
        back.write(c);
      });
      back.pipe(client);
      client.on('close', () => back.destroy());
      back.on('close', () => client.destroy());
      client.on('error', () => {});
      back.on('error', () => {});
    });
    relay.listen(0, '127.0.0.1');
    await once(relay, 'listening');
    p = await startPortico(`
listeners:
  - name: web
    protocol: http
    address: 127.0.0.1:0
    limits: { maxHeaderSize: 32KiB, headersTimeout: 1s, requestTimeout: 2s, idleTimeout: 5s }
upstreams: [ { name: echo, targets: [ { url: http://127.0.0.1:${(relay.address() as AddressInfo).port} } ] } ]
routes:
  - { name: all, match: { path: /* }, upstream: echo }
`);
  });

  after(async () => {
    await p?.stop();
    relay?.close();
    upstream?.closeAllConnections();
    upstream?.close();
  });

  /** Sends `data` on a new connection; resolves with what came back once the server closed it (or `ms`). */
  async function exchange(data: string, ms = 5000): Promise<{ raw: string; closed: boolean; res: Parsed[] }> {
    const socket = connect(p.port(), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(Buffer.from(data, 'latin1'));
    let raw = '';
    socket.on('data', (c: Buffer) => {
      raw += c.toString('latin1');
    });
    socket.on('error', () => {});
    const closed = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    socket.destroy();
    return { raw, closed, res: parseResponses(raw) };
  }

  /** A refusal: one problem+json reply with this status and code, the connection closed, nothing upstream. */
  async function assertRefused(data: string, status: number, code: string, label = data): Promise<void> {
    const before = upstreamBytes.length;
    const { res, closed } = await exchange(data);
    assert.equal(res.length, 1, `${label}: one response`);
    assert.equal(res[0]!.status, status, `${label}: status`);
    assert.equal(res[0]!.headers['content-type'], 'application/problem+json', `${label}: problem+json`);
    assert.equal((JSON.parse(res[0]!.body) as { code: string }).code, code, `${label}: code`);
    assert.equal(res[0]!.headers.connection?.toLowerCase(), 'close', `${label}: Connection: close`);
    assert.ok(closed, `${label}: connection closed`);
    assert.equal(upstreamBytes.slice(before), '', `${label}: nothing reached the upstream`);
  }

  /** Proxied: a 200 from the upstream; returns what the upstream understood. */
  async function proxied(data: string, label = data): Promise<Echo> {
    const { res } = await exchange(data);
    assert.equal(res[0]?.status, 200, `${label}: proxied`);
    return JSON.parse(res[0]!.body) as Echo;
  }

  it('refuses Content-Length with Transfer-Encoding and never lets a smuggled request through (§6.1, §6.3)', async () => {
    const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
    await assertRefused(
      `POST /cl-te HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
      400,
      'GW_BAD_REQUEST',
    );
    await assertRefused(
      `POST /te-cl HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n${smuggled}`,
      400,
      'GW_BAD_REQUEST',
    );
    assert.doesNotMatch(upstreamBytes, /smuggled/);
  });

  it('answers 400 when chunked is not the final transfer coding, 501 for codings it cannot decode, 400 in HTTP/1.0', async () => {
    for (const te of ['gzip', 'chunked, gzip', 'identity', 'chunked, chunked', 'xchunked'])
      await assertRefused(
        `POST /te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ${te}\r\n\r\n0\r\n\r\n`,
        400,
        'GW_BAD_REQUEST',
        te,
      );
    await assertRefused(
      'POST /te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      400,
      'GW_BAD_REQUEST',
      'two Transfer-Encoding lines',
    );
    await assertRefused(
      'POST /te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n',
      501,
      'GW_NOT_IMPLEMENTED',
    );
    await assertRefused(
      'POST /te HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
      400,
      'GW_BAD_REQUEST',
    );
    // Coding names are case-insensitive and OWS is allowed.
    const echo = await proxied(
      'POST /te-ok HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\tChunked \r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    );
    assert.equal(echo.body, 'hello');
  });

  it('refuses differing, listed, negative, non-numeric and huge Content-Length values (§6.3)', async () => {
    for (const cl of [['5', '6'], ['5, 6'], ['5, 5'], ['5', '5'], ['-1'], ['+5'], ['abc'], ['0x5'], ['1e3'], ['']]) {
      const lines = cl.map((v) => `Content-Length: ${v}\r\n`).join('');
      await assertRefused(`POST /cl HTTP/1.1\r\nHost: x\r\n${lines}\r\nhello!`, 400, 'GW_BAD_REQUEST', lines);
    }
    await assertRefused(
      'POST /cl HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n',
      400,
      'GW_BAD_REQUEST',
    );
    const echo = await proxied(
      'POST /cl-ok HTTP/1.1\r\nHost: x\r\nContent-Length:  5 \r\nConnection: close\r\n\r\nhello',
    );
    assert.equal(echo.body, 'hello');
  });

  it('refuses obs-fold, space before the colon, control characters, bare CR and LF, bad field names (§5, §2.2)', async () => {
    const bad: Record<string, string> = {
      'obs-fold': 'X-A: one\r\n two\r\n',
      'obs-fold tab': 'X-A: one\r\n\ttwo\r\n',
      'space before colon': 'X-A : one\r\n',
      'space before colon on Host': 'Host : y\r\n',
      'whitespace before the first field': ' X-A: one\r\n',
      NUL: 'X-A: o\x00ne\r\n',
      'bare CR': 'X-A: o\rne\r\n',
      'control character': 'X-A: o\x01ne\r\n',
      DEL: 'X-A: o\x7fne\r\n',
      'bare LF': 'X-A: one\nX-B: two\r\n',
      'parenthesis in name': 'X(A: one\r\n',
      '@ in name': 'X@A: one\r\n',
      'empty name': ': one\r\n',
      'no colon': 'X-A\r\n',
    };
    for (const [label, field] of Object.entries(bad))
      await assertRefused(`GET /fields HTTP/1.1\r\nHost: x\r\n${field}\r\n`, 400, 'GW_BAD_REQUEST', label);
    await assertRefused('GET /lf HTTP/1.1\nHost: x\n\n', 400, 'GW_BAD_REQUEST', 'bare LF line endings');
    // HTAB and obs-text are allowed in values (RFC 9110 §5.5).
    const echo = await proxied('GET /ok HTTP/1.1\r\nHost: x\r\nX-A: a\tb\r\nX-B: caf\xe9\r\nConnection: close\r\n\r\n');
    assert.equal(echo.headers['x-a'], 'a\tb');
  });

  it('proxies known extension methods, answers 501 to unknown ones and 400 to invalid tokens (RFC 9110 §9)', async () => {
    for (const method of ['PROPFIND', 'MKCOL', 'QUERY', 'PURGE']) {
      const echo = await proxied(`${method} /m HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, method);
      assert.equal(echo.method, method);
    }
    await assertRefused('FOO /m HTTP/1.1\r\nHost: x\r\n\r\n', 501, 'GW_NOT_IMPLEMENTED');
    await assertRefused('get /m HTTP/1.1\r\nHost: x\r\n\r\n', 501, 'GW_NOT_IMPLEMENTED');
    await assertRefused('G(T /m HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'GW_BAD_REQUEST');
    await assertRefused('GET\t/m HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'GW_BAD_REQUEST');
  });

  it('answers 505 to versions other than HTTP/1.0 and 1.1, 400 to malformed ones (§2.3, RFC 9110 §15.6.6)', async () => {
    for (const version of ['HTTP/2.0', 'HTTP/1.2', 'HTTP/3.0', 'HTTP/0.9', 'HTTP/9.9'])
      await assertRefused(`GET /v ${version}\r\nHost: x\r\n\r\n`, 505, 'GW_VERSION_NOT_SUPPORTED', version);
    await assertRefused('GET /v\r\n\r\n', 505, 'GW_VERSION_NOT_SUPPORTED', 'no version (HTTP/0.9)');
    for (const version of ['http/1.1', 'HTTP/1.10', 'HTTP/11', 'HTTP/1.'])
      await assertRefused(`GET /v ${version}\r\nHost: x\r\n\r\n`, 400, 'GW_BAD_REQUEST', version);
    await assertRefused('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 505, 'GW_VERSION_NOT_SUPPORTED', 'h2 preface');
  });

  it('serves HTTP/1.0: Host optional, HTTP/1.1 answers, close by default, keep-alive on request, never chunked (§2.3, §6.1, §9.3)', async () => {
    const plain = await exchange('GET /ten HTTP/1.0\r\n\r\n');
    assert.equal(plain.res[0]?.status, 200);
    assert.equal(plain.res[0]!.version, '1.1');
    assert.ok(plain.closed);
    // Expect: 100-continue is ignored in HTTP/1.0 (RFC 9110 §10.1.1).
    const expect = await exchange(
      'POST /ten HTTP/1.0\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi',
    );
    assert.equal(expect.res.length, 1);
    assert.equal(expect.res[0]!.status, 200);
    // A body of unknown length is delimited by closing, even to a client that claims TE: chunked.
    const stream = await exchange('GET /stream HTTP/1.0\r\nHost: x\r\nTE: chunked\r\nConnection: keep-alive\r\n\r\n');
    assert.equal(stream.res[0]?.status, 200);
    assert.equal(stream.res[0]!.headers['transfer-encoding'], undefined);
    assert.equal(stream.res[0]!.body, 'part one, part two');
    assert.ok(stream.closed);

    const socket = connect(p.port(), '127.0.0.1');
    await once(socket, 'connect');
    let raw = '';
    socket.on('data', (c: Buffer) => {
      raw += c.toString('latin1');
    });
    socket.write('GET /ka1 HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
    for (let i = 0; i < 100 && parseResponses(raw).length < 1; i++) await once(socket, 'data');
    assert.equal(parseResponses(raw)[0]!.headers.connection?.toLowerCase(), 'keep-alive');
    socket.write('GET /ka2 HTTP/1.0\r\nHost: x\r\n\r\n');
    await once(socket, 'close');
    const both = parseResponses(raw);
    assert.deepEqual(
      both.map((r) => (JSON.parse(r.body) as Echo).url),
      ['/ka1', '/ka2'],
    );
  });

  it('requires exactly one valid Host in HTTP/1.1 (§3.2)', async () => {
    await assertRefused('GET /h HTTP/1.1\r\n\r\n', 400, 'GW_BAD_REQUEST', 'no Host');
    await assertRefused('GET /h HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400, 'GW_BAD_REQUEST', 'two Hosts');
    await assertRefused('GET /h HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n', 400, 'GW_BAD_REQUEST', 'two equal Hosts');
    await assertRefused('GET /h HTTP/1.1\r\nHost:\r\n\r\n', 400, 'GW_BAD_REQUEST', 'empty Host');
    for (const host of ['a b', 'a/b', 'user@a', 'a:80x', 'a:123456', '[::1', '[zz]', ':80', 'a\\b'])
      await assertRefused(`GET /h HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 400, 'GW_BAD_REQUEST', `Host: ${host}`);
    for (const host of ['a.example', 'a.example:8080', '127.0.0.1:1', '[::1]:80', 'xn--bcher-kva.example']) {
      const echo = await proxied(`GET /h HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, host);
      assert.equal(echo.headers['x-forwarded-host'], host);
    }
  });

  it('takes the authority of an absolute-form target over Host (§3.2.2)', async () => {
    const echo = await proxied(
      'GET http://abs.example:81/a/../b?q=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n',
    );
    assert.equal(echo.url, '/b?q=1');
    assert.equal(echo.headers['x-forwarded-host'], 'abs.example:81');
    assert.match(echo.headers.forwarded!, /host="abs\.example:81"/);
    await assertRefused('GET http://u@abs.example/ HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'GW_BAD_PATH', 'userinfo');
    await assertRefused('GET http://a b/ HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'GW_BAD_REQUEST', 'space in authority');
  });

  it('accepts the asterisk form only for OPTIONS and the authority form only for CONNECT (§3.2.3, §3.2.4)', async () => {
    const star = await exchange('OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(star.res[0]?.status, 200);
    // An absolute-form OPTIONS with an empty path is the asterisk form once forwarded (§3.2.4): it asks about
    // the server, as `OPTIONS *` does; with a path or a query it is an ordinary request.
    const before = upstreamBytes.length;
    const empty = await exchange('OPTIONS http://x:8001 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(empty.res[0]?.status, 200);
    assert.match(empty.res[0]!.headers.allow ?? '', /OPTIONS/);
    assert.equal(upstreamBytes.slice(before), '', 'OPTIONS http://x:8001 answered here');
    assert.equal((await proxied('OPTIONS http://x:8001/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).url, '/');
    assert.equal((await proxied('OPTIONS http://x?q HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).url, '/?q');
    await assertRefused('GET * HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'GW_BAD_PATH');
    await assertRefused('GET x:80 HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'GW_BAD_REQUEST');
    await assertRefused('CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n', 405, 'GW_METHOD_NOT_ALLOWED');
    await assertRefused('GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'GW_BAD_PATH');
  });

  it('reads chunked bodies strictly: extensions ignored, bad sizes refused, trailers not passed on (§7)', async () => {
    const ext = await proxied(
      'POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
        '5;name=value;quoted="a b"\r\nhello\r\n000\r\n\r\n',
    );
    assert.equal(ext.body, 'hello');
    const zeros = await proxied(
      `POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${'0'.repeat(20)}5\r\nhello\r\n0\r\n\r\n`,
    );
    assert.equal(zeros.body, 'hello');
    const bad: Record<string, string> = {
      'non-hex size': 'zz\r\nhello\r\n0\r\n\r\n',
      'size overflows 64 bits': 'FFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n',
      'space after size': '5 \r\nhello\r\n0\r\n\r\n',
      'control character in extension': '5;\x01\r\nhello\r\n0\r\n\r\n',
      'LF-only chunk lines': '5\nhello\n0\n\n',
      'data longer than its size': '3\r\nhello\r\n0\r\n\r\n',
    };
    for (const [label, body] of Object.entries(bad)) {
      const { res, closed } = await exchange(
        `POST /bad-chunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
      );
      assert.equal(res.at(-1)?.status, 400, label);
      assert.ok(closed, label);
    }
    assert.ok(!seen.some((e) => e.url === '/bad-chunk'), 'a broken chunked body never completes upstream');
    const trailers = await proxied(
      'POST /trailers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\nConnection: close\r\n\r\n' +
        '5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n',
    );
    assert.equal(trailers.body, 'hello');
    assert.equal(trailers.headers['x-checksum'], undefined);
    assert.equal(trailers.headers.trailer, undefined);
    assert.deepEqual(trailers.trailers, {});
  });

  it('honours Connection: close and never forwards what follows it (§9.6)', async () => {
    const before = upstreamBytes.length;
    const { res, closed } = await exchange(
      'GET /close-1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /close-2 HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    assert.equal(res.length, 1);
    assert.equal(res[0]!.status, 200);
    assert.equal(res[0]!.headers.connection?.toLowerCase(), 'close');
    assert.ok(closed);
    assert.doesNotMatch(upstreamBytes.slice(before), /close-2/);
  });

  it('answers pipelined requests in order, with bodies (§9.3)', async () => {
    const { res } = await exchange(
      'POST /pipe-1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc' +
        'POST /pipe-2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ndef\r\n0\r\n\r\n' +
        'GET /stream HTTP/1.1\r\nHost: x\r\n\r\n' +
        'GET /pipe-4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    assert.deepEqual(
      res.map((r) => r.status),
      [200, 200, 200, 200],
    );
    assert.equal((JSON.parse(res[0]!.body) as Echo).body, 'abc');
    assert.equal((JSON.parse(res[1]!.body) as Echo).body, 'def');
    assert.equal(res[2]!.body, 'part one, part two');
    assert.equal((JSON.parse(res[3]!.body) as Echo).url, '/pipe-4');
  });

  it('answers a deep pipeline in order', async () => {
    const depth = 40;
    let burst = '';
    for (let i = 0; i < depth; i++) burst += `GET /deep-${i} HTTP/1.1\r\nHost: x\r\n\r\n`;
    const { res } = await exchange(`${burst}GET /deep-last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.deepEqual(
      res.map((r) => (JSON.parse(r.body) as Echo).url),
      [...Array.from({ length: depth }, (_, i) => `/deep-${i}`), '/deep-last'],
    );
  });

  it('after a refusal, forwards nothing the client pipelined behind it', async () => {
    const before = upstreamBytes.length;
    const { res, closed } = await exchange(
      'POST /refused#frag HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello' +
        'POST /after-refusal HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx',
    );
    assert.deepEqual(
      res.map((r) => r.status),
      [400],
    );
    assert.ok(closed);
    assert.equal(upstreamBytes.slice(before), '');

    const behind = await exchange(
      'GET /ok-first HTTP/1.1\r\nHost: x\r\n\r\nGET /bad HTTP/1.1\r\nHost: a b\r\n\r\nGET /after-bad HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    assert.deepEqual(
      behind.res.map((r) => r.status),
      [200, 400],
    );
    assert.doesNotMatch(upstreamBytes.slice(before), /after-bad/);
  });

  it('answers the complete requests before the 400 for a malformed one pipelined after them', async () => {
    const { res, closed } = await exchange(
      'GET /g-1 HTTP/1.1\r\nHost: x\r\n\r\nGET /stream HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\nGET /g-3 HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    assert.deepEqual(
      res.map((r) => r.status),
      [200, 200, 400],
    );
    assert.equal((JSON.parse(res[0]!.body) as Echo).url, '/g-1');
    assert.equal(res[1]!.body, 'part one, part two');
    assert.equal(res[2]!.headers['content-type'], 'application/problem+json');
    assert.ok(closed);
    assert.doesNotMatch(upstreamBytes, /g-3/);
  });

  it('passes many header fields through, refuses too many with 431 rather than dropping some', async () => {
    const fields = (n: number): string => Array.from({ length: n }, (_, i) => `X-F${i}: ${i}\r\n`).join('');
    const echo = await proxied(
      `GET /many HTTP/1.1\r\nHost: x\r\n${fields(500)}Connection: close\r\n\r\n`,
      '500 fields',
    );
    assert.equal(echo.headers['x-f499'], '499');
    await assertRefused(
      `GET /many HTTP/1.1\r\nHost: x\r\n${fields(1200)}\r\n`,
      431,
      'GW_HEADERS_TOO_LARGE',
      '1200 fields',
    );
    await assertRefused(
      `GET /big HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`,
      431,
      'GW_HEADERS_TOO_LARGE',
      'big field',
    );
    await assertRefused(
      `GET /${'a'.repeat(40_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
      414,
      'GW_URI_TOO_LONG',
      'long target',
    );
  });

  it('answers 417 to expectations other than 100-continue (RFC 9110 §10.1.1)', async () => {
    await assertRefused('GET /e HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n', 417, 'GW_EXPECTATION_FAILED');
    const ok = await exchange(
      'POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi',
    );
    assert.deepEqual(
      ok.res.map((r) => r.status),
      [100, 200],
    );
    assert.equal((JSON.parse(ok.res[1]!.body) as Echo).headers.expect, undefined);
  });

  it('forwards no TE for an HTTP/1.1 client (it gets no trailers, §10.1.4) and no other hop-by-hop field (RFC 9110 §7.6.1)', async () => {
    const echo = await proxied(
      'GET /te HTTP/1.1\r\nHost: x\r\nTE: trailers, deflate;q=0.5\r\nConnection: TE, close, X-Hop\r\nX-Hop: 1\r\n' +
        'Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eDp5\r\n\r\n',
    );
    assert.equal(echo.headers.te, undefined, '`trailers` would promise trailers an HTTP/1.1 client never gets');
    for (const name of ['x-hop', 'keep-alive', 'proxy-connection', 'proxy-authorization'])
      assert.equal(echo.headers[name], undefined, name);
    const gzip = await proxied('GET /te HTTP/1.1\r\nHost: x\r\nTE: gzip, xtrailers\r\nConnection: close\r\n\r\n');
    assert.equal(gzip.headers.te, undefined);
  });

  it('never tunnels a non-WebSocket Upgrade: served as a plain request, then the connection closes', async () => {
    const { res, closed } = await exchange(
      'GET /up HTTP/1.1\r\nHost: x\r\nUpgrade: foo/1\r\nConnection: Upgrade\r\n\r\nSSH-2.0-evil\r\n\r\n',
    );
    assert.deepEqual(
      res.map((r) => r.status),
      [200],
    );
    assert.equal(res[0]!.headers.connection?.toLowerCase(), 'close');
    assert.equal((JSON.parse(res[0]!.body) as Echo).headers.upgrade, undefined);
    assert.ok(closed);
    assert.doesNotMatch(upstreamBytes, /SSH-2\.0/);
  });

  it('answers 408 to a client that stops sending its body, and the upstream request is abandoned', async () => {
    const { res, closed } = await exchange('POST /slow-body HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello');
    assert.equal(res.at(-1)?.status, 408);
    assert.ok(closed);
    assert.ok(!seen.some((e) => e.url === '/slow-body'), 'the upstream never saw a complete request');
  });

  // Last but one: the flood's first requests may still be reaching the upstream when it returns.
  it('drops a connection that floods it with pipelined requests', async () => {
    const flood = await exchange('GET /flood HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(1000));
    assert.ok(flood.closed);
    assert.ok(flood.res.length < 1000);
  });

  it('is still up and serving after all of the above', async () => {
    const echo = await proxied('GET /alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.equal(echo.url, '/alive');
    assert.equal(p.child.exitCode, null);
    assert.doesNotMatch(p.stderr, /Error|at .*\.ts:\d+/);
  });
});
