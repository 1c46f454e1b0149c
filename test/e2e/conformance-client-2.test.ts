/**
 * End to end, a second adversarial pass over how the HTTP/1.1 listener treats hostile and malformed clients
 * (RFC 9112, RFC 9110), on what conformance-client.test.ts does not cover: request-line leniency, targets
 * with raw bytes, Host values that are lists, a client's FIN (plain, h2c and TLS listeners), fields in
 * the trailer section, Max-Forwards values that are not numbers, Connection nominating framing fields, and
 * refusals that leave a body unread. Raw bytes over node:net / node:tls into the real portico process, in
 * front of a raw upstream that records every byte it receives, so nothing ambiguous can reach it unseen.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { onRequests, type RawRequest, type RawUpstream, startRawUpstream } from '../helpers/raw-upstream.ts';
import { certDir, makeCert } from '../helpers/tls-certs.ts';

interface Parsed {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** What the upstream read of one request: its head as sent, and its body with the chunk framing removed. */
interface Echo {
  readonly head: string;
  readonly body: string;
}

/** Splits a raw HTTP/1 response stream into responses (Content-Length bodies; 1xx, 204 and 304 have none). */
function parseResponses(raw: string, method = 'GET'): Parsed[] {
  const out: Parsed[] = [];
  let rest = raw;
  for (let guard = 0; guard < 50 && rest.length > 0; guard++) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) break;
    const [statusLine = '', ...lines] = rest.slice(0, end).split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3})/.exec(statusLine);
    if (!m) break;
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    rest = rest.slice(end + 4);
    const status = Number(m[1]);
    const length =
      status < 200 || status === 204 || status === 304 || method === 'HEAD' ? 0 : headers['content-length'];
    const n = Number(length ?? rest.length);
    out.push({ status, headers, body: rest.slice(0, n) });
    rest = rest.slice(n);
  }
  return out;
}

/** Removes the chunk framing of a chunked body as the upstream received it (extensions and trailers dropped). */
function unchunk(body: string): string {
  let out = '';
  let rest = body;
  for (let guard = 0; guard < 1000; guard++) {
    const eol = rest.indexOf('\r\n');
    if (eol < 0) break;
    const size = Number.parseInt(rest.slice(0, eol), 16);
    if (!(size > 0)) break;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
  return out;
}

describe('client conformance, second pass (RFC 9112 / RFC 9110)', () => {
  let upstream: RawUpstream;
  let p: PorticoProcess;
  /** Every request the upstream read in full, in order. */
  const seen: RawRequest[] = [];

  /** Every byte the upstream received so far, all connections. */
  function upstreamBytes(): string {
    return upstream.connections.map((c) => c.received().toString('latin1')).join('');
  }

  before(async () => {
    upstream = await startRawUpstream((conn) => {
      onRequests(conn.socket, (req) => {
        seen.push(req);
        const te = req.headers['transfer-encoding'] !== undefined;
        const echo: Echo = {
          head: req.head,
          body: te ? unchunk(req.body.toString('latin1')) : req.body.toString('latin1'),
        };
        const json = JSON.stringify(echo);
        // A slow answer, so that a client's FIN arrives while its request is still being served.
        const delay = req.path.startsWith('/slow') ? 150 : 0;
        setTimeout(() => {
          if (!conn.socket.destroyed)
            conn.socket.write(
              `HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(json, 'latin1')}\r\n\r\n${json}`,
              'latin1',
            );
        }, delay);
      });
    });
    const dir = certDir();
    const cert = makeCert(dir, ['DNS:localhost']);
    const limits = '{ headersTimeout: 2s, requestTimeout: 3s, idleTimeout: 5s }';
    p = await startPortico(`
listeners:
  - { name: web, protocol: http, address: 127.0.0.1:0, limits: ${limits} }
  - { name: h2c, protocol: http, address: 127.0.0.1:0, h2c: true, limits: ${limits} }
  - name: tls
    protocol: https
    address: 127.0.0.1:0
    limits: ${limits}
    tls: { certificates: [ { cert: ${cert.cert}, key: ${cert.key} } ] }
upstreams: [ { name: echo, targets: [ { url: ${upstream.url} } ] } ]
routes:
  - { name: kept, match: { host: kept.example, path: /* }, upstream: echo, preserveHost: true }
  - { name: api, match: { path: /api/* }, upstream: echo }
  - { name: slow, match: { path: /slow/* }, upstream: echo }
`);
  });

  after(async () => {
    await p?.stop();
    await upstream?.close();
  });

  /**
   * Sends `data` on a new connection (optionally followed by a FIN); resolves with what came back once the
   * server closed the connection, or after `ms`.
   */
  async function exchange(
    data: string,
    options: { listener?: string; fin?: boolean; ms?: number; method?: string } = {},
  ): Promise<{ raw: string; closed: boolean; res: Parsed[] }> {
    const listener = options.listener ?? 'web';
    let socket: Socket;
    if (listener === 'tls') {
      socket = tlsConnect({
        port: p.port(listener),
        host: '127.0.0.1',
        servername: 'localhost',
        rejectUnauthorized: false,
        ALPNProtocols: ['http/1.1'],
        allowHalfOpen: true,
      } as ConnectionOptions);
      await once(socket, 'secureConnect');
    } else {
      socket = connect({ port: p.port(listener), host: '127.0.0.1', allowHalfOpen: true });
      await once(socket, 'connect');
    }
    let raw = '';
    socket.on('data', (c: Buffer) => {
      raw += c.toString('latin1');
    });
    socket.on('error', () => {});
    // A FIN from the server must not end the client's side before everything it sent was read.
    socket.on('end', () => socket.end());
    const closed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), options.ms ?? 4000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    socket.write(Buffer.from(data, 'latin1'));
    if (options.fin === true) socket.end();
    const wasClosed = await closed;
    socket.destroy();
    return { raw, closed: wasClosed, res: parseResponses(raw, options.method) };
  }

  /** A refusal: one problem+json reply with this status, the connection closed, no byte upstream. */
  async function assertRefused(data: string, status: number, label: string): Promise<void> {
    const before = upstreamBytes().length;
    const { res, closed } = await exchange(data);
    assert.deepEqual(
      res.map((r) => r.status),
      [status],
      `${label}: one ${status}`,
    );
    assert.equal(res[0]!.headers['content-type'], 'application/problem+json', `${label}: problem+json`);
    assert.ok(closed, `${label}: connection closed`);
    assert.equal(upstreamBytes().slice(before), '', `${label}: nothing reached the upstream`);
  }

  /** Proxied: one 200 from the upstream; returns what the upstream read. */
  async function proxied(data: string, label: string): Promise<Echo> {
    const { res } = await exchange(data);
    assert.equal(res[0]?.status, 200, `${label}: proxied`);
    return JSON.parse(res[0]!.body) as Echo;
  }

  it('request line: extra spaces and leading empty lines are tolerated, and re-framed canonically upstream (§3, §2.2)', async () => {
    // RFC 9112 §3 lets a recipient split the request line on whitespace runs; nginx and HAProxy do. What goes
    // upstream is always one space between three parts, so nothing is read two ways.
    const spaces = await proxied('GET  /api/spaces  HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 'spaces');
    assert.match(spaces.head, /^GET \/api\/spaces HTTP\/1\.1\r\n/);
    // §2.2: a server SHOULD ignore at least one empty line before the request line.
    const empty = await proxied(
      '\r\n\r\nGET /api/empty-lines HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
      'CRLFs',
    );
    assert.match(empty.head, /^GET \/api\/empty-lines HTTP\/1\.1\r\n/);
    // A space after the version, a tab as separator, whitespace before the method: malformed (400).
    await assertRefused('GET /api/v HTTP/1.1 \r\nHost: x\r\n\r\n', 400, 'space after the version');
    await assertRefused('GET\t/api/v\tHTTP/1.1\r\nHost: x\r\n\r\n', 400, 'tabs');
    await assertRefused(' GET /api/v HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'leading space');
    await assertRefused('GET /api/v HTTP/1.1\rHost: x\r\n\r\n', 400, 'bare CR after the request line');
  });

  it('request target: NUL, DEL, control and non-ASCII bytes are refused with 400, never passed on (§3.2, RFC 3986)', async () => {
    const bad: Record<string, string> = {
      NUL: '/api/a\x00b',
      DEL: '/api/a\x7fb',
      'control character': '/api/a\x01b',
      'raw byte over 0x7f': '/api/caf\xe9',
      'no leading slash': 'api/x',
      'query only': '?a=1',
    };
    for (const [label, target] of Object.entries(bad))
      await assertRefused(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`, 400, label);
    // The same bytes percent-encoded are a valid target and reach the upstream as sent.
    const encoded = await proxied('GET /api/caf%C3%A9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 'encoded');
    assert.match(encoded.head, /^GET \/api\/caf%C3%A9 HTTP\/1\.1\r\n/);
  });

  it('an absolute-form target replaces Host, also for a route that preserves Host (§3.2.2)', async () => {
    const echo = await proxied(
      'GET http://kept.example/a HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n',
      'absolute-form',
    );
    assert.match(echo.head, /^GET \/a HTTP\/1\.1\r\n/);
    assert.match(echo.head, /\r\nhost: kept\.example\r\n/i);
    assert.doesNotMatch(echo.head, /other\.example/);
    // And the other way round: Host names the preserving route, the target another host: the target wins.
    const { res } = await exchange(
      'GET http://elsewhere.example/api/x HTTP/1.1\r\nHost: kept.example\r\nConnection: close\r\n\r\n',
    );
    const other = JSON.parse(res[0]!.body) as Echo;
    assert.doesNotMatch(other.head, /kept\.example/);
    assert.match(other.head, /\r\nx-forwarded-host: elsewhere\.example\r\n/);
  });

  it('a Host that is a list (a comma: two Host fields joined) is refused, as two Host lines are (§3.2, RFC 9110 §5.3)', async () => {
    // Routed on the whole value, it would reach the backend as `X-Forwarded-Host: a,b`, a list a framework
    // reads one member of: a route bound to one of those hosts would be skipped for a backend that believes
    // it serves it.
    await assertRefused('GET /api/h HTTP/1.1\r\nHost: other.example,kept.example\r\n\r\n', 400, 'Host a,b');
    await assertRefused('GET /api/h HTTP/1.1\r\nHost: kept.example, x\r\n\r\n', 400, 'Host a, b');
    await assertRefused('GET http://x,kept.example/api/h HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'absolute-form a,b');
    // The other sub-delimiters RFC 3986 allows in a reg-name still pass.
    const echo = await proxied("GET /api/h HTTP/1.1\r\nHost: a!$&'()*+;=b\r\nConnection: close\r\n\r\n", 'sub-delims');
    assert.match(echo.head, /\r\nx-forwarded-host: a!\$&'\(\)\*\+;=b\r\n/);
  });

  describe("a client's FIN is taken as leaving, as nginx and Caddy do: the request in progress is abandoned", () => {
    for (const listener of ['web', 'h2c', 'tls']) {
      it(`${listener}: one request, then FIN: no answer, the upstream request aborted, logged 499`, async () => {
        const path = `/slow/fin-${listener}`;
        const { res, closed } = await exchange(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, { listener, fin: true });
        assert.deepEqual(res, []);
        assert.ok(closed);
        const line = await p.waitFor((l) => l.msg === 'request' && l.path === path);
        assert.equal(line.status, 499);
        assert.equal(line.aborted, true);
      });
    }

    it('a FIN in the middle of a body is an incomplete request: 400, and the upstream never gets it whole', async () => {
      const { res, closed } = await exchange(
        'POST /api/cut HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n',
        { fin: true },
      );
      assert.ok(res.length === 0 || (res.length === 1 && res[0]!.status === 400), 'no answer, or a 400');
      assert.ok(closed);
      assert.ok(!seen.some((r) => r.path === '/api/cut'), 'no complete request upstream');
    });

    it('a partial request after a complete one, then a FIN: the partial one never reaches the upstream', async () => {
      const { closed } = await exchange('GET /slow/then-part HTTP/1.1\r\nHost: x\r\n\r\nGET /api/partial HT', {
        fin: true,
      });
      assert.ok(closed);
      assert.ok(!seen.some((r) => r.path === '/api/partial'));
    });
  });

  it('trailer fields are never merged into the head; framing fields there are refused and the body aborted (RFC 9110 §6.5)', async () => {
    const head = 'POST /api/tr HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n';
    const echo = await proxied(
      `${head}5\r\nhello\r\n0\r\nHost: evil.example\r\nAuthorization: Bearer forged\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n`,
      'routing and credential fields in trailers',
    );
    assert.equal(echo.body, 'hello');
    assert.doesNotMatch(echo.head, /evil\.example|forged|6\.6\.6\.6/);
    const tail = seen.at(-1)!.body.toString('latin1');
    assert.ok(tail.endsWith('0\r\n\r\n'), 'no trailer section upstream');

    // llhttp reads Content-Length or Transfer-Encoding in a trailer section as a framing conflict: 400. The
    // body already streaming upstream is cut off there, never completed.
    for (const field of ['Content-Length: 5', 'Transfer-Encoding: chunked']) {
      const path = `/api/tr-${field.length}`;
      const { res, closed } = await exchange(
        `POST ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n${field}\r\n\r\n`,
      );
      assert.deepEqual(
        res.map((r) => r.status),
        [400],
        field,
      );
      assert.ok(closed, field);
      assert.ok(!seen.some((r) => r.path === path), `${field}: no complete request upstream`);
    }
  });

  it('Max-Forwards on OPTIONS: only 1*DIGIT counts; a huge value is capped, never rounded up (RFC 9110 §7.6.2)', async () => {
    const options = (value: string): string =>
      `OPTIONS /api/mf HTTP/1.1\r\nHost: x\r\nMax-Forwards: ${value}\r\nConnection: close\r\n\r\n`;
    const huge = await proxied(options('99999999999999999999'), 'huge');
    assert.match(huge.head, /\r\nmax-forwards: 2147483647(\r\n|$)/);
    const big = await proxied(options('9007199254740993'), '2^53 + 1');
    assert.match(big.head, /\r\nmax-forwards: 2147483647(\r\n|$)/);
    const ten = await proxied(options('010'), 'leading zero');
    assert.match(ten.head, /\r\nmax-forwards: 9(\r\n|$)/);
    // Not a number: not a hop count; passed on untouched rather than read as 0 (answered here) or as hex.
    for (const value of ['', '0x10', '1e3', '-1', 'abc']) {
      const { res } = await exchange(options(value));
      assert.equal(res[0]?.status, 200, JSON.stringify(value));
      assert.equal(res[0]!.headers.allow, undefined, `${JSON.stringify(value)}: forwarded, not answered here`);
      const echo = JSON.parse(res[0]!.body) as Echo;
      assert.match(echo.head, new RegExp(`\\r\\nmax-forwards: ${value.replace(/[+.]/g, '\\$&')}(\\r\\n|$)`), value);
    }
  });

  it('Connection nominating Host, Content-Length or Transfer-Encoding never breaks the framing (RFC 9110 §7.6.1)', async () => {
    const { res, closed } = await exchange(
      'POST /api/n1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: Content-Length, Host\r\n\r\nhello' +
        'POST /api/n2 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: Transfer-Encoding\r\n\r\n' +
        '3\r\nabc\r\n0\r\n\r\nGET /api/n3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    );
    assert.ok(closed);
    const echoes = res.map((r) => JSON.parse(r.body) as Echo);
    assert.deepEqual(
      echoes.map((e) => [e.head.split(' ')[1], e.body]),
      [
        ['/api/n1', 'hello'],
        ['/api/n2', 'abc'],
        ['/api/n3', ''],
      ],
    );
    for (const e of echoes) assert.equal(e.head.match(/\r\nhost: /gi)?.length, 1, 'exactly one Host upstream');
  });

  it('underscore aliases of the forwarding fields never reach the upstream (CGI reads `_` as `-`)', async () => {
    const echo = await proxied(
      'GET /api/alias HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 6.6.6.6\r\nx-forwarded_proto: https\r\n' +
        'X_Forwarded-Host: evil.example\r\nX_Custom: kept\r\nConnection: close\r\n\r\n',
      'aliases',
    );
    assert.doesNotMatch(echo.head, /6\.6\.6\.6|https|evil\.example/);
    assert.equal(echo.head.match(/\r\nx.forwarded.for: /gi)?.length, 1);
    assert.match(echo.head, /\r\nx-forwarded-for: 127\.0\.0\.1\r\n/);
    assert.match(echo.head, /\r\nx_custom: kept\r\n/, 'other names with `_` pass');
  });

  it('a refusal before routing or forwarding never lets the unread body through as a request (RFC 9112 §6.3)', async () => {
    const smuggled = 'GET /api/smuggled HTTP/1.1\r\nHost: x\r\n\r\n';
    const cases: Record<string, string> = {
      'no route (404)': `POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
      'no route, chunked': `POST /nowhere HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`,
      '404 after Expect: 100-continue': `POST /nowhere HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
      'TRACE (405)': `TRACE /api/t HTTP/1.1\r\nHost: x\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
      'OPTIONS answered here': `OPTIONS /api/o HTTP/1.1\r\nHost: x\r\nMax-Forwards: 0\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`,
    };
    for (const [label, data] of Object.entries(cases)) {
      const { res, closed } = await exchange(`${data}GET /api/after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      assert.ok(res.length >= 1 && res[0]!.status >= 200, label);
      assert.ok(closed, label);
    }
    assert.doesNotMatch(upstreamBytes(), /smuggled/);
  });

  it('is still up and serving after all of the above', async () => {
    const echo = await proxied('GET /api/alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 'alive');
    assert.match(echo.head, /^GET \/api\/alive /);
    assert.equal(p.child.exitCode, null);
    assert.doesNotMatch(p.stderr, /Error|at .*\.ts:\d+/);
  });
});
