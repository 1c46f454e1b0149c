/**
 * End to end, against RFC 9112 / RFC 9110 and how nginx, HAProxy and Caddy treat broken backends: raw
 * node:net upstreams write exact bytes, the real portico process sits in front. Before the response started a
 * misbehaving upstream gets the client a problem+json 502 (504 on a timeout) with no upstream address in it;
 * after it started, the client connection is aborted so a truncated body never looks complete.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Agent, request } from 'node:http';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { Session } from '../helpers/raw-session.ts';

// --- a raw upstream: parses request heads, hands each to a handler that writes exact bytes ---

interface RawRequest {
  readonly method: string;
  readonly path: string;
  readonly head: string;
  /** 1 for the first request on its connection, 2 for the next… */
  readonly seq: number;
  /** Which connection of this server (1, 2, …). */
  readonly conn: number;
}

type RawHandler = (socket: Socket, req: RawRequest) => void;

interface RawUpstream {
  readonly url: string;
  readonly requests: RawRequest[];
  connections: number;
  close(): Promise<void>;
}

async function rawUpstream(handler: RawHandler, onConnection?: (socket: Socket) => boolean): Promise<RawUpstream> {
  const sockets = new Set<Socket>();
  const up: { requests: RawRequest[]; connections: number } = { requests: [], connections: 0 };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const conn = ++up.connections;
    if (onConnection?.(socket) === false) return;
    let buffered = Buffer.alloc(0);
    let skip = 0;
    let seq = 0;
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      for (let guard = 0; guard < 100; guard++) {
        if (skip > 0) {
          const n = Math.min(skip, buffered.length);
          skip -= n;
          buffered = buffered.subarray(n);
          if (skip > 0) return;
        }
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buffered.subarray(0, end).toString('latin1');
        buffered = buffered.subarray(end + 4);
        const [method = '', path = ''] = head.split(' ');
        const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
        skip = cl ? Number(cl[1]) : 0;
        const req = { method, path, head, seq: ++seq, conn };
        up.requests.push(req);
        if (socket.destroyed) return;
        handler(socket, req);
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get requests() {
      return up.requests;
    },
    get connections() {
      return up.connections;
    },
    async close() {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close').catch(() => {});
    },
  };
}

// --- clients ---

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly rawHeaders: string[];
  readonly body: string;
  /** The whole response arrived (false: the connection was cut before its end). */
  readonly complete: boolean;
  /** Error before any response head (status 0). */
  readonly error?: string;
}

/** One request on a fresh connection; never rejects: a cut response comes back with complete false. */
function call(
  base: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  return new Promise((resolve) => {
    const req = request(`${base}${path}`, { method: options.method ?? 'GET', headers: options.headers, agent: false });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let done = false;
      const finish = (complete: boolean) => {
        if (done) return;
        done = true;
        resolve({
          status: res.statusCode!,
          headers: res.headers,
          rawHeaders: res.rawHeaders,
          body: Buffer.concat(chunks).toString('latin1'),
          complete,
        });
      };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => finish(res.complete));
      res.on('error', () => finish(false));
      res.on('aborted', () => finish(false));
      res.on('close', () => finish(res.complete));
    });
    req.on('error', (err: Error & { code?: string }) => {
      resolve({ status: 0, headers: {}, rawHeaders: [], body: '', complete: false, error: err.code ?? err.message });
    });
    req.end(options.body);
  });
}

function assertProblem(r: Reply, status: number, code: string): void {
  assert.equal(r.status, status, `status (body: ${r.body}, error: ${r.error ?? ''})`);
  assert.equal(r.headers['content-type'], 'application/problem+json');
  const body = JSON.parse(r.body) as { code: string; status: number };
  assert.equal(body.code, code);
  assert.equal(body.status, status);
  assert.doesNotMatch(r.body, /127\.0\.0\.1|localhost|:\d{4,5}\b|\bat\s|Error:/, 'no address, message or stack');
  assert.ok(r.complete);
}

/** The client did not get a complete response: an error before the head, or a cut body. */
function assertCut(r: Reply): void {
  assert.equal(r.complete, false, `expected a cut response, got ${r.status} ${JSON.stringify(r.body)}`);
  if (r.status !== 0) assert.notEqual(r.headers['content-type'], 'application/problem+json');
}

// --- the scenarios ---

const CRLF = '\r\n';

/** Writes a response and keeps the connection open. */
function send(socket: Socket, text: string): void {
  socket.write(text, 'latin1');
}

/** path → what the upstream writes (and whether it then closes). */
const SCRIPTS: Record<string, (s: Socket) => void> = {
  // status line
  '/status/garbage': (s) => s.end(`HTTP/1.1 2x0 OK${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/status/99': (s) => s.end(`HTTP/1.1 99 x${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/status/600': (s) => send(s, `HTTP/1.1 600 Weird${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/status/999': (s) => send(s, `HTTP/1.1 999 Weird${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/status/1000': (s) => s.end(`HTTP/1.1 1000 Weird${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/status/version': (s) => s.end(`HTTP/9.9 200 OK${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  // Versions llhttp parses but that cannot answer on an HTTP/1.1 connection (RFC 9112 §2.3).
  '/status/version-2': (s) => s.end(`HTTP/2.0 200 OK${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/status/version-09': (s) => s.end(`HTTP/0.9 200 OK${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/status/no-reason': (s) => send(s, `HTTP/1.1 200 ${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/status/odd-reason': (s) => send(s, `HTTP/1.1 200 Très bien\t!${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/status/empty': (s) => s.end(),
  '/status/reset': (s) => s.resetAndDestroy(),
  // framing (RFC 9112 §6.3)
  '/frame/cl-te': (s) =>
    send(
      s,
      `HTTP/1.1 200 OK${CRLF}content-length: 5${CRLF}transfer-encoding: chunked${CRLF}${CRLF}5${CRLF}hello${CRLF}0${CRLF}${CRLF}`,
    ),
  '/frame/dup-cl': (s) =>
    send(s, `HTTP/1.1 200 OK${CRLF}content-length: 5${CRLF}content-length: 6${CRLF}${CRLF}hello!`),
  '/frame/list-cl': (s) => send(s, `HTTP/1.1 200 OK${CRLF}content-length: 5, 6${CRLF}${CRLF}hello!`),
  '/frame/bad-cl': (s) => send(s, `HTTP/1.1 200 OK${CRLF}content-length: 5x${CRLF}${CRLF}hello`),
  '/frame/neg-cl': (s) => send(s, `HTTP/1.1 200 OK${CRLF}content-length: -5${CRLF}${CRLF}hello`),
  '/frame/plus-cl': (s) => send(s, `HTTP/1.1 200 OK${CRLF}content-length: +5${CRLF}${CRLF}hello`),
  '/frame/te-gzip': (s) => s.end(`HTTP/1.1 200 OK${CRLF}transfer-encoding: gzip${CRLF}${CRLF}not really gzip`),
  '/frame/te-gzip-chunked': (s) =>
    send(s, `HTTP/1.1 200 OK${CRLF}transfer-encoding: gzip, chunked${CRLF}${CRLF}4${CRLF}gzip${CRLF}0${CRLF}${CRLF}`),
  '/frame/te-twice': (s) =>
    send(
      s,
      `HTTP/1.1 200 OK${CRLF}transfer-encoding: chunked${CRLF}transfer-encoding: chunked${CRLF}${CRLF}2${CRLF}ok${CRLF}0${CRLF}${CRLF}`,
    ),
  '/frame/te-upper': (s) =>
    send(s, `HTTP/1.1 200 OK${CRLF}Transfer-Encoding: Chunked${CRLF}${CRLF}2${CRLF}ok${CRLF}0${CRLF}${CRLF}`),
  '/frame/short-body': (s) => {
    send(s, `HTTP/1.1 200 OK${CRLF}content-length: 100${CRLF}${CRLF}0123456789`);
    setTimeout(() => s.end(), 30);
  },
  '/frame/bad-chunk': (s) => {
    send(s, `HTTP/1.1 200 OK${CRLF}transfer-encoding: chunked${CRLF}${CRLF}5${CRLF}hello${CRLF}`);
    setTimeout(() => s.end(`zz${CRLF}garbage${CRLF}0${CRLF}${CRLF}`), 30);
  },
  '/frame/chunk-close': (s) => {
    send(s, `HTTP/1.1 200 OK${CRLF}transfer-encoding: chunked${CRLF}${CRLF}5${CRLF}hello${CRLF}`);
    setTimeout(() => s.end(), 30);
  },
  '/frame/chunk-short': (s) => {
    send(s, `HTTP/1.1 200 OK${CRLF}transfer-encoding: chunked${CRLF}${CRLF}a${CRLF}hello`);
    setTimeout(() => s.end(), 30);
  },
  // read until close (RFC 9112 §6.3 rule 8)
  '/close/http10': (s) => {
    send(s, `HTTP/1.0 200 OK${CRLF}content-type: text/plain${CRLF}${CRLF}first,`);
    setTimeout(() => s.end('second,third'), 20);
  },
  '/close/http11': (s) => {
    send(s, `HTTP/1.1 200 OK${CRLF}connection: close${CRLF}${CRLF}first,`);
    setTimeout(() => s.end('second,third'), 20);
  },
  '/close/bare': (s) => {
    send(s, `HTTP/1.1 200 OK${CRLF}content-type: text/plain${CRLF}${CRLF}first,`);
    setTimeout(() => s.end('second,third'), 20);
  },
  // interim responses (RFC 9110 §15.2)
  '/info/100': (s) =>
    send(s, `HTTP/1.1 100 Continue${CRLF}${CRLF}HTTP/1.1 200 OK${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/info/102': (s) => {
    send(s, `HTTP/1.1 102 Processing${CRLF}${CRLF}`);
    setTimeout(() => send(s, `HTTP/1.1 200 OK${CRLF}content-length: 2${CRLF}${CRLF}ok`), 20);
  },
  '/info/many': (s) =>
    send(
      s,
      `HTTP/1.1 100 Continue${CRLF}${CRLF}HTTP/1.1 102 Processing${CRLF}${CRLF}` +
        `HTTP/1.1 103 Early Hints${CRLF}link: </a.css>; rel=preload${CRLF}${CRLF}` +
        `HTTP/1.1 200 OK${CRLF}content-length: 2${CRLF}${CRLF}ok`,
    ),
  '/info/endless': (s) => {
    const timer = setInterval(() => {
      if (s.destroyed) clearInterval(timer);
      else send(s, `HTTP/1.1 102 Processing${CRLF}${CRLF}`);
    }, 20);
  },
  '/info/101': (s) =>
    send(s, `HTTP/1.1 101 Switching Protocols${CRLF}upgrade: foo${CRLF}connection: upgrade${CRLF}${CRLF}hello`),
  // timeouts
  '/slow/never': () => {},
  '/slow/half-head': (s) => send(s, `HTTP/1.1 200 OK${CRLF}content-type: text/pl`),
  '/slow/stall-body': (s) => send(s, `HTTP/1.1 200 OK${CRLF}content-length: 10${CRLF}${CRLF}12345`),
  // headers
  '/hdr/huge': (s) =>
    send(s, `HTTP/1.1 200 OK${CRLF}x-big: ${'a'.repeat(64 * 1024)}${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/hdr/obs-fold': (s) =>
    send(s, `HTTP/1.1 200 OK${CRLF}x-folded: one${CRLF} two${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/hdr/nul': (s) => send(s, `HTTP/1.1 200 OK${CRLF}x-bad: a\u0000b${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/hdr/space-colon': (s) => send(s, `HTTP/1.1 200 OK${CRLF}x-bad : v${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/hdr/bad-name': (s) => send(s, `HTTP/1.1 200 OK${CRLF}x(bad): v${CRLF}content-length: 2${CRLF}${CRLF}ok`),
  '/hdr/cookies': (s) =>
    send(
      s,
      `HTTP/1.1 200 OK${CRLF}set-cookie: a=1; Path=/${CRLF}Set-Cookie: b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT${CRLF}` +
        `set-cookie: c=3${CRLF}SET-COOKIE: d=4; HttpOnly${CRLF}content-length: 2${CRLF}${CRLF}ok`,
    ),
};

describe('conformance: misbehaving upstreams', () => {
  let p: PorticoProcess;
  let scripted: RawUpstream;
  let base: string;
  const extra: RawUpstream[] = [];

  /** Upstreams that need connections of their own (keep-alive reuse is what they test). */
  let nobody: RawUpstream;
  let extraBytes: RawUpstream;
  let closing: RawUpstream;
  let stale: RawUpstream;
  let idleClose: RawUpstream;
  let slam: RawUpstream;
  let early: RawUpstream;

  before(async () => {
    scripted = await rawUpstream((s, req) => {
      const script = SCRIPTS[req.path];
      if (script === undefined) s.end(`HTTP/1.1 404 Not Found${CRLF}content-length: 0${CRLF}${CRLF}`);
      else script(s);
    });
    // Bodies where none may be (HEAD, 204, 304): a following request on the connection must get its own answer.
    const leak = `HTTP/1.1 200 OK${CRLF}content-length: 4${CRLF}${CRLF}evil`;
    nobody = await rawUpstream((s, req) => {
      if (req.path === '/nobody/204')
        send(s, `HTTP/1.1 204 No Content${CRLF}content-length: ${leak.length}${CRLF}${CRLF}${leak}`);
      else if (req.path === '/nobody/204-bare') send(s, `HTTP/1.1 204 No Content${CRLF}${CRLF}${leak}`);
      else if (req.path === '/nobody/304')
        send(s, `HTTP/1.1 304 Not Modified${CRLF}content-length: ${leak.length}${CRLF}${CRLF}${leak}`);
      else if (req.method === 'HEAD')
        send(s, `HTTP/1.1 200 OK${CRLF}content-length: ${leak.length}${CRLF}${CRLF}${leak}`);
      else send(s, `HTTP/1.1 200 OK${CRLF}content-length: 4${CRLF}${CRLF}fine`);
    });
    // More body than Content-Length said.
    extraBytes = await rawUpstream((s, req) => {
      if (req.path === '/extra/long') send(s, `HTTP/1.1 200 OK${CRLF}content-length: 5${CRLF}${CRLF}hello${leak}`);
      else send(s, `HTTP/1.1 200 OK${CRLF}content-length: 4${CRLF}${CRLF}fine`);
    });
    // Says Connection: close but leaves the socket open.
    closing = await rawUpstream((s) =>
      send(s, `HTTP/1.1 200 OK${CRLF}connection: close${CRLF}content-length: 2${CRLF}${CRLF}ok`),
    );
    // Answers the first request of a connection, drops the connection on the next (a keep-alive race, made certain).
    stale = await rawUpstream((s, req) => {
      if (req.seq > 1) s.destroy();
      else send(s, `HTTP/1.1 200 OK${CRLF}content-length: 4${CRLF}${CRLF}c${req.conn}r${req.seq}`);
    });
    // Closes each connection shortly after its first answer, while it is idle in the pool.
    idleClose = await rawUpstream((s, req) => {
      send(s, `HTTP/1.1 200 OK${CRLF}content-length: 4${CRLF}${CRLF}c${req.conn}r${req.seq}`);
      setTimeout(() => s.end(), 20);
    });
    // Closes every connection as soon as it is accepted.
    slam = await rawUpstream(
      () => {},
      (s) => {
        s.end();
        return false;
      },
    );
    // Answers as soon as the request head arrives, without waiting for the body (RFC 9112 §9.3's early response).
    early = await rawUpstream((s, req) => {
      const status = req.path === '/early/401' ? '401 Unauthorized' : '413 Content Too Large';
      send(s, `HTTP/1.1 ${status}${CRLF}connection: close${CRLF}content-length: 4${CRLF}${CRLF}nope`);
      // Keep reading what the client still sends, then close, as servers that answer early do.
      setTimeout(() => s.end(), 200);
    });
    extra.push(nobody, extraBytes, closing, stale, idleClose, slam, early);
    const up = (name: string, u: RawUpstream, more = '') =>
      `  - { name: ${name}, targets: [ { url: ${u.url} } ], timeouts: { response: 400ms, idle: 400ms }${more} }`;
    const route = (prefix: string, upstream: string) =>
      `  - { name: ${prefix}, match: { path: /${prefix}/* }, upstream: ${upstream} }`;
    p = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams:
${up('scripted', scripted)}
${up('nobody', nobody)}
${up('extra', extraBytes)}
${up('closing', closing)}
${up('stale', stale)}
${up('idleclose', idleClose)}
${up('slam', slam)}
${up('early', early)}
routes:
${route('nobody', 'nobody')}
${route('extra', 'extra')}
${route('closing', 'closing')}
${route('stale', 'stale')}
${route('idleclose', 'idleclose')}
${route('slam', 'slam')}
${route('early', 'early')}
  - { name: scripted, match: { path: /* }, upstream: scripted }
`);
    base = p.url();
  });

  after(async () => {
    await p?.stop();
    await scripted?.close();
    for (const u of extra) await u.close();
  });

  describe('status line (RFC 9112 §4, RFC 9110 §15)', () => {
    for (const path of [
      '/status/garbage',
      '/status/99',
      '/status/600',
      '/status/999',
      '/status/1000',
      '/status/version',
      '/status/version-2',
      '/status/version-09',
    ]) {
      it(`${path} → 502 GW_UPSTREAM_BAD_RESPONSE`, async () => {
        assertProblem(await call(base, path), 502, 'GW_UPSTREAM_BAD_RESPONSE');
      });
    }
    it('a missing reason phrase is legal', async () => {
      const r = await call(base, '/status/no-reason');
      assert.equal(r.status, 200);
      assert.equal(r.body, 'ok');
    });
    it('any reason phrase is passed over (the client gets its own)', async () => {
      const r = await call(base, '/status/odd-reason');
      assert.equal(r.status, 200);
      assert.equal(r.body, 'ok');
    });
    it('an upstream that closes without a word → 502 GW_UPSTREAM_RESET', async () => {
      assertProblem(await call(base, '/status/empty'), 502, 'GW_UPSTREAM_RESET');
      assertProblem(await call(base, '/status/reset'), 502, 'GW_UPSTREAM_RESET');
    });
  });

  describe('message framing (RFC 9112 §6, §7)', () => {
    it('Content-Length with Transfer-Encoding → 502 (smuggling vector, RFC 9112 §6.3 rule 3)', async () => {
      assertProblem(await call(base, '/frame/cl-te'), 502, 'GW_UPSTREAM_BAD_RESPONSE');
    });
    for (const path of ['/frame/dup-cl', '/frame/list-cl', '/frame/bad-cl', '/frame/neg-cl', '/frame/plus-cl']) {
      it(`${path}: invalid Content-Length → 502 (RFC 9112 §6.3 rule 5)`, async () => {
        assertProblem(await call(base, path), 502, 'GW_UPSTREAM_BAD_RESPONSE');
      });
    }
    it('a transfer coding other than chunked → 502 (the body cannot be forwarded as is, RFC 9112 §6.1)', async () => {
      assertProblem(await call(base, '/frame/te-gzip'), 502, 'GW_UPSTREAM_BAD_RESPONSE');
      assertProblem(await call(base, '/frame/te-gzip-chunked'), 502, 'GW_UPSTREAM_BAD_RESPONSE');
      // chunked on two lines is chunked twice, which no sender may apply (§6.1).
      assertProblem(await call(base, '/frame/te-twice'), 502, 'GW_UPSTREAM_BAD_RESPONSE');
      const r = await call(base, '/frame/te-upper');
      assert.equal(r.status, 200, 'coding names are case-insensitive');
      assert.equal(r.body, 'ok');
    });
    it('a body shorter than Content-Length then close → the client connection is cut', async () => {
      const r = await call(base, '/frame/short-body');
      assertCut(r);
      assert.equal(r.status, 200);
      assert.equal(r.body, '0123456789');
    });
    it('an invalid chunk size → the client connection is cut', async () => {
      const r = await call(base, '/frame/bad-chunk');
      assertCut(r);
      assert.equal(r.body, 'hello');
    });
    it('a connection closed mid-chunk or before the last chunk → the client connection is cut', async () => {
      assertCut(await call(base, '/frame/chunk-close'));
      assertCut(await call(base, '/frame/chunk-short'));
    });
    it('more body than Content-Length: the client gets the declared length, the extra is never a response', async () => {
      const s = await Session.open(p.port());
      try {
        const first = await s.exchange('GET', '/extra/long');
        assert.equal(first.status, 200);
        assert.equal(first.body, 'hello');
        for (let i = 0; i < 3; i++) {
          const next = await s.exchange('GET', '/extra/ok');
          assert.equal(next.body, 'fine');
        }
      } finally {
        s.close();
      }
    });
  });

  describe('read until close (RFC 9112 §6.3 rule 8)', () => {
    for (const path of ['/close/http10', '/close/http11', '/close/bare']) {
      it(`${path}: the whole body arrives, framed for the client, and its connection stays usable`, async () => {
        const s = await Session.open(p.port());
        try {
          for (let i = 0; i < 2; i++) {
            const r = await s.exchange('GET', path);
            assert.equal(r.status, 200);
            assert.equal(r.body, 'first,second,third');
            assert.match(r.head, /transfer-encoding: chunked/i);
            assert.doesNotMatch(r.head, /connection: close/i);
          }
        } finally {
          s.close();
        }
      });
    }
  });

  describe('responses without a body (RFC 9110 §9.3.2, §15.3.5, §15.4.5; RFC 9112 §6.3 rule 1)', () => {
    for (const [method, path, status] of [
      ['HEAD', '/nobody/head', 200],
      ['GET', '/nobody/204', 204],
      ['GET', '/nobody/204-bare', 204],
      ['GET', '/nobody/304', 304],
    ] as const) {
      it(`${method} ${path}: a body sent anyway never reaches the client nor the next response`, async () => {
        const s = await Session.open(p.port());
        try {
          for (let i = 0; i < 2; i++) {
            const r = await s.exchange(method, path);
            assert.equal(r.status, status);
            const next = await s.exchange('GET', '/nobody/ok');
            assert.equal(next.status, 200);
            assert.equal(next.body, 'fine');
          }
          if (status === 204) {
            const r = await s.exchange(method, path);
            assert.doesNotMatch(r.head, /content-length|transfer-encoding/i, 'RFC 9110 §8.6: no Content-Length on 204');
          }
        } finally {
          s.close();
        }
      });
    }
  });

  describe('interim responses (RFC 9110 §15.2)', () => {
    it('an unsolicited 100 Continue is skipped: the client gets the final response', async () => {
      const r = await call(base, '/info/100');
      assert.equal(r.status, 200);
      assert.equal(r.body, 'ok');
    });
    it('102 before the final response', async () => {
      const r = await call(base, '/info/102');
      assert.equal(r.status, 200);
      assert.equal(r.body, 'ok');
    });
    it('several 1xx in a row: 102 and 103 are forwarded, the unsolicited 100 is not', async () => {
      const s = await Session.open(p.port());
      try {
        const r = await s.exchange('GET', '/info/many');
        assert.equal(r.status, 200);
        assert.equal(r.body, 'ok');
        assert.deepEqual(r.interim, [102, 103]);
        const again = await s.exchange('GET', '/status/no-reason');
        assert.equal(again.body, 'ok');
      } finally {
        s.close();
      }
    });
    it('an HTTP/1.0 client gets no 1xx at all (RFC 9110 §15.2)', async () => {
      const socket = connect(p.port(), '127.0.0.1');
      await once(socket, 'connect');
      socket.write('GET /info/many HTTP/1.0\r\nhost: test\r\n\r\n');
      let raw = '';
      socket.on('data', (c: Buffer) => {
        raw += c.toString('latin1');
      });
      await once(socket, 'close');
      assert.match(raw, /^HTTP\/1\.1 200 /);
      assert.match(raw, /\r\n\r\nok$/);
    });
    it('an endless stream of 1xx does not hold the request forever', async () => {
      assertProblem(await call(base, '/info/endless'), 502, 'GW_UPSTREAM_BAD_RESPONSE');
    });
    it('101 Switching Protocols nobody asked for → 502', async () => {
      assertProblem(await call(base, '/info/101'), 502, 'GW_UPSTREAM_BAD_RESPONSE');
    });
  });

  describe('timeouts and dead upstreams', () => {
    it('no answer within timeouts.response → 504 GW_UPSTREAM_TIMEOUT', async () => {
      assertProblem(await call(base, '/slow/never'), 504, 'GW_UPSTREAM_TIMEOUT');
    });
    it('half a response head, then silence → 504 GW_UPSTREAM_TIMEOUT', async () => {
      assertProblem(await call(base, '/slow/half-head'), 504, 'GW_UPSTREAM_TIMEOUT');
    });
    it('a body that stalls past timeouts.idle → the client connection is cut', async () => {
      const r = await call(base, '/slow/stall-body');
      assertCut(r);
      assert.equal(r.body, '12345');
    });
    it('an upstream that closes every connection at once → 502 GW_UPSTREAM_RESET', async () => {
      assertProblem(await call(base, '/slam/x'), 502, 'GW_UPSTREAM_RESET');
    });
  });

  describe('response headers', () => {
    it('a response head over the size limit → 502 GW_UPSTREAM_BAD_RESPONSE', async () => {
      assertProblem(await call(base, '/hdr/huge'), 502, 'GW_UPSTREAM_BAD_RESPONSE');
    });
    for (const path of ['/hdr/nul', '/hdr/space-colon', '/hdr/bad-name']) {
      it(`${path}: an invalid header field → 502 GW_UPSTREAM_BAD_RESPONSE`, async () => {
        assertProblem(await call(base, path), 502, 'GW_UPSTREAM_BAD_RESPONSE');
      });
    }
    it('obs-fold → 502, one of the two answers RFC 9112 §5.2 allows a proxy', async () => {
      assertProblem(await call(base, '/hdr/obs-fold'), 502, 'GW_UPSTREAM_BAD_RESPONSE');
    });
    it('many Set-Cookie fields stay separate fields (RFC 9110 §5.3)', async () => {
      const r = await call(base, '/hdr/cookies');
      assert.equal(r.status, 200);
      const cookies: string[] = [];
      for (let i = 0; i < r.rawHeaders.length; i += 2) {
        if (r.rawHeaders[i]!.toLowerCase() === 'set-cookie') cookies.push(r.rawHeaders[i + 1]!);
      }
      assert.deepEqual(cookies, ['a=1; Path=/', 'b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT', 'c=3', 'd=4; HttpOnly']);
    });
  });

  describe('connection management (RFC 9112 §9)', () => {
    it("the upstream's Connection: close is honoured: its connection is not used again", async () => {
      const before = closing.connections;
      const s = await Session.open(p.port());
      try {
        for (let i = 0; i < 3; i++) {
          const r = await s.exchange('GET', '/closing/x');
          assert.equal(r.status, 200);
          assert.match(r.head, /connection: keep-alive/i, "hop-by-hop: the upstream's close is not the client's");
        }
      } finally {
        s.close();
      }
      assert.equal(closing.connections - before, 3);
      assert.ok(closing.requests.every((r) => r.seq === 1));
    });
    it('an idle pooled connection the upstream closed is not used: the next request succeeds', async () => {
      for (let i = 0; i < 3; i++) {
        const r = await call(base, '/idleclose/x');
        assert.equal(r.status, 200);
        await new Promise((resolve) => setTimeout(resolve, 60));
      }
    });
    it('a pooled connection that dies under an idempotent request: retried on a fresh connection', async () => {
      for (let i = 0; i < 4; i++) {
        const r = await call(base, '/stale/x');
        assert.equal(r.status, 200, `request ${i}: ${r.body}`);
        assert.match(r.body, /^c\dr1$/);
      }
    });
    it('a fresh connection that dies is the target failing: 502 after one try, no endless retries', async () => {
      const before = slam.connections;
      assertProblem(await call(base, '/slam/y'), 502, 'GW_UPSTREAM_RESET');
      assert.equal(slam.connections - before, 1);
    });
    it('never resends a non-idempotent request that may have reached the upstream', async () => {
      const warm = await call(base, '/stale/warm');
      assert.equal(warm.status, 200);
      const before = stale.requests.length;
      const r = await call(base, '/stale/post', { method: 'POST', body: 'x' });
      const posts = stale.requests.slice(before).filter((q) => q.method === 'POST');
      assert.equal(posts.length, 1, 'sent once');
      if (r.status !== 200) assertProblem(r, 502, 'GW_UPSTREAM_RESET');
    });
  });

  describe('early response while the request body is still being sent (RFC 9112 §9.3)', () => {
    it('the client reads the answer, can finish its upload, and keeps its connection', async () => {
      const s = await Session.open(p.port());
      try {
        const total = 512 * 1024;
        s.socket.write(`POST /early/413 HTTP/1.1\r\nhost: test\r\ncontent-length: ${total}\r\n\r\n`);
        s.socket.write(Buffer.alloc(total / 2, 'x'));
        const r = await s.read('POST');
        assert.equal(r.status, 413);
        assert.equal(r.body, 'nope');
        assert.doesNotMatch(r.head, /connection: close/i);
        s.socket.write(Buffer.alloc(total / 2, 'y'));
        const next = await s.exchange('GET', '/status/no-reason');
        assert.equal(next.status, 200);
        assert.equal(next.body, 'ok');
      } finally {
        s.close();
      }
    });
    for (const path of ['/early/413', '/early/401']) {
      it(`${path}: a keep-alive client uploading 8 MiB gets the upstream's response`, async (t) => {
        const agent = new Agent({ keepAlive: true });
        t.after(() => agent.destroy());
        const r = await new Promise<Reply>((resolve) => {
          const req = request(`${base}${path}`, {
            method: 'POST',
            agent,
            headers: { 'content-length': String(8 * 1024 * 1024) },
          });
          let sent = 0;
          const chunk = Buffer.alloc(64 * 1024, 'x');
          const pump = () => {
            while (sent < 8 * 1024 * 1024 && !req.destroyed) {
              sent += chunk.length;
              if (!req.write(chunk)) {
                req.once('drain', pump);
                return;
              }
            }
            req.end();
          };
          req.on('response', (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({
                status: res.statusCode!,
                headers: res.headers,
                rawHeaders: res.rawHeaders,
                body: Buffer.concat(chunks).toString(),
                complete: res.complete,
              }),
            );
          });
          req.on('error', (err: Error & { code?: string }) =>
            resolve({ status: 0, headers: {}, rawHeaders: [], body: '', complete: false, error: err.code }),
          );
          pump();
        });
        assert.equal(r.status, path === '/early/401' ? 401 : 413, `${r.error ?? ''} ${r.body}`);
        assert.equal(r.body, 'nope');
        assert.ok(r.complete);
      });
    }
  });

  it('portico is still up and never wrote a stack trace', async () => {
    const r = await call(base, '/status/no-reason');
    assert.equal(r.status, 200);
    assert.doesNotMatch(p.stderr, /\n\s+at /);
  });
});
