/**
 * Portico's HTTP/1.1 upstream client (src/proxy/http1/) on a REUSED keep-alive connection: each kind of first
 * response (a Content-Length body, chunked, chunked with trailers, HEAD, 204, 304, 1xx then a final response,
 * a body in several reads…) leaves the connection and its llhttp parser in some state; the second (or third)
 * response on that connection, well-formed or hostile, must then get exactly what it gets on a fresh
 * connection: the same error code, or the same body. A parser left in a bad state shows as a different
 * outcome, typically UND_ERR_HEADERS_TIMEOUT (responseTimeout, 3 s here) instead of the parse error.
 *
 * Each case runs a raw upstream that answers requests in order from a script, whatever connection they come
 * on, and counts connections: the second request must have gone over the first one (unless the first
 * response forbids reuse), and a connection that sent bytes past a response's framing is never reused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DispatchHandler, DispatchOptions } from '../../../src/proxy/http1/connection.ts';
import { Http1Pool, type Http1PoolOptions } from '../../../src/proxy/http1/pool.ts';
import {
  chunkedResponse as chunked,
  okResponse as ok,
  type RawUpstream,
  startAnsweringUpstream,
} from '../../helpers/raw-upstream.ts';
import { within } from '../../helpers/within.ts';

const OPTIONS: Http1PoolOptions = {
  connectTimeout: 2000,
  responseTimeout: 3000,
  idleTimeout: 3000,
  keepAliveTimeout: 10_000,
  connections: 10,
};

/** Between the pieces of a response written in several reads. */
const PIECE_GAP_MS = 15;

/** A complete response nobody asked for: a client that ever gets `evil` had responses split. */
const EVIL = 'HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Evil: 1\r\n\r\nevil';

/** What the upstream sends for one request: `pieces` PIECE_GAP_MS apart, then a FIN when `end`. */
interface Answer {
  readonly pieces: readonly string[];
  readonly end?: boolean;
}

/** What one request saw, comparable across connections. */
interface Outcome {
  readonly events: string[];
  readonly status: number | undefined;
  readonly body: string;
  readonly trailers: string[] | undefined;
  readonly code: string | undefined;
  readonly message: string | undefined;
}

function request(pool: Http1Pool, method: string, path: string): Promise<Outcome> {
  const events: string[] = [];
  const chunks: Buffer[] = [];
  let status: number | undefined;
  let trailers: string[] | undefined;
  let error: (Error & { code?: string }) | undefined;
  let settle!: () => void;
  const done = new Promise<void>((resolve) => {
    settle = resolve;
  });
  const handler: DispatchHandler = {
    onConnect: () => events.push('connect'),
    onHeaders(code) {
      events.push(`headers:${code}`);
      if (code >= 200) status = code;
      return true;
    },
    onData(chunk) {
      events.push('data');
      chunks.push(Buffer.from(chunk));
      return true;
    },
    onComplete(t) {
      events.push('complete');
      trailers = [...t];
      settle();
    },
    onError(err) {
      events.push('error');
      error = err;
      settle();
    },
    onUpgrade() {
      events.push('upgrade');
      settle();
    },
  };
  const opts: DispatchOptions = { method, path, headers: { host: 'upstream.test' } };
  pool.dispatch(opts, handler);
  // Longer than responseTimeout, so a swallowed error shows as its code rather than as this bound.
  return within(done, 5000, `${method} ${path}`).then(() => ({
    // Adjacent data events are one body however the reads fell.
    events: events.filter((e, i) => e !== 'data' || events[i - 1] !== 'data'),
    status,
    body: Buffer.concat(chunks).toString('latin1'),
    trailers,
    code: error?.code,
    message: error?.message,
  }));
}

/**
 * Runs `steps` (method, what the upstream answers) one after another on one pool; the upstream answers
 * requests in the order it reads them, over any connection, and answers anything past the script `ok('after')`.
 */
async function script(
  steps: readonly (readonly [method: string, answer: Answer])[],
  body: (pool: Http1Pool, up: RawUpstream, send: () => Promise<Outcome>) => Promise<void>,
): Promise<void> {
  let served = 0;
  const up = await startAnsweringUpstream((_req, conn) => {
    const answer = steps[served++]?.[1] ?? { pieces: [ok('after')] };
    const socket = conn.socket;
    (async () => {
      for (const [i, piece] of answer.pieces.entries()) {
        if (i > 0) await new Promise((r) => setTimeout(r, PIECE_GAP_MS));
        if (!socket.destroyed) socket.write(piece);
      }
      if (answer.end === true) socket.end();
    })();
    return undefined;
  });
  const pool = new Http1Pool(up.url, OPTIONS);
  let sent = 0;
  const send = () => {
    const method = steps[sent]?.[0] ?? 'GET';
    return request(pool, method, `/${++sent}`);
  };
  try {
    await body(pool, up, send);
  } finally {
    await pool.destroy();
    await up.close();
  }
}

// --- first responses -----------------------------------------------------------------------------------------

interface First {
  readonly name: string;
  readonly method: string;
  readonly answer: Answer;
  readonly status: number;
  readonly body: string;
  readonly trailers?: string[];
  /** The connection serves the next request (false: a HEAD's never does). */
  readonly reuse: boolean;
}

const FIRSTS: readonly First[] = [
  {
    name: 'a Content-Length body',
    method: 'GET',
    answer: { pieces: [ok('first')] },
    status: 200,
    body: 'first',
    reuse: true,
  },
  {
    name: 'a Content-Length: 0 response',
    method: 'GET',
    answer: { pieces: [ok('')] },
    status: 200,
    body: '',
    reuse: true,
  },
  {
    name: 'a chunked body',
    method: 'GET',
    answer: { pieces: [chunked(['fi', 'rst'])] },
    status: 200,
    body: 'first',
    reuse: true,
  },
  {
    name: 'a chunked body with trailers',
    method: 'GET',
    answer: {
      pieces: [
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n5\r\nfirst\r\n0\r\nX-T: v\r\n\r\n',
      ],
    },
    status: 200,
    body: 'first',
    trailers: ['X-T', 'v'],
    reuse: true,
  },
  {
    name: 'a HEAD response (Content-Length: 100, no body)',
    method: 'HEAD',
    answer: { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n'] },
    status: 200,
    body: '',
    reuse: false,
  },
  {
    name: 'a 204',
    method: 'GET',
    answer: { pieces: ['HTTP/1.1 204 No Content\r\nX-A: a\r\n\r\n'] },
    status: 204,
    body: '',
    reuse: true,
  },
  {
    name: 'a 304',
    method: 'GET',
    answer: { pieces: ['HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n'] },
    status: 304,
    body: '',
    reuse: true,
  },
  {
    name: 'a 100 and a 103, then a Content-Length response (three reads)',
    method: 'GET',
    answer: {
      pieces: ['HTTP/1.1 100 Continue\r\n\r\n', 'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n', ok('first')],
    },
    status: 200,
    body: 'first',
    reuse: true,
  },
  {
    name: 'a 100 then a chunked response (one read)',
    method: 'GET',
    answer: { pieces: [`HTTP/1.1 100 Continue\r\n\r\n${chunked(['first'])}`] },
    status: 200,
    body: 'first',
    reuse: true,
  },
  {
    name: 'a Content-Length body in several reads (the head split too)',
    method: 'GET',
    answer: { pieces: ['HTTP/1.1 200 OK\r\nContent-Le', 'ngth: 10\r\n\r\n', 'abc', 'defghij'] },
    status: 200,
    body: 'abcdefghij',
    reuse: true,
  },
  {
    name: 'a Content-Length body whose first bytes came with the head, the rest later',
    method: 'GET',
    answer: { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc', 'defghij'] },
    status: 200,
    body: 'abcdefghij',
    reuse: true,
  },
  {
    name: 'a chunked body in several reads',
    method: 'GET',
    answer: {
      pieces: ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab', 'c\r\n7\r\ndefghij\r\n', '0\r\n\r\n'],
    },
    status: 200,
    body: 'abcdefghij',
    reuse: true,
  },
  {
    name: 'an HTTP/1.0 keep-alive response',
    method: 'GET',
    answer: { pieces: ['HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 5\r\n\r\nfirst'] },
    status: 200,
    body: 'first',
    reuse: true,
  },
];

// --- second (or third) responses ------------------------------------------------------------------------------

interface Next {
  readonly name: string;
  readonly answer: Answer;
  /** An error code, or else a status and body. */
  readonly code?: string;
  readonly status?: number;
  readonly body?: string;
  /** The connection serves the request after it (always false after an error). */
  readonly keep: boolean;
}

const NEXTS: readonly Next[] = [
  // Well-formed.
  { name: 'a Content-Length body', answer: { pieces: [ok('second')] }, status: 200, body: 'second', keep: true },
  {
    name: 'a chunked body',
    answer: { pieces: [chunked(['sec', 'ond'])] },
    status: 200,
    body: 'second',
    keep: true,
  },
  {
    name: 'a chunked body with trailers',
    answer: { pieces: [chunked(['second'], 'X-T: w\r\n')] },
    status: 200,
    body: 'second',
    keep: true,
  },
  {
    name: 'a Content-Length body in several reads',
    answer: { pieces: ['HTTP/1.1 200 OK\r\nContent-Len', 'gth: 6\r\n\r\nsec', 'ond'] },
    status: 200,
    body: 'second',
    keep: true,
  },
  {
    name: 'a 103 then a final response',
    answer: { pieces: [`HTTP/1.1 103 Early Hints\r\nLink: </b>\r\n\r\n${ok('second')}`] },
    status: 200,
    body: 'second',
    keep: true,
  },
  { name: 'a 204', answer: { pieces: ['HTTP/1.1 204 No Content\r\n\r\n'] }, status: 204, body: '', keep: true },
  {
    name: 'a 500 with a body',
    answer: { pieces: ['HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops'] },
    status: 500,
    body: 'oops',
    keep: true,
  },
  {
    name: 'Connection: close',
    answer: { pieces: [ok('second', 'Connection: close\r\n')] },
    status: 200,
    body: 'second',
    keep: false,
  },
  {
    name: 'a body read to EOF (no length)',
    answer: { pieces: ['HTTP/1.1 200 OK\r\n\r\nsecond'], end: true },
    status: 200,
    body: 'second',
    keep: false,
  },
  {
    name: 'a Content-Length body followed by a whole response nobody asked for',
    answer: { pieces: [ok('second') + EVIL] },
    status: 200,
    body: 'second',
    keep: false,
  },
  {
    name: 'a chunked body followed by a whole response nobody asked for',
    answer: { pieces: [chunked(['second']) + EVIL] },
    status: 200,
    body: 'second',
    keep: false,
  },
  // Malformed or hostile.
  {
    name: 'a header name with a space',
    answer: { pieces: ['HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 2\r\n\r\nhi'] },
    code: 'HPE_INVALID_HEADER_TOKEN',
    keep: false,
  },
  {
    name: 'a header name with a space, in a later read than the status line',
    answer: { pieces: ['HTTP/1.1 200 OK\r\nX-A', ': a\r\nBad Header: x\r\n\r\n'] },
    code: 'HPE_INVALID_HEADER_TOKEN',
    keep: false,
  },
  {
    name: 'a NUL in a header value',
    answer: { pieces: ['HTTP/1.1 200 OK\r\nX-A: a\0b\r\nContent-Length: 2\r\n\r\nhi'] },
    code: 'HPE_INVALID_HEADER_TOKEN',
    keep: false,
  },
  {
    name: 'an obs-fold line',
    answer: { pieces: ['HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n'] },
    code: 'HPE_INVALID_HEADER_TOKEN',
    keep: false,
  },
  {
    name: 'a bare LF line ending',
    answer: { pieces: ['HTTP/1.1 200 OK\nContent-Length: 0\n\n'] },
    code: 'HPE_CR_EXPECTED',
    keep: false,
  },
  {
    name: 'a chunk size that is not hex',
    answer: { pieces: ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n'] },
    code: 'HPE_INVALID_CHUNK_SIZE',
    keep: false,
  },
  {
    name: 'a bad chunk size after a good chunk, in a later read',
    answer: { pieces: ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n', 'zz\r\n'] },
    code: 'HPE_INVALID_CHUNK_SIZE',
    keep: false,
  },
  {
    name: 'two Content-Length fields',
    answer: { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi'] },
    code: 'HPE_UNEXPECTED_CONTENT_LENGTH',
    keep: false,
  },
  {
    name: 'a Content-Length that is not a number',
    answer: { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\nhi'] },
    code: 'HPE_INVALID_CONTENT_LENGTH',
    keep: false,
  },
  {
    name: 'Content-Length with Transfer-Encoding',
    answer: {
      pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n'],
    },
    code: 'HPE_INVALID_TRANSFER_ENCODING',
    keep: false,
  },
  {
    name: 'an HTTP/2.0 status line',
    answer: { pieces: ['HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nhi'] },
    code: 'HPE_INVALID_VERSION',
    keep: false,
  },
  {
    name: 'an HTTP/1.x status line',
    answer: { pieces: ['HTTP/1.x 200 OK\r\nContent-Length: 2\r\n\r\nhi'] },
    code: 'HPE_INVALID_VERSION',
    keep: false,
  },
  {
    name: 'a four-digit status',
    answer: { pieces: ['HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nhi'] },
    code: 'HPE_INVALID_STATUS',
    keep: false,
  },
  {
    name: 'no status line at all',
    answer: { pieces: ['garbage\r\n\r\n'] },
    code: 'HPE_INVALID_CONSTANT',
    keep: false,
  },
  {
    name: 'a head over 16 KiB',
    answer: { pieces: [ok('x', `X-Big: ${'a'.repeat(17 * 1024)}\r\n`)] },
    code: 'UND_ERR_HEADERS_OVERFLOW',
    keep: false,
  },
  {
    name: 'a 101 to a request that asked for no upgrade',
    answer: { pieces: ['HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nxx'] },
    code: 'UND_ERR_SOCKET',
    keep: false,
  },
  {
    name: 'a Content-Length body cut short by a close',
    answer: { pieces: ['HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'], end: true },
    code: 'UND_ERR_SOCKET',
    keep: false,
  },
  {
    name: 'a chunked body cut short by a close',
    answer: { pieces: ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n'], end: true },
    code: 'HPE_INVALID_EOF_STATE',
    keep: false,
  },
];

/** What each `next` answer gives on a fresh connection (computed once, on first use). */
const freshOutcomes = new Map<string, Promise<Outcome>>();

function fresh(next: Next): Promise<Outcome> {
  let p = freshOutcomes.get(next.name);
  if (p === undefined) {
    p = (async () => {
      let out!: Outcome;
      await script([['GET', next.answer]], async (_pool, _up, send) => {
        out = await send();
      });
      return out;
    })();
    freshOutcomes.set(next.name, p);
  }
  return p;
}

function assertExpected(out: Outcome, next: Next, what: string): void {
  if (next.code !== undefined) {
    assert.equal(out.code, next.code, `${what}: ${out.code} ${out.message}`);
    assert.equal(out.events.at(-1), 'error', what);
  } else {
    assert.equal(out.code, undefined, `${what}: unexpected error ${out.code} ${out.message}`);
    assert.equal(out.status, next.status, what);
    assert.equal(out.body, next.body, what);
    assert.equal(out.events.at(-1), 'complete', what);
  }
}

function assertFirst(out: Outcome, first: First): void {
  assert.equal(out.code, undefined, `first response: ${out.code} ${out.message}`);
  assert.equal(out.status, first.status);
  assert.equal(out.body, first.body);
  assert.deepEqual(out.trailers, first.trailers ?? []);
}

/** `after` (a good response) is answered as the request after `next`: on the same connection only if kept. */
function assertAfter(out: Outcome, up: RawUpstream, connectionsBefore: number, next: Next): void {
  assert.equal(out.code, undefined, `the request after: ${out.code} ${out.message}`);
  assert.equal(out.body, 'after', 'the request after gets its own response, never bytes left from another');
  assert.equal(
    up.connections.length,
    connectionsBefore + (next.keep ? 0 : 1),
    next.keep ? 'the connection is reused once more' : 'the connection is not reused',
  );
}

describe('Http1Pool: responses on a reused keep-alive connection', () => {
  describe('baseline: each next response on a fresh connection', () => {
    for (const next of NEXTS) {
      it(next.name, async () => {
        assertExpected(await fresh(next), next, 'fresh');
      });
    }
  });

  for (const first of FIRSTS) {
    describe(`after ${first.name}`, () => {
      for (const next of NEXTS) {
        it(`${next.name}, as the second response: what a fresh connection gets`, async () => {
          const expected = await fresh(next);
          await script(
            [
              [first.method, first.answer],
              ['GET', next.answer],
            ],
            async (_pool, up, send) => {
              assertFirst(await send(), first);
              const out = await send();
              const connections = up.connections.length;
              assert.equal(connections, first.reuse ? 1 : 2, 'the second request went over the first connection');
              assertExpected(out, next, 'second');
              assert.deepEqual(out, expected, 'the same as on a fresh connection');
              assertAfter(await send(), up, connections, next);
            },
          );
        });

        it(`${next.name}, as the third response (after the same first response again)`, async () => {
          const expected = await fresh(next);
          await script(
            [
              [first.method, first.answer],
              [first.method, first.answer],
              ['GET', next.answer],
            ],
            async (_pool, up, send) => {
              assertFirst(await send(), first);
              assertFirst(await send(), first);
              const out = await send();
              const connections = up.connections.length;
              assert.equal(connections, first.reuse ? 1 : 3, 'all three requests went over one connection');
              assertExpected(out, next, 'third');
              assert.deepEqual(out, expected, 'the same as on a fresh connection');
              assertAfter(await send(), up, connections, next);
            },
          );
        });
      }

      it('with a whole response after it in the same write: the connection is not reused, nobody gets the extra', async () => {
        const pieces = [...first.answer.pieces];
        pieces[pieces.length - 1] += EVIL;
        await script(
          [
            [first.method, { pieces }],
            ['GET', { pieces: [ok('second')] }],
          ],
          async (_pool, up, send) => {
            assertFirst(await send(), first);
            const second = await send();
            assert.equal(second.code, undefined, `${second.code} ${second.message}`);
            assert.equal(second.body, 'second');
            assert.equal(up.connections.length, 2, 'the second request went over a new connection');
            await within(up.connections[0]!.closed, 1000, 'the client closes the first connection');
          },
        );
      });

      it('with one stray byte after it in the same write: the connection is not reused', async () => {
        const pieces = [...first.answer.pieces];
        pieces[pieces.length - 1] += 'X';
        await script(
          [
            [first.method, { pieces }],
            ['GET', { pieces: [ok('second')] }],
          ],
          async (_pool, up, send) => {
            assertFirst(await send(), first);
            const second = await send();
            assert.equal(second.code, undefined, `${second.code} ${second.message}`);
            assert.equal(second.body, 'second');
            assert.equal(up.connections.length, 2, 'the second request went over a new connection');
          },
        );
      });
    });
  }
});
