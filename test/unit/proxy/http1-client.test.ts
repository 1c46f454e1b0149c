/**
 * Portico's HTTP/1.1 upstream client (src/proxy/http1/), driven through `Http1Pool.dispatch` against real
 * servers: raw `node:net` upstreams that write exact bytes (so each test controls framing, closes and stalls),
 * and a few `node:http` / `node:https` ones.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DispatchHandler, DispatchOptions } from '../../../src/proxy/http1/connection.ts';
import { Http1Pool, type Http1PoolOptions } from '../../../src/proxy/http1/pool.ts';
import { isStaleConnectionError } from '../../../src/proxy/upstream-errors.ts';
import { blackhole } from '../../helpers/blackhole.ts';
import { startEchoUpstream, startUpstream } from '../../helpers/http.ts';
import { freePort } from '../../helpers/ports.ts';
import {
  chunkedResponse as chunked,
  okResponse as ok,
  onRequests,
  type RawConnection,
  type RawRequest,
  type RawUpstream,
  startAnsweringUpstream,
  startRawUpstream,
} from '../../helpers/raw-upstream.ts';
import { certDir, makeCert } from '../../helpers/tls-certs.ts';
import { within } from '../../helpers/within.ts';

const DEFAULTS: Http1PoolOptions = {
  connectTimeout: 2000,
  responseTimeout: 3000,
  idleTimeout: 3000,
  keepAliveTimeout: 10_000,
  connections: 10,
};

function newPool(origin: string, options: Partial<Http1PoolOptions> = {}): Http1Pool {
  return new Http1Pool(origin, { ...DEFAULTS, ...options });
}

/** Runs `body` with a raw upstream answering by `answer` and a pool to it; both are closed afterwards. */
async function withUpstream(
  answer: Parameters<typeof startAnsweringUpstream>[0],
  options: Partial<Http1PoolOptions> | undefined,
  body: (pool: Http1Pool, up: RawUpstream) => Promise<void>,
): Promise<void> {
  await withPool(await startAnsweringUpstream(answer), options, body);
}

/** The same with a raw upstream whose connections `onConnection` drives byte by byte. */
async function withRawUpstream(
  onConnection: Parameters<typeof startRawUpstream>[0],
  options: Partial<Http1PoolOptions> | undefined,
  body: (pool: Http1Pool, up: RawUpstream) => Promise<void>,
): Promise<void> {
  await withPool(await startRawUpstream(onConnection), options, body);
}

async function withPool(
  up: RawUpstream,
  options: Partial<Http1PoolOptions> | undefined,
  body: (pool: Http1Pool, up: RawUpstream) => Promise<void>,
): Promise<void> {
  const pool = newPool(up.url, options);
  try {
    await body(pool, up);
  } finally {
    await pool.destroy();
    await up.close();
  }
}

type ClientError = Error & { code?: string; socket?: { bytesRead: number } };

/** What one dispatched request saw, filled in as its handler is called. */
interface Exchange {
  status: number | undefined;
  statusText: string | undefined;
  headers: string[] | undefined;
  readonly interim: { status: number; headers: string[]; statusText: string }[];
  readonly chunks: Buffer[];
  trailers: string[] | undefined;
  error: ClientError | undefined;
  upgrade: { status: number; headers: string[]; socket: Socket } | undefined;
  /** Callback names in order (`connect`, `headers:200`, `data`, `complete`, `error`, `upgrade`). */
  readonly events: string[];
  abort: ((err?: Error) => void) | undefined;
  resume: (() => void) | undefined;
  /** Settles on onComplete, onError or onUpgrade. */
  readonly done: Promise<void>;
  body(): string;
}

/** Hooks run before the recording; a hook's boolean return value is what the handler returns. */
interface Hooks {
  onConnect?(x: Exchange): void;
  onHeaders?(x: Exchange, status: number): boolean | undefined;
  onData?(x: Exchange, chunk: Buffer): boolean | undefined;
  /** Do not keep the body chunks (large bodies). */
  discardData?: boolean;
}

function dispatch(pool: Http1Pool, opts: DispatchOptions, hooks: Hooks = {}): Exchange {
  let settle!: () => void;
  const done = new Promise<void>((resolve) => {
    settle = resolve;
  });
  const x: Exchange = {
    status: undefined,
    statusText: undefined,
    headers: undefined,
    interim: [],
    chunks: [],
    trailers: undefined,
    error: undefined,
    upgrade: undefined,
    events: [],
    abort: undefined,
    resume: undefined,
    done,
    body: () => Buffer.concat(x.chunks).toString('latin1'),
  };
  const handler: DispatchHandler = {
    onConnect(abort) {
      x.events.push('connect');
      x.abort = abort;
      hooks.onConnect?.(x);
    },
    onHeaders(status, rawHeaders, resume, statusText) {
      x.events.push(`headers:${status}`);
      if (status < 200) x.interim.push({ status, headers: [...rawHeaders], statusText });
      else {
        x.status = status;
        x.statusText = statusText;
        x.headers = [...rawHeaders];
        x.resume = resume;
      }
      return hooks.onHeaders?.(x, status) ?? true;
    },
    onData(chunk) {
      x.events.push('data');
      if (hooks.discardData !== true) x.chunks.push(Buffer.from(chunk));
      return hooks.onData?.(x, chunk) ?? true;
    },
    onComplete(trailers) {
      x.events.push('complete');
      x.trailers = [...trailers];
      settle();
    },
    onError(err) {
      x.events.push('error');
      x.error = err as ClientError;
      settle();
    },
    onUpgrade(status, rawHeaders, socket) {
      x.events.push('upgrade');
      x.upgrade = { status, headers: [...rawHeaders], socket: socket as Socket };
      settle();
    },
  };
  pool.dispatch(opts, handler);
  return x;
}

/** Dispatches and waits (at most `ms`) for the outcome. */
async function run(pool: Http1Pool, opts: DispatchOptions, hooks: Hooks = {}, ms = 5000): Promise<Exchange> {
  const x = dispatch(pool, opts, hooks);
  await within(x.done, ms, `${opts.method} ${opts.path}`);
  return x;
}

function get(path = '/'): DispatchOptions {
  return { method: 'GET', path, headers: { host: 'upstream.test' } };
}

/**
 * The two ways a response body is read: a Content-Length body is relayed as slices of the socket's reads
 * (the parser stops at the head), a chunked one goes through llhttp.
 */
const FRAMINGS = [
  ['Content-Length', (body: string) => ok(body)],
  ['chunked', (body: string) => chunked([body])],
] as const;

function header(head: string, name: string): string[] {
  const out: string[] = [];
  for (const line of head.split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (line.slice(0, colon).toLowerCase() === name) out.push(line.slice(colon + 1).trim());
  }
  return out;
}

function assertOk(x: Exchange, body: string): void {
  assert.equal(x.error, undefined, `unexpected error: ${x.error?.code} ${x.error?.message}`);
  assert.equal(x.status, 200);
  assert.equal(x.body(), body);
  assert.deepEqual(x.events.at(-1), 'complete');
}

describe('Http1Pool (HTTP/1.1 upstream client)', () => {
  describe('keep-alive', () => {
    it('two sequential requests reuse one TCP connection', async () => {
      await withUpstream(
        (req) => ok(`answer ${req.path}`),
        undefined,
        async (pool, up) => {
          const a = await run(pool, get('/a'));
          const b = await run(pool, get('/b'));
          assertOk(a, 'answer /a');
          assertOk(b, 'answer /b');
          assert.deepEqual(a.headers, ['Content-Length', '9']);
          assert.equal(up.connections.length, 1);
          const sent = up.connections[0]!.received().toString('latin1');
          assert.match(sent, /^GET \/a HTTP\/1\.1\r\nhost: upstream\.test\r\n\r\nGET \/b HTTP\/1\.1\r\n/);
        },
      );
    });

    it('reuses connections with a node:http upstream too', async () => {
      const up = await startEchoUpstream();
      const pool = newPool(up.url);
      try {
        for (let i = 0; i < 3; i++) {
          const x = await run(pool, get(`/n${i}`));
          assert.equal(x.status, 200);
          assert.equal(JSON.parse(x.body()).url, `/n${i}`);
        }
        const sockets = new Set(up.seen.map((r) => r.socket));
        assert.equal(sockets.size, 1);
      } finally {
        await pool.destroy();
        await up.close();
      }
    });

    for (const [what, answer, body] of [
      ['Connection: close', ok('bye', 'Connection: close\r\n'), 'bye'],
      [
        'Connection: close with a chunked body',
        'HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nbye\r\n0\r\n\r\n',
        'bye',
      ],
      ['an HTTP/1.0 response', 'HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nbye', 'bye'],
      ['an HTTP/1.0 response with an empty body', 'HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n', ''],
    ] as const) {
      it(`after ${what} the next request uses a new connection (and the client closes the old one)`, async () => {
        // The upstream never closes: the client must.
        await withUpstream(
          () => answer,
          undefined,
          async (pool, up) => {
            assertOk(await run(pool, get('/1')), body);
            await within(up.connections[0]!.closed, 2000, 'client closes the connection');
            assertOk(await run(pool, get('/2')), body);
            assert.equal(up.connections.length, 2);
          },
        );
      });
    }

    it('an idle connection is closed after keepAliveTimeout', async () => {
      await withUpstream(
        () => ok('x'),
        { keepAliveTimeout: 100 },
        async (pool, up) => {
          assertOk(await run(pool, get()), 'x');
          const t0 = Date.now();
          await within(up.connections[0]!.closed, 2000, 'keep-alive expiry');
          assert.ok(Date.now() - t0 >= 50, 'not closed before its time');
          assertOk(await run(pool, get()), 'x');
          assert.equal(up.connections.length, 2);
        },
      );
    });
  });

  describe('response splitting', () => {
    for (const [framing, respond] of FRAMINGS)
      for (const [what, extra] of [
        ['a second full response', 'HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nsmuggle'],
        ['the start of a response', 'HTTP/1.1 2'],
        ['a single stray byte', 'X'],
      ] as const) {
        it(`bytes after a ${framing} response (${what}) close the connection; the next request gets its own answer`, async () => {
          await withUpstream(
            (req, conn) => {
              // The first connection keeps answering (with a marker) if it is ever reused.
              if (conn.index === 0) return req.index === 0 ? respond('first') + extra : ok('reused');
              return ok('second');
            },
            undefined,
            async (pool, up) => {
              assertOk(await run(pool, get('/1')), 'first');
              const x = await run(pool, get('/2'));
              assertOk(x, 'second');
              assert.equal(up.connections.length, 2);
              await within(up.connections[0]!.closed, 2000, 'the first connection closes');
            },
          );
        });
      }

    it('a Content-Length body arriving in many small reads is relayed whole; the connection is reused', async () => {
      const body = 'abcdefghijklmnopqrstuvwxyz';
      await withUpstream(
        (req, conn) => {
          if (req.index > 0) return ok('again');
          (async () => {
            conn.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
            for (let i = 0; i < body.length; i += 5) {
              await sleep(3);
              conn.socket.write(body.slice(i, i + 5));
            }
          })();
          return undefined;
        },
        undefined,
        async (pool, up) => {
          const x = await run(pool, get());
          assertOk(x, body);
          assert.ok(x.chunks.length > 1, 'several reads');
          assertOk(await run(pool, get()), 'again');
          assert.equal(up.connections.length, 1);
        },
      );
    });

    for (const [status, text] of [
      [204, 'No Content'],
      [304, 'Not Modified'],
    ] as const) {
      it(`a ${status} with Content-Length has no body; its connection is not reused (a body may still come)`, async () => {
        let answered = 0;
        await withUpstream(
          () => (answered++ === 0 ? `HTTP/1.1 ${status} ${text}\r\nContent-Length: 5\r\n\r\n` : ok('next')),
          undefined,
          async (pool, up) => {
            const x = await run(pool, get());
            assert.equal(x.status, status);
            assert.deepEqual(x.events, ['connect', `headers:${status}`, 'complete']);
            assertOk(await run(pool, get()), 'next');
            assert.equal(up.connections.length, 2);
          },
        );
      });
    }

    it('a body without length is read to the close and completes then', async () => {
      await withUpstream(
        (_req, conn) => {
          conn.socket.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil ');
          setTimeout(() => conn.socket.end('the end'), 20);
          return undefined;
        },
        undefined,
        async (pool) => {
          assertOk(await run(pool, get()), 'until the end');
        },
      );
    });

    for (const [framing, partial, code] of [
      ['Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', 'UND_ERR_SOCKET'],
      ['chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n', 'HPE_INVALID_EOF_STATE'],
    ] as const) {
      it(`a ${framing} body cut short by a close fails with ${code} after its data`, async () => {
        await withUpstream(
          (_req, conn) => {
            conn.socket.end(partial);
            return undefined;
          },
          undefined,
          async (pool) => {
            const x = await run(pool, get());
            assert.equal(x.error?.code, code);
            assert.deepEqual(x.events, ['connect', 'headers:200', 'data', 'error']);
            assert.equal(x.body(), 'abc');
          },
        );
      });
    }
  });

  // llhttp marks a parser as upgraded once a head is stopped with 2 (how Content-Length bodies are relayed), and
  // Node's binding then swallows every later parse error: the bad response just stopped being read.
  it('a malformed response on a reused connection fails at once, as on a fresh one', async () => {
    await withUpstream(
      (req) => (req.index === 0 ? ok('first') : 'HTTP/1.1 200 OK\r\nX-Bad: a\x7fb\r\ncontent-length: 2\r\n\r\nno'),
      undefined,
      async (pool, up) => {
        assertOk(await run(pool, get('/1')), 'first');
        const x = await run(pool, get('/2'));
        assert.equal(up.connections.length, 1, 'the second request went out on the reused connection');
        // Not the response timeout's error: the parse error itself, as soon as the bytes came.
        assert.equal(x.error?.code, 'HPE_INVALID_HEADER_TOKEN');
      },
    );
  });

  it('bytes arriving on an idle pooled connection close it; it is not reused', async () => {
    await withUpstream(
      (req, conn) => {
        if (conn.index === 0 && req.index === 0) {
          setTimeout(() => conn.socket.write(ok('unasked')), 30);
          return ok('first');
        }
        return ok(conn.index === 0 ? 'reused' : 'fresh');
      },
      undefined,
      async (pool, up) => {
        assertOk(await run(pool, get('/1')), 'first');
        await within(up.connections[0]!.closed, 2000, 'the idle connection closes');
        assertOk(await run(pool, get('/2')), 'fresh');
        assert.equal(up.connections.length, 2);
      },
    );
  });

  describe('stale keep-alive connections', () => {
    it('an idle connection the upstream closed shortly after answering is dropped: the next request opens a new one', async () => {
      // Documented behaviour: the client sees the FIN while the connection is idle in the pool, drops it, and
      // the next request goes out on a fresh connection (no error reaches the handler).
      await withUpstream(
        (req, conn) => {
          if (conn.index === 0) setTimeout(() => conn.socket.end(), 20);
          return ok(`c${conn.index} r${req.index}`);
        },
        undefined,
        async (pool, up) => {
          assertOk(await run(pool, get('/1')), 'c0 r0');
          await up.connections[0]!.closed;
          await sleep(100);
          assertOk(await run(pool, get('/2')), 'c1 r0');
          assert.equal(up.connections.length, 2);
        },
      );
    });

    it('a reused connection closed as the request goes out fails with UND_ERR_SOCKET and socket.bytesRead > 0', async () => {
      // The keep-alive race made deterministic: the upstream closes the connection on reading the second
      // request, without a byte of answer. The forwarder retries this error (isStaleConnectionError).
      await withUpstream(
        (req, conn) => {
          if (conn.index === 0 && req.index === 1) {
            conn.socket.end();
            return undefined;
          }
          return ok('fine');
        },
        undefined,
        async (pool, up) => {
          assertOk(await run(pool, get('/1')), 'fine');
          const x = await run(pool, get('/2'));
          assert.equal(x.error?.code, 'UND_ERR_SOCKET');
          assert.ok(x.error.socket!.bytesRead > 0, 'a reused connection has read bytes');
          assert.equal(isStaleConnectionError(x.error), true);
          assert.deepEqual(x.events, ['connect', 'error']);
          // The retry the forwarder would make goes out on a new connection.
          assertOk(await run(pool, get('/3')), 'fine');
          assert.equal(up.connections.length, 2);
        },
      );
    });

    it('racing the upstream close gives either a fresh connection or an error the forwarder retries', async () => {
      for (let delay = 0; delay < 8; delay++) {
        await withUpstream(
          (_req, conn) => {
            setTimeout(() => conn.socket.end(), delay);
            return ok('r');
          },
          undefined,
          async (pool) => {
            assertOk(await run(pool, get('/1')), 'r');
            await sleep(delay);
            const x = await run(pool, get('/2'));
            if (x.error !== undefined) {
              assert.ok(isStaleConnectionError(x.error), `delay ${delay}: ${x.error.code} ${x.error.message}`);
              if (x.error.code === 'UND_ERR_SOCKET') assert.ok(x.error.socket!.bytesRead > 0);
            } else assertOk(x, 'r');
          },
        );
      }
    });
  });

  it('a fresh connection closed before any response byte: UND_ERR_SOCKET with socket.bytesRead === 0', async () => {
    await withUpstream(
      (_req, conn) => {
        conn.socket.end();
        return undefined;
      },
      undefined,
      async (pool) => {
        const x = await run(pool, get());
        assert.equal(x.error?.code, 'UND_ERR_SOCKET');
        assert.equal(x.error.socket?.bytesRead, 0);
        assert.equal(isStaleConnectionError(x.error), false);
      },
    );
  });

  describe('connect failures', () => {
    it('connection refused: ECONNREFUSED', async () => {
      const port = await freePort();
      const pool = newPool(`http://127.0.0.1:${port}`);
      try {
        const x = await run(pool, get());
        assert.equal(x.error?.code, 'ECONNREFUSED');
        assert.deepEqual(x.events, ['error']);
      } finally {
        await pool.destroy();
      }
    });

    it('no answer to the connect within connectTimeout: UND_ERR_CONNECT_TIMEOUT', async () => {
      const hole = await blackhole();
      const pool = newPool(`http://127.0.0.1:${hole.port}`, { connectTimeout: 100 });
      try {
        const t0 = Date.now();
        const x = await run(pool, get(), {}, 3000);
        assert.equal(x.error?.code, 'UND_ERR_CONNECT_TIMEOUT');
        assert.ok(Date.now() - t0 < 1000);
        assert.deepEqual(x.events, ['error']);
      } finally {
        await pool.destroy();
        hole.close();
      }
    });
  });

  describe('timeouts', () => {
    it('no response head within responseTimeout: UND_ERR_HEADERS_TIMEOUT', async () => {
      await withUpstream(
        () => undefined,
        { responseTimeout: 150 },
        async (pool, up) => {
          const t0 = Date.now();
          const x = await run(pool, get());
          const elapsed = Date.now() - t0;
          assert.equal(x.error?.code, 'UND_ERR_HEADERS_TIMEOUT');
          assert.ok(elapsed >= 140 && elapsed < 2000, `${elapsed}ms`);
          assert.deepEqual(x.events, ['connect', 'error']);
          await within(up.connections[0]!.closed, 2000, 'the connection closes');
        },
      );
    });

    for (const [framing, start, sent] of [
      ['Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', 'abc'],
      ['Content-Length (head alone)', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n', ''],
      ['chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n', 'abc'],
    ] as const) {
      it(`a ${framing} body that stands still for idleTimeout: onHeaders, then UND_ERR_BODY_TIMEOUT`, async () => {
        await withUpstream(
          () => start,
          { idleTimeout: 150 },
          async (pool) => {
            const x = await run(pool, get());
            assert.equal(x.error?.code, 'UND_ERR_BODY_TIMEOUT');
            const data = sent === '' ? [] : ['data'];
            assert.deepEqual(x.events, ['connect', 'headers:200', ...data, 'error']);
            assert.equal(x.body(), sent);
          },
        );
      });
    }

    for (const [framing, start, rest] of [
      ['Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', 'defghij'],
      ['chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n', '7\r\ndefghij\r\n0\r\n\r\n'],
    ] as const) {
      it(`the idle timeout does not fire while the handler has paused a ${framing} body; after resume() it completes`, async () => {
        await withUpstream(
          (_req, conn) => {
            setTimeout(() => conn.socket.write(rest), 20);
            return start;
          },
          { idleTimeout: 100 },
          async (pool) => {
            const x = dispatch(pool, get(), { onData: (ex) => ex.chunks.length > 1 });
            await sleep(400);
            assert.deepEqual(x.events, ['connect', 'headers:200', 'data'], 'paused: no more data, no timeout');
            x.resume!();
            await within(x.done, 2000, 'body after resume');
            assertOk(x, 'abcdefghij');
          },
        );
      });
    }
  });

  it('connections: 1 serves three concurrent requests one after another on one connection, in order', async () => {
    let outstanding = 0;
    let maxOutstanding = 0;
    await withRawUpstream(
      (conn) => {
        onRequests(conn.socket, (req) => {
          outstanding++;
          maxOutstanding = Math.max(maxOutstanding, outstanding);
          setTimeout(() => {
            outstanding--;
            conn.socket.write(ok(req.path));
          }, 30);
        });
      },
      { connections: 1 },
      async (pool, up) => {
        const order: string[] = [];
        const xs = ['/1', '/2', '/3'].map((p) => dispatch(pool, get(p)));
        for (const [i, x] of xs.entries()) {
          x.done.then(() => order.push(`/${i + 1}`));
        }
        await within(Promise.all(xs.map((x) => x.done)), 3000, 'three requests');
        for (const [i, x] of xs.entries()) assertOk(x, `/${i + 1}`);
        assert.deepEqual(order, ['/1', '/2', '/3']);
        assert.equal(up.connections.length, 1);
        assert.equal(maxOutstanding, 1, 'no pipelining');
      },
    );
  });

  describe('request bodies', () => {
    /** An upstream that records each request and answers 200. */
    /** Runs `body` against an upstream that answers `done` and keeps every request it read in `seen`. */
    async function withRecording(
      body: (pool: Http1Pool, up: RawUpstream, seen: RawRequest[]) => Promise<void>,
    ): Promise<void> {
      const seen: RawRequest[] = [];
      const answer = (req: RawRequest): string => {
        seen.push(req);
        return ok('done');
      };
      await withUpstream(answer, undefined, (pool, up) => body(pool, up, seen));
    }

    /**
     * A PassThrough fed `parts` 5 ms apart, ended with the last one (as a client request's relay ends: an
     * upstream that has all the bytes may answer at once, and a body still open then is an early response).
     */
    function streamOf(parts: string[]): PassThrough {
      const body = new PassThrough();
      (async () => {
        for (const p of parts) {
          await sleep(5);
          body.write(Buffer.from(p));
        }
        body.end();
      })();
      return body;
    }

    it('a Buffer body is sent with its Content-Length', async () => {
      await withRecording(async (pool, _up, seen) => {
        const body = Buffer.from('hello wörld');
        assertOk(await run(pool, { method: 'POST', path: '/b', headers: {}, body }), 'done');
        assert.deepEqual(header(seen[0]!.head, 'content-length'), [String(body.length)]);
        assert.deepEqual(header(seen[0]!.head, 'transfer-encoding'), []);
        assert.deepEqual(seen[0]!.body, body);
      });
    });

    it('a stream body with a content-length header is sent with that length, unchunked', async () => {
      await withRecording(async (pool, up, seen) => {
        const body = streamOf(['abc', 'de']);
        const x = await run(pool, { method: 'PUT', path: '/s', headers: { 'content-length': '5' }, body });
        assertOk(x, 'done');
        assert.deepEqual(header(seen[0]!.head, 'content-length'), ['5']);
        assert.deepEqual(header(seen[0]!.head, 'transfer-encoding'), []);
        assert.equal(seen[0]!.body.toString(), 'abcde');
        // The connection stays usable.
        assertOk(await run(pool, get()), 'done');
        assert.equal(up.connections.length, 1);
      });
    });

    it('a stream body without content-length is sent chunked, each chunk framed', async () => {
      await withRecording(async (pool, up, seen) => {
        const body = streamOf(['abc', 'de', 'x'.repeat(300)]);
        assertOk(await run(pool, { method: 'POST', path: '/c', headers: {}, body }), 'done');
        assert.deepEqual(header(seen[0]!.head, 'transfer-encoding'), ['chunked']);
        assert.deepEqual(header(seen[0]!.head, 'content-length'), []);
        assert.equal(seen[0]!.body.toString(), `3\r\nabc\r\n2\r\nde\r\n12c\r\n${'x'.repeat(300)}\r\n0\r\n\r\n`);
        // The bytes on the wire end exactly there: nothing after the last chunk.
        assert.ok(up.connections[0]!.received().toString('latin1').endsWith('\r\n0\r\n\r\n'));
      });
    });

    it('a chunked stream body reaches a node:http upstream intact', async () => {
      const up = await startEchoUpstream();
      const pool = newPool(up.url);
      try {
        const body = streamOf(['one ', 'two ', 'three']);
        const x = await run(pool, { method: 'POST', path: '/e', headers: { 'content-type': 'text/plain' }, body });
        assert.equal(x.status, 200);
        const echo = JSON.parse(x.body());
        assert.equal(echo.body, 'one two three');
        assert.equal(echo.headers['transfer-encoding'], 'chunked');
      } finally {
        await pool.destroy();
        await up.close();
      }
    });

    it('a stream ending short of its Content-Length fails the request; the connection is not reused', async () => {
      await withRawUpstream(
        (conn) => {
          onRequests(conn.socket, () => conn.socket.write(ok('done')));
        },
        undefined,
        async (pool, up) => {
          const body = streamOf(['abc']);
          const x = await run(pool, { method: 'POST', path: '/short', headers: { 'content-length': '10' }, body });
          assert.equal(x.error?.code, 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH');
          assert.deepEqual(x.events, ['connect', 'error']);
          await within(up.connections[0]!.closed, 2000, 'the connection closes');
          assertOk(await run(pool, get()), 'done');
          assert.equal(up.connections.length, 2);
        },
      );
    });

    it('a stream longer than its Content-Length fails the request too', async () => {
      await withRecording(async (pool, up) => {
        const body = streamOf(['abc', 'defgh']);
        const x = await run(pool, { method: 'POST', path: '/long', headers: { 'content-length': '4' }, body });
        assert.equal(x.error?.code, 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH');
        await within(up.connections[0]!.closed, 2000, 'the connection closes');
      });
    });

    it('POST with a null body says content-length: 0; GET with a null body has no framing headers', async () => {
      await withRecording(async (pool, up, seen) => {
        assertOk(await run(pool, { method: 'POST', path: '/p', headers: {}, body: null }), 'done');
        assertOk(await run(pool, { method: 'GET', path: '/g', headers: {}, body: null }), 'done');
        assert.deepEqual(header(seen[0]!.head, 'content-length'), ['0']);
        assert.deepEqual(header(seen[0]!.head, 'transfer-encoding'), []);
        assert.deepEqual(header(seen[1]!.head, 'content-length'), []);
        assert.deepEqual(header(seen[1]!.head, 'transfer-encoding'), []);
        assert.equal(seen[0]!.head, 'POST /p HTTP/1.1\r\nhost: ' + new URL(up.url).host + '\r\ncontent-length: 0');
      });
    });

    it("client-supplied transfer-encoding / content-length are replaced by the client's own framing", async () => {
      await withRecording(async (pool, up, seen) => {
        const lying = { 'Content-Length': '99', 'Transfer-Encoding': 'chunked', 'x-keep': 'yes' };
        assertOk(await run(pool, { method: 'POST', path: '/1', headers: lying, body: Buffer.from('hello') }), 'done');
        const body = streamOf(['ab', 'cd']);
        const streamed = { 'content-length': '4', 'transfer-encoding': 'gzip, chunked' };
        assertOk(await run(pool, { method: 'POST', path: '/2', headers: streamed, body }), 'done');
        assertOk(await run(pool, { method: 'GET', path: '/3', headers: lying }), 'done');

        assert.deepEqual(header(seen[0]!.head, 'content-length'), ['5']);
        assert.deepEqual(header(seen[0]!.head, 'transfer-encoding'), []);
        assert.deepEqual(header(seen[0]!.head, 'x-keep'), ['yes']);
        assert.equal(seen[0]!.body.toString(), 'hello');
        assert.deepEqual(header(seen[1]!.head, 'content-length'), ['4']);
        assert.deepEqual(header(seen[1]!.head, 'transfer-encoding'), []);
        assert.equal(seen[1]!.body.toString(), 'abcd');
        assert.deepEqual(header(seen[2]!.head, 'content-length'), []);
        assert.deepEqual(header(seen[2]!.head, 'transfer-encoding'), []);
        assert.equal(up.connections.length, 1, 'the framing stayed in sync');
      });
    });
  });

  describe('header injection', () => {
    for (const [what, opts] of [
      ['a header value with CR LF', { method: 'GET', path: '/', headers: { 'x-a': 'v\r\nX-Injected: 1' } }],
      ['a header value with a bare LF in a list', { method: 'GET', path: '/', headers: { 'x-a': ['ok', 'v\nX: 1'] } }],
      ['a header name that is not a token', { method: 'GET', path: '/', headers: { 'x a': 'v' } }],
      ['a path with a space', { method: 'GET', path: '/a b HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /', headers: {} }],
      ['a path with a plain space', { method: 'GET', path: '/a b', headers: {} }],
      ['a method that is not a token', { method: 'GET /x', path: '/', headers: {} }],
    ] as const) {
      it(`${what}: onError UND_ERR_INVALID_ARG and nothing written upstream`, async () => {
        await withUpstream(
          () => ok('fine'),
          undefined,
          async (pool, up) => {
            const x = await run(pool, opts as DispatchOptions);
            assert.equal(x.error?.code, 'UND_ERR_INVALID_ARG');
            assert.deepEqual(x.events, ['connect', 'error']);
            await sleep(50);
            assert.equal(up.connections[0]?.received().length ?? 0, 0);
            // The connection carried nothing: it serves the next request.
            assertOk(await run(pool, get('/next')), 'fine');
            assert.equal(up.connections.length, 1);
            assert.match(up.connections[0]!.received().toString('latin1'), /^GET \/next HTTP\/1\.1\r\n/);
          },
        );
      });
    }
  });

  it('an early response to a streamed upload completes, drops the connection and destroys the body stream', async () => {
    await withRawUpstream(
      (conn) => {
        let answered = false;
        conn.socket.on('data', () => {
          if (answered || conn.index > 0) return;
          answered = true;
          conn.socket.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo much');
        });
        if (conn.index > 0) onRequests(conn.socket, () => conn.socket.write(ok('next')));
      },
      undefined,
      async (pool, up) => {
        const body = new PassThrough();
        body.write(Buffer.alloc(64 * 1024, 'a'));
        const x = await run(pool, {
          method: 'POST',
          path: '/upload',
          headers: { 'content-length': String(100 * 1024 * 1024) },
          body,
        });
        assert.equal(x.error, undefined);
        assert.equal(x.status, 413);
        assert.equal(x.body(), 'too much');
        assert.equal(x.events.at(-1), 'complete');
        assert.equal(body.destroyed, true, 'the body stream is destroyed');
        assert.equal(body.listenerCount('data'), 0, 'and detached');
        await within(up.connections[0]!.closed, 2000, 'the connection closes');
        assertOk(await run(pool, get()), 'next');
        assert.equal(up.connections.length, 2);
      },
    );
  });

  it('HEAD: a Content-Length 100 response without body completes with no data; the connection is not reused', async () => {
    await withUpstream(
      (req) => (req.method === 'HEAD' ? 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n' : ok('after head')),
      undefined,
      async (pool, up) => {
        const head = await run(pool, { method: 'HEAD', path: '/h', headers: {} });
        assert.equal(head.status, 200);
        assert.deepEqual(head.events, ['connect', 'headers:200', 'complete']);
        assert.deepEqual(head.headers, ['Content-Length', '100']);
        assertOk(await run(pool, get()), 'after head');
        assert.equal(up.connections.length, 2, 'a body sent late could pass for the next response');
      },
    );
  });

  it('1xx: 100 Continue and 103 Early Hints reach onHeaders before the final response', async () => {
    await withUpstream(
      () =>
        'HTTP/1.1 100 Continue\r\n\r\n' +
        'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n' +
        ok('final body'),
      undefined,
      async (pool, up) => {
        const x = await run(pool, get());
        assertOk(x, 'final body');
        assert.deepEqual(x.events, ['connect', 'headers:100', 'headers:103', 'headers:200', 'data', 'complete']);
        assert.deepEqual(x.interim, [
          { status: 100, headers: [], statusText: 'Continue' },
          { status: 103, headers: ['Link', '</style.css>; rel=preload'], statusText: 'Early Hints' },
        ]);
        assertOk(await run(pool, get()), 'final body');
        assert.equal(up.connections.length, 1);
      },
    );
  });

  it('a chunked response with trailers: onComplete gets the trailer pairs', async () => {
    await withUpstream(
      () =>
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n' +
        '5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n',
      undefined,
      async (pool, up) => {
        const x = await run(pool, get());
        assertOk(x, 'hello world');
        assert.deepEqual(x.trailers, ['X-Checksum', 'abc', 'X-Other', '1']);
        const plain = await run(pool, get());
        assert.deepEqual(plain.trailers, ['X-Checksum', 'abc', 'X-Other', '1']);
        assert.equal(up.connections.length, 1);
      },
    );
  });

  it('a response without trailers completes with an empty list', async () => {
    await withUpstream(
      () => ok('x'),
      undefined,
      async (pool) => {
        assert.deepEqual((await run(pool, get())).trailers, []);
      },
    );
  });

  it('a head with more than 32 fields reaches onHeaders whole (the parser hands them over in parts)', async () => {
    let extra = '';
    for (let i = 0; i < 40; i++) extra += `X-H${i}: v${i}\r\n`;
    await withUpstream(
      () => ok('many', extra),
      undefined,
      async (pool) => {
        for (let round = 0; round < 2; round++) {
          const x = await run(pool, get());
          assertOk(x, 'many');
          assert.equal(x.headers!.length, 82);
          assert.deepEqual(x.headers!.slice(0, 4), ['Content-Length', '4', 'X-H0', 'v0']);
          assert.deepEqual(x.headers!.slice(-2), ['X-H39', 'v39']);
        }
      },
    );
  });

  describe('upgrade', () => {
    it('a 101 hands the socket to onUpgrade with exactly the bytes that followed the head', async () => {
      const frame = Buffer.from([0x81, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]);
      let serverSide: Socket | undefined;
      const fromClient: Buffer[] = [];
      await withRawUpstream(
        (conn) => {
          serverSide = conn.socket;
          onRequests(conn.socket, () => {
            conn.socket.on('data', (c: Buffer) => fromClient.push(c));
            conn.socket.write(
              Buffer.concat([
                Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'),
                frame,
              ]),
            );
          });
        },
        undefined,
        async (pool, up) => {
          const x = await run(pool, {
            method: 'GET',
            path: '/ws',
            headers: { connection: 'keep-alive' },
            upgrade: 'websocket',
          });
          assert.deepEqual(x.events, ['connect', 'upgrade']);
          assert.equal(x.upgrade?.status, 101);
          assert.deepEqual(x.upgrade.headers, ['Upgrade', 'websocket', 'Connection', 'Upgrade']);
          const head = up.connections[0]!.received().toString('latin1');
          assert.deepEqual(header(head, 'connection'), ['upgrade']);
          assert.deepEqual(header(head, 'upgrade'), ['websocket']);

          // The socket is handed over paused (so no byte is emitted before the handler listens): unlike undici's,
          // it needs resume() (pipe() does that; websocket-tunnel.ts pipes it).
          const socket = x.upgrade.socket;
          assert.equal(socket.isPaused(), true);
          const read: Buffer[] = [];
          socket.on('data', (c: Buffer) => read.push(c));
          socket.resume();
          for (let i = 0; i < 100 && Buffer.concat(read).length < frame.length; i++) await sleep(5);
          assert.deepEqual(Buffer.concat(read), frame);
          // Both directions work after the switch.
          serverSide!.write('more');
          socket.write('from client');
          for (let i = 0; i < 100 && Buffer.concat(read).length < frame.length + 4; i++) await sleep(5);
          for (let i = 0; i < 100 && Buffer.concat(fromClient).length < 11; i++) await sleep(5);
          assert.equal(Buffer.concat(read).subarray(frame.length).toString(), 'more');
          assert.equal(Buffer.concat(fromClient).toString(), 'from client');
          // The socket left the pool: close() does not wait for it.
          await within(pool.close(), 1000, 'pool close with an upgraded socket open');
          socket.destroy();
        },
      );
    });

    it("a 101 to a request that did not ask for one: onError 'bad upgrade'", async () => {
      await withUpstream(
        () => 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nxx',
        undefined,
        async (pool, up) => {
          const x = await run(pool, get());
          assert.equal(x.error?.message, 'bad upgrade');
          assert.equal(x.error.code, 'UND_ERR_SOCKET');
          assert.deepEqual(x.events, ['connect', 'error']);
          await within(up.connections[0]!.closed, 2000, 'the connection closes');
        },
      );
    });

    it('a non-101 answer to an upgrade request is an ordinary response; the connection is not reused', async () => {
      await withUpstream(
        (_req, conn) => ok(conn.index === 0 ? 'no switch' : 'fresh'),
        undefined,
        async (pool, up) => {
          const x = await run(pool, { method: 'GET', path: '/ws', headers: {}, upgrade: 'websocket' });
          assertOk(x, 'no switch');
          assert.deepEqual(x.events, ['connect', 'headers:200', 'data', 'complete']);
          await within(up.connections[0]!.closed, 2000, 'the connection closes');
          assertOk(await run(pool, get()), 'fresh');
          assert.equal(up.connections.length, 2);
        },
      );
    });
  });

  describe('read buffer (plain connections read into one buffer of their own)', () => {
    /** Dispatches with a handler that records each body chunk as given (no copy), through onDataView when `view`. */
    function rawChunks(
      pool: Http1Pool,
      view: { keep: boolean } | undefined,
    ): { chunks: Buffer[]; done: Promise<void>; failed: () => Error | undefined } {
      const chunks: Buffer[] = [];
      let error: Error | undefined;
      let settle!: () => void;
      const done = new Promise<void>((resolve) => {
        settle = resolve;
      });
      const handler: DispatchHandler = {
        onHeaders: () => true,
        onData(chunk) {
          chunks.push(chunk);
          return true;
        },
        onComplete: () => settle(),
        onError(err) {
          error = err;
          settle();
        },
      };
      if (view !== undefined) {
        handler.onDataView = (chunk, keep) => {
          if (view.keep) keep();
          chunks.push(chunk);
          return true;
        };
      }
      pool.dispatch(get(), handler);
      return { chunks, done: within(done, 5000, 'GET'), failed: () => error };
    }

    const answers = ['a'.repeat(3000), 'b'.repeat(3000)];

    /** Two responses, one after the other, on one connection, each recorded by `rawChunks`. */
    async function twoResponses(
      view: { keep: boolean } | undefined,
    ): Promise<{ first: ReturnType<typeof rawChunks>; second: ReturnType<typeof rawChunks> }> {
      let got!: { first: ReturnType<typeof rawChunks>; second: ReturnType<typeof rawChunks> };
      await withUpstream(
        (req) => ok(answers[req.index]!),
        { connections: 1 },
        async (pool, up) => {
          const first = rawChunks(pool, view);
          await first.done;
          const second = rawChunks(pool, view);
          await second.done;
          assert.equal(up.connections.length, 1, 'both on one connection');
          assert.equal(first.failed(), undefined);
          assert.equal(second.failed(), undefined);
          got = { first, second };
        },
      );
      return got;
    }

    it('a handler without onDataView is given copies: a chunk kept past its callback survives the next response', async () => {
      const { first, second } = await twoResponses(undefined);
      assert.equal(Buffer.concat(first.chunks).toString(), answers[0]);
      assert.equal(Buffer.concat(second.chunks).toString(), answers[1]);
    });

    it('onDataView without keep(): views of one buffer, which the next read reuses', async () => {
      const { first, second } = await twoResponses({ keep: false });
      assert.equal(second.chunks[0]!.buffer, first.chunks[0]!.buffer, 'the same buffer');
      // The first response's view now shows the second's bytes: what keep() is for.
      assert.equal(Buffer.concat(first.chunks).toString(), answers[1]);
    });

    it('onDataView with keep(): the kept views survive later reads, which go to a new buffer', async () => {
      const { first, second } = await twoResponses({ keep: true });
      assert.notEqual(second.chunks[0]!.buffer, first.chunks[0]!.buffer);
      assert.equal(Buffer.concat(first.chunks).toString(), answers[0]);
      assert.equal(Buffer.concat(second.chunks).toString(), answers[1]);
    });

    it('an upgrade does not run on an idle pooled connection (its socket must emit data): a new one takes its place', async () => {
      const frame = Buffer.from('after the switch');
      await withRawUpstream(
        (conn) => {
          onRequests(conn.socket, (req) => {
            if (req.headers.upgrade === undefined) conn.socket.write(ok('plain'));
            else
              conn.socket.write(
                `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n${frame}`,
              );
          });
        },
        { connections: 1 },
        async (pool, up) => {
          assertOk(await run(pool, get()), 'plain');
          const x = await run(pool, { method: 'GET', path: '/ws', headers: {}, upgrade: 'websocket' });
          assert.equal(x.upgrade?.status, 101);
          assert.equal(up.connections.length, 2, 'a connection of its own');
          await within(up.connections[0]!.closed, 2000, 'the idle connection closes to make room (connections: 1)');
          const read: Buffer[] = [];
          x.upgrade.socket.on('data', (c: Buffer) => read.push(c));
          x.upgrade.socket.resume();
          for (let i = 0; i < 100 && Buffer.concat(read).length < frame.length; i++) await sleep(5);
          assert.equal(Buffer.concat(read).toString(), frame.toString());
          x.upgrade.socket.destroy();
          // The pooled connection still serves.
          assertOk(await run(pool, get()), 'plain');
        },
      );
    });
  });

  it('an upgrade queued behind the limit gets a new connection in place of the one that frees up', async () => {
    let releaseSlow!: () => void;
    await withRawUpstream(
      (conn) => {
        onRequests(conn.socket, (req) => {
          if (req.headers.upgrade !== undefined) {
            conn.socket.write(
              'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nhi',
            );
          } else {
            releaseSlow = () => conn.socket.write(ok('slow'));
          }
        });
      },
      { connections: 1 },
      async (pool, up) => {
        const slow = dispatch(pool, get());
        for (let i = 0; i < 100 && releaseSlow === undefined; i++) await sleep(5);
        const upgrade = dispatch(pool, { method: 'GET', path: '/ws', headers: {}, upgrade: 'websocket' });
        await sleep(50);
        assert.equal(up.connections.length, 1, 'the upgrade waits: connections: 1');
        releaseSlow();
        await within(slow.done, 2000, 'the slow GET');
        assertOk(slow, 'slow');
        await within(upgrade.done, 2000, 'the upgrade');
        assert.equal(upgrade.upgrade?.status, 101);
        assert.equal(up.connections.length, 2);
        await within(up.connections[0]!.closed, 2000, 'the freed connection closes');
        const read: Buffer[] = [];
        upgrade.upgrade.socket.on('data', (c: Buffer) => read.push(c));
        upgrade.upgrade.socket.resume();
        for (let i = 0; i < 100 && Buffer.concat(read).length < 2; i++) await sleep(5);
        assert.equal(Buffer.concat(read).toString(), 'hi');
        upgrade.upgrade.socket.destroy();
      },
    );
  });

  describe('abort', () => {
    /** Head and 3 of 100 body bytes, then the rest 150 ms later (if the connection is still open). */
    function slowBody(conn: RawConnection): string {
      setTimeout(() => {
        if (!conn.socket.destroyed) conn.socket.write('x'.repeat(97));
      }, 150);
      return 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc';
    }

    it('abort() mid-response: onError once, the connection closed, no further callbacks', async () => {
      await withUpstream(
        (_req, conn) => slowBody(conn),
        undefined,
        async (pool, up) => {
          const x = await run(pool, get(), {
            onData(ex) {
              ex.abort!();
              return true;
            },
          });
          assert.equal(x.error?.code, 'UND_ERR_ABORTED');
          await within(up.connections[0]!.closed, 2000, 'the connection closes');
          await sleep(250);
          assert.deepEqual(x.events, ['connect', 'headers:200', 'data', 'error']);
          x.abort!();
          assert.deepEqual(x.events, ['connect', 'headers:200', 'data', 'error'], 'a second abort does nothing');
        },
      );
    });

    it('abort(err) from outside while the body is pending: onError gets err', async () => {
      await withUpstream(
        (_req, conn) => slowBody(conn),
        undefined,
        async (pool) => {
          const x = dispatch(pool, get());
          for (let i = 0; i < 200 && !x.events.includes('data'); i++) await sleep(5);
          const reason = new Error('per-try timeout');
          x.abort!(reason);
          await within(x.done, 1000, 'abort');
          assert.equal(x.error, reason);
          await sleep(250);
          assert.deepEqual(x.events, ['connect', 'headers:200', 'data', 'error']);
        },
      );
    });

    it('abort() inside onHeaders: onError once, no data, the connection closed', async () => {
      await withUpstream(
        () => ok('a body that must not be delivered'),
        undefined,
        async (pool, up) => {
          const x = await run(pool, get(), {
            onHeaders(ex) {
              ex.abort!();
              return true;
            },
          });
          await within(up.connections[0]!.closed, 2000, 'the connection closes');
          await sleep(50);
          assert.deepEqual(x.events, ['connect', 'headers:200', 'error']);
          assert.equal(x.error?.code, 'UND_ERR_ABORTED');
        },
      );
    });

    it('abort() inside onConnect: nothing is written upstream, and the connection serves the next request', async () => {
      await withUpstream(
        () => ok('x'),
        undefined,
        async (pool, up) => {
          const x = await run(pool, get('/gone'), { onConnect: (ex) => ex.abort!() });
          assert.deepEqual(x.events, ['connect', 'error']);
          assert.equal(x.error?.code, 'UND_ERR_ABORTED');
          await sleep(50);
          assert.equal(up.connections[0]!.received().length, 0);
          assertOk(await run(pool, get('/next')), 'x');
          assert.equal(up.connections.length, 1, 'the connection was kept');
          assert.doesNotMatch(up.connections[0]!.received().toString('latin1'), /\/gone/);
        },
      );
    });

    it('5,000 queued requests given up in onConnect hand the connection on in a loop, not a recursion', async () => {
      await withRawUpstream(
        (conn) => {
          // The first request is held until all the others are queued behind it.
          onRequests(conn.socket, (req) => setTimeout(() => conn.socket.write(ok(req.path)), 200));
        },
        { connections: 1 },
        async (pool, up) => {
          const first = dispatch(pool, get('/first'));
          const gone = Array.from({ length: 5000 }, (_, i) =>
            dispatch(pool, get(`/gone${i}`), { onConnect: (ex) => ex.abort!() }),
          );
          await within(first.done, 3000, 'the first request');
          await within(Promise.all(gone.map((x) => x.done)), 3000, 'every given-up request');
          assert.ok(gone.every((x) => x.error?.code === 'UND_ERR_ABORTED'));
          assertOk(await run(pool, get('/next')), '/next');
          assert.equal(up.connections.length, 1, 'one connection served all');
        },
      );
    });
  });

  describe('close and destroy', () => {
    it('close() resolves after the requests in flight finish; dispatch after close fails UND_ERR_CLOSED', async () => {
      await withRawUpstream(
        (conn) => {
          onRequests(conn.socket, (req) => setTimeout(() => conn.socket.write(ok(req.path)), 100));
        },
        { connections: 1 },
        async (pool, up) => {
          const order: string[] = [];
          const a = dispatch(pool, get('/a'));
          const b = dispatch(pool, get('/b'));
          a.done.then(() => order.push('a'));
          b.done.then(() => order.push('b'));
          await sleep(10);
          const closing = pool.close().then(() => order.push('closed'));
          const late = dispatch(pool, get('/late'));
          await within(closing, 3000, 'close');
          assertOk(a, '/a');
          assertOk(b, '/b');
          assert.deepEqual(order, ['a', 'b', 'closed']);
          await within(late.done, 1000, 'late dispatch');
          assert.equal(late.error?.code, 'UND_ERR_CLOSED');
          assert.deepEqual(late.events, ['error']);
          await within(up.connections[0]!.closed, 1000, 'connections closed');
        },
      );
    });

    it('destroy(): the request in flight and the queued ones fail, and destroy resolves', async () => {
      const up = await startAnsweringUpstream(() => undefined);
      const pool = newPool(up.url, { connections: 1 });
      try {
        const a = dispatch(pool, get('/a'));
        const b = dispatch(pool, get('/b'));
        const c = dispatch(pool, get('/c'));
        for (let i = 0; i < 200 && up.connections[0]?.received().length === undefined; i++) await sleep(5);
        await sleep(20);
        await within(pool.destroy(), 1000, 'destroy');
        await within(Promise.all([a.done, b.done, c.done]), 1000, 'every request settles');
        assert.equal(b.error?.code, 'UND_ERR_ABORTED');
        assert.equal(c.error?.code, 'UND_ERR_ABORTED');
        assert.deepEqual(b.events, ['error']);
        assert.ok(a.error !== undefined, 'the request in flight fails');
        assert.deepEqual(a.events, ['connect', 'error']);
      } finally {
        await up.close();
      }
    });

    it('destroy() while a connection is being made fails its request (nothing is sent)', async () => {
      await withUpstream(
        () => ok('sent anyway'),
        undefined,
        async (pool, up) => {
          const x = dispatch(pool, get());
          const destroyed = pool.destroy();
          await within(x.done, 2000, 'the request settles');
          await destroyed;
          assert.equal(x.events.at(-1), 'error');
          assert.equal(up.connections[0]?.received().length ?? 0, 0, 'nothing written upstream');
        },
      );
    });
  });

  it('a response head over 16 KiB: UND_ERR_HEADERS_OVERFLOW', async () => {
    const up = await startAnsweringUpstream(() => ok('x', `X-Big: ${'a'.repeat(17 * 1024)}\r\n`));
    const pool = newPool(up.url);
    try {
      const x = await run(pool, get());
      assert.equal(x.error?.code, 'UND_ERR_HEADERS_OVERFLOW');
      assert.deepEqual(x.events, ['connect', 'error']);
      // Just under the limit is fine.
      const small = await startAnsweringUpstream(() => ok('x', `X-Big: ${'a'.repeat(15 * 1024)}\r\n`));
      const pool2 = newPool(small.url);
      try {
        assertOk(await run(pool2, get()), 'x');
      } finally {
        await pool2.destroy();
        await small.close();
      }
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  describe('back-pressure', () => {
    for (const framing of ['Content-Length', 'chunked'] as const) {
      it(`onData returning false stops reading a ${framing} body: the upstream stalls until resume(), memory stays bounded`, async () => {
        const total = 64 * 1024 * 1024;
        const piece = Buffer.alloc(1024 * 1024, 'z');
        const chunkHead = `${piece.length.toString(16)}\r\n`;
        let accepted = 0;
        let finished = false;
        await withRawUpstream(
          (conn) => {
            onRequests(conn.socket, () => {
              const socket = conn.socket;
              socket.write(
                framing === 'chunked'
                  ? 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'
                  : `HTTP/1.1 200 OK\r\nContent-Length: ${total}\r\n\r\n`,
              );
              const pump = (): void => {
                while (accepted < total) {
                  accepted += piece.length;
                  if (framing === 'chunked') socket.write(chunkHead);
                  const more = socket.write(piece);
                  if (framing === 'chunked') socket.write(accepted < total ? '\r\n' : '\r\n0\r\n\r\n');
                  if (!more) {
                    socket.once('drain', pump);
                    return;
                  }
                }
                finished = true;
              };
              pump();
            });
          },
          { idleTimeout: 5000 },
          async (pool) => {
            let received = 0;
            let paused = false;
            const x = dispatch(pool, get(), {
              discardData: true,
              onData(_ex, chunk) {
                received += chunk.length;
                // Pause once, on the first chunk.
                if (!paused) {
                  paused = true;
                  return false;
                }
                return true;
              },
            });
            await sleep(500);
            const before = received;
            assert.ok(before > 0, 'the first chunk arrived');
            assert.ok(before <= 4 * 1024 * 1024, `received ${before} bytes while paused`);
            assert.equal(finished, false, 'the upstream could not send it all');
            assert.ok(accepted < total, 'the upstream is stalled on a full socket');
            x.resume!();
            await within(x.done, 10_000, 'the rest of the body');
            assert.equal(x.error, undefined);
            assert.equal(received, total);
            assert.equal(x.events.at(-1), 'complete');
          },
        );
      });
    }

    it('a handler that paused on the last piece of a Content-Length body leaves the connection usable', async () => {
      await withUpstream(
        () => ok('hello'),
        { responseTimeout: 500 },
        async (pool, up) => {
          const first = await run(pool, get('/1'), { onData: () => false });
          assert.equal(first.events.at(-1), 'complete');
          // The first handler never calls resume(): its response is complete.
          assertOk(await run(pool, get('/2')), 'hello');
          assert.equal(up.connections.length, 1);
        },
      );
    });

    it('a handler that paused on the last chunk of a chunked body does not leave the connection paused', async () => {
      await withUpstream(
        () => chunked(['hello']),
        { responseTimeout: 500 },
        async (pool) => {
          const first = await run(pool, get('/1'), { onData: () => false });
          assert.equal(first.events.at(-1), 'complete');
          assertOk(await run(pool, get('/2')), 'hello');
        },
      );
    });

    // A pause takes effect at the next socket read (as in Node's own client): what one read already holds is
    // delivered, at most one read (64 KiB). The connection is never left paused for the next request.
    it('onHeaders returning false: the body read with the head is still delivered, and the connection is reusable', async () => {
      await withUpstream(
        () => ok('hello'),
        { responseTimeout: 500 },
        async (pool, up) => {
          const x = await run(pool, get('/1'), { onHeaders: () => false });
          assertOk(x, 'hello');
          assertOk(await run(pool, get('/2')), 'hello');
          assert.equal(up.connections.length, 1, 'one connection served both');
        },
      );
    });

    it('onData returning false stops reading at the next read; resume() reads on', async () => {
      await withUpstream(
        () => `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nab\r\n`,
        undefined,
        async (pool, up) => {
          const x = dispatch(pool, get(), { onData: () => false });
          await sleep(100);
          assert.deepEqual(x.events, ['connect', 'headers:200', 'data']);
          up.connections[0]!.socket.write('2\r\ncd\r\n0\r\n\r\n');
          await sleep(100);
          assert.deepEqual(x.events, ['connect', 'headers:200', 'data'], 'nothing read while paused');
          x.resume!();
          await within(x.done, 1000, 'after resume');
          assertOk(x, 'abcd');
        },
      );
    });
  });

  describe('https', () => {
    const dir = certDir();
    const leaf = makeCert(dir, ['DNS:localhost', 'IP:127.0.0.1']);
    const cert = readFileSync(leaf.cert, 'utf8');
    const key = readFileSync(leaf.key, 'utf8');

    async function startTlsUpstream() {
      const server = createHttpsServer({ cert, key }, (req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`tls ${req.url} ${(req.socket as Socket & { alpnProtocol?: string }).alpnProtocol}`);
      });
      const sockets = new Set<Socket>();
      server.on('secureConnection', (s: Socket) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      return {
        url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
        sockets,
        async close() {
          server.closeAllConnections();
          server.close();
          await once(server, 'close').catch(() => {});
        },
      };
    }

    it('with the CA given, requests work over TLS and reuse the connection', async () => {
      const up = await startTlsUpstream();
      const tls = {
        id: 't',
        ca: cert,
        servername: undefined,
        cert: undefined,
        key: undefined,
        rejectUnauthorized: true,
      };
      const pool = newPool(up.url, { tls });
      try {
        const a = await run(pool, get('/a'));
        assert.equal(a.error, undefined, a.error?.message);
        assert.equal(a.status, 200);
        assert.equal(a.body(), 'tls /a http/1.1');
        assertOk(await run(pool, get('/b')), 'tls /b http/1.1');
      } finally {
        await pool.destroy();
        await up.close();
      }
    });

    it('a new connection resumes the TLS session of an earlier one (no full handshake)', async () => {
      const up = await startTlsUpstream();
      const reused: boolean[] = [];
      const tls = {
        id: 't',
        ca: cert,
        servername: undefined,
        cert: undefined,
        key: undefined,
        rejectUnauthorized: true,
      };
      const pool = newPool(up.url, { tls, keepAliveTimeout: 1 });
      try {
        for (const path of ['/a', '/b', '/c']) {
          assertOk(await run(pool, get(path)), `tls ${path} http/1.1`);
          for (const s of up.sockets) reused.push((s as unknown as { isSessionReused(): boolean }).isSessionReused());
          // keepAliveTimeout 1 ms: the next request needs a new connection.
          await sleep(50);
        }
        assert.equal(reused[0], false, 'the first connection makes a full handshake');
        assert.ok(reused.slice(1).every(Boolean), `later connections resume: ${reused}`);
      } finally {
        await pool.destroy();
        await up.close();
      }
    });

    it('without the CA, the self-signed certificate is refused with a certificate error', async () => {
      const up = await startTlsUpstream();
      const pool = newPool(up.url);
      try {
        const x = await run(pool, get());
        assert.deepEqual(x.events, ['error']);
        assert.match(x.error?.code ?? '', /CERT|SELF_SIGNED/);
        assert.equal(x.error?.code, 'DEPTH_ZERO_SELF_SIGNED_CERT');
      } finally {
        await pool.destroy();
        await up.close();
      }
    });
  });

  it('sends a Host header from the origin when the request has none', async () => {
    const up = await startUpstream((req, res) => res.end(req.headers.host));
    const pool = newPool(up.url);
    try {
      const x = await run(pool, { method: 'GET', path: '/', headers: {} });
      assert.equal(x.body(), new URL(up.url).host);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });
});
