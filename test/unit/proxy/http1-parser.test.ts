/**
 * The llhttp behaviours the HTTP/1.1 upstream client (src/proxy/http1/connection.ts) relies on, through
 * `createResponseParser`. The parser is Node's own, reached through an undocumented module: a Node upgrade
 * that changes one of these fails here rather than in a request.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createResponseParser, type ResponseParser } from '../../../src/proxy/http1/llhttp.ts';

type Event =
  | { readonly kind: 'headers'; readonly pairs: string[] }
  | {
      readonly kind: 'head';
      readonly version: string;
      readonly headers: string[] | undefined;
      readonly status: number;
      readonly statusText: string;
      readonly upgrade: boolean;
      readonly keepAlive: boolean;
    }
  | { readonly kind: 'body'; readonly data: string }
  | { readonly kind: 'complete' };

interface Recorder {
  readonly parser: ResponseParser;
  readonly events: Event[];
}

/**
 * A parser that records its callbacks. `skipBody` is what onHeadersComplete returns (1: a response to HEAD,
 * 2: stop after the head), or a function of how many heads were seen so far (this one included).
 */
function recorder(skipBody: number | ((heads: number) => number) = 0, maxHeaderSize = 16384): Recorder {
  let heads = 0;
  const events: Event[] = [];
  const parser = createResponseParser(
    {
      onHeaders(pairs) {
        events.push({ kind: 'headers', pairs: [...pairs] });
      },
      onHeadersComplete(major, minor, headers, _method, _url, status, statusText, upgrade, keepAlive) {
        events.push({
          kind: 'head',
          version: `${major}.${minor}`,
          headers: headers === undefined ? undefined : [...headers],
          status,
          statusText,
          upgrade,
          keepAlive,
        });
        heads++;
        return typeof skipBody === 'number' ? skipBody : skipBody(heads);
      },
      onBody(chunk) {
        events.push({ kind: 'body', data: chunk.toString('latin1') });
      },
      onMessageComplete() {
        events.push({ kind: 'complete' });
      },
    },
    maxHeaderSize,
  );
  return { parser, events };
}

function bytes(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

/** The kinds of the recorded events, with the status of heads: `head:200`, `body`, `complete`. */
function kinds(events: Event[]): string[] {
  return events.map((e) => (e.kind === 'head' ? `head:${e.status}` : e.kind));
}

function bodyOf(events: Event[]): string {
  return events.map((e) => (e.kind === 'body' ? e.data : '')).join('');
}

/** Runs `input` through a fresh parser and returns the parse error (fails when there is none). */
function parseError(input: string): Error & { code: string } {
  const { parser, events } = recorder();
  const result = parser.execute(bytes(input));
  parser.close();
  assert.notEqual(typeof result, 'number', `parsed without error: ${JSON.stringify(events)}`);
  assert.ok(!events.some((e) => e.kind === 'complete'), 'no message completes');
  return result as Error & { code: string };
}

describe('llhttp response parser (createResponseParser)', () => {
  it('parses a 1xx and the final response from one buffer, each with its head and completion', () => {
    const { parser, events } = recorder();
    const input = bytes(
      'HTTP/1.1 100 Continue\r\n\r\n' +
        'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n' +
        'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi',
    );
    assert.equal(parser.execute(input), input.length);
    assert.deepEqual(kinds(events), ['head:100', 'complete', 'head:103', 'complete', 'head:200', 'body', 'complete']);
    const early = events[2] as Extract<Event, { kind: 'head' }>;
    assert.deepEqual(early.headers, ['Link', '</a.css>; rel=preload']);
    assert.equal(early.statusText, 'Early Hints');
    assert.equal(bodyOf(events), 'hi');
    parser.close();
  });

  for (const [status, text] of [
    [304, 'Not Modified'],
    [204, 'No Content'],
  ] as const) {
    it(`a ${status} with Content-Length has no body: the next bytes are the next response`, () => {
      const { parser, events } = recorder();
      const input = bytes(
        `HTTP/1.1 ${status} ${text}\r\nContent-Length: 5\r\n\r\n` + 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
      );
      assert.equal(parser.execute(input), input.length);
      assert.deepEqual(kinds(events), [`head:${status}`, 'complete', 'head:200', 'body', 'complete']);
      assert.equal(bodyOf(events), 'hello');
      parser.close();
    });
  }

  it('returning 1 from onHeadersComplete skips the body a HEAD response announces', () => {
    const { parser, events } = recorder(1);
    const head = bytes('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n');
    assert.equal(parser.execute(head), head.length);
    assert.deepEqual(kinds(events), ['head:200', 'complete']);
    // The message is over: the end of input is no error.
    assert.equal(parser.finish(), undefined);
    parser.close();

    // Returning 0 for the same head waits for 100 bytes of body.
    const get = recorder(0);
    get.parser.execute(head);
    assert.deepEqual(kinds(get.events), ['head:200']);
    assert.equal((get.parser.finish() as Error & { code: string }).code, 'HPE_INVALID_EOF_STATE');
    get.parser.close();
  });

  it('returning 2 from onHeadersComplete ends the message at the head: the body bytes are left to the caller', () => {
    // connection.ts relays Content-Length bodies itself (slices of the socket's reads) this way.
    const { parser, events } = recorder((heads) => (heads === 1 ? 2 : 0));
    const head = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n';
    assert.equal(parser.execute(bytes(`${head}helloHTTP/1.1 201 Created\r\n`)), Buffer.byteLength(head));
    assert.deepEqual(kinds(events), ['head:200', 'complete']);
    // Nothing is pending: the end of input is no error, and the next response parses from its first byte.
    assert.equal(parser.finish(), undefined);
    const second = bytes('HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nyes');
    assert.equal(parser.execute(second), second.length);
    assert.deepEqual(kinds(events), ['head:200', 'complete', 'head:201', 'body', 'complete']);
    assert.equal(bodyOf(events), 'yes');
    parser.close();
  });

  it('after a head stopped with 2, parse errors go unreported until reset(); after it they are errors again', () => {
    // llhttp marks the parser upgraded, and Node's binding reports no error for an upgraded parser: the second
    // response's bad field just stops the parse. connection.ts resets the parser after each such message.
    const bad = bytes('HTTP/1.1 200 OK\r\nX-Bad: a\x7fb\r\nContent-Length: 2\r\n\r\nno');
    const head = bytes('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
    const unreset = recorder((heads) => (heads === 1 ? 2 : 0));
    assert.equal(unreset.parser.execute(head), head.length);
    const swallowed = unreset.parser.execute(bad);
    assert.equal(typeof swallowed, 'number', 'no error reported');
    assert.ok((swallowed as number) < bad.length, 'the parse stopped short');
    unreset.parser.close();
    const { parser } = recorder((heads) => (heads === 1 ? 2 : 0));
    assert.equal(parser.execute(head), head.length);
    parser.reset();
    const reported = parser.execute(bad);
    assert.equal(typeof reported, 'object');
    assert.equal((reported as Error & { code: string }).code, 'HPE_INVALID_HEADER_TOKEN');
    parser.close();
  });

  it('a 101 stops execute right after the head and returns the bytes it parsed', () => {
    const { parser, events } = recorder();
    const head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';
    const input = bytes(`${head}\x81\x05hello`);
    const parsed = parser.execute(input);
    assert.equal(parsed, Buffer.byteLength(head));
    assert.equal(input.subarray(parsed as number).toString('latin1'), '\x81\x05hello');
    const h = events[0] as Extract<Event, { kind: 'head' }>;
    assert.equal(h.status, 101);
    assert.equal(h.upgrade, true);
    assert.deepEqual(h.headers, ['Upgrade', 'websocket', 'Connection', 'Upgrade']);
    // The frame bytes never reach onBody.
    assert.ok(!events.some((e) => e.kind === 'body'));
    parser.close();
  });

  it('a body without Content-Length or chunking is read to EOF and completes on finish()', () => {
    const { parser, events } = recorder();
    parser.execute(bytes('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome '));
    parser.execute(bytes('body'));
    assert.deepEqual(kinds(events), ['head:200', 'body', 'body']);
    assert.equal((events[0] as Extract<Event, { kind: 'head' }>).keepAlive, false);
    assert.equal(parser.finish(), undefined);
    assert.deepEqual(kinds(events), ['head:200', 'body', 'body', 'complete']);
    assert.equal(bodyOf(events), 'some body');
    parser.close();
  });

  it('finish() after a complete message returns undefined, and the parser goes on with the next response', () => {
    const { parser, events } = recorder();
    parser.execute(bytes('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi'));
    assert.equal(parser.finish(), undefined);
    const second = bytes('HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nyes');
    assert.equal(parser.execute(second), second.length);
    assert.deepEqual(kinds(events), ['head:200', 'body', 'complete', 'head:201', 'body', 'complete']);
    assert.equal(bodyOf(events), 'hiyes');
    parser.close();
  });

  it('keep-alive is what HTTP/1.1 (unless Connection: close) and HTTP/1.0 (only with keep-alive) say', () => {
    const cases: [string, boolean][] = [
      ['HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', true],
      ['HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n', false],
      ['HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n', false],
      ['HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n', true],
    ];
    for (const [input, keepAlive] of cases) {
      const { parser, events } = recorder();
      parser.execute(bytes(input));
      assert.equal((events[0] as Extract<Event, { kind: 'head' }>).keepAlive, keepAlive, input);
      parser.close();
    }
  });

  it('finish() in the middle of a message returns an Error with code HPE_INVALID_EOF_STATE', () => {
    for (const input of [
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi',
      'HTTP/1.1 200 OK\r\nContent-Len',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n',
      // A complete response followed by the start of another (what a misframed backend sends).
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 2',
    ]) {
      const { parser } = recorder();
      assert.equal(typeof parser.execute(bytes(input)), 'number', input);
      const err = parser.finish();
      assert.ok(err instanceof Error, input);
      assert.equal(err.code, 'HPE_INVALID_EOF_STATE', input);
      parser.close();
    }
  });

  it('two Content-Length fields are an error, even when equal', () => {
    assert.equal(
      parseError('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi').code,
      'HPE_UNEXPECTED_CONTENT_LENGTH',
    );
    assert.equal(
      parseError('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi').code,
      'HPE_UNEXPECTED_CONTENT_LENGTH',
    );
  });

  it('Content-Length with Transfer-Encoding is an error', () => {
    const err = parseError(
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n',
    );
    assert.match(err.code, /^HPE_/);
    assert.equal(err.code, 'HPE_INVALID_TRANSFER_ENCODING');
  });

  it('an obs-fold line is an error', () => {
    const err = parseError('HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n');
    assert.match(err.code, /^HPE_/);
  });

  it('a bare LF as a line ending is an error', () => {
    assert.equal(parseError('HTTP/1.1 200 OK\nContent-Length: 0\n\n').code, 'HPE_CR_EXPECTED');
    assert.equal(parseError('HTTP/1.1 200 OK\r\nX-A: a\nContent-Length: 0\r\n\r\n').code, 'HPE_CR_EXPECTED');
  });

  it('a head over maxHeaderSize is HPE_HEADER_OVERFLOW', () => {
    const { parser } = recorder(0, 1024);
    const result = parser.execute(bytes(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(2000)}\r\n\r\n`));
    assert.notEqual(typeof result, 'number');
    assert.equal((result as Error & { code: string }).code, 'HPE_HEADER_OVERFLOW');
    parser.close();
  });

  it('trailers of a chunked body arrive through onHeaders, after the body and before completion', () => {
    const { parser, events } = recorder();
    const input = bytes(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n' +
        '2\r\nhi\r\n3\r\nyou\r\n0\r\nX-T: v\r\nX-U: w\r\n\r\n',
    );
    assert.equal(parser.execute(input), input.length);
    assert.deepEqual(kinds(events), ['head:200', 'body', 'body', 'headers', 'complete']);
    assert.deepEqual((events[3] as Extract<Event, { kind: 'headers' }>).pairs, ['X-T', 'v', 'X-U', 'w']);
    assert.equal(bodyOf(events), 'hiyou');
    parser.close();
  });

  it('more than 32 header fields arrive through onHeaders, then onHeadersComplete has headers undefined', () => {
    const { parser, events } = recorder();
    let input = 'HTTP/1.1 200 OK\r\n';
    for (let i = 0; i < 40; i++) input += `X-H${i}: v${i}\r\n`;
    input += 'Content-Length: 0\r\n\r\n';
    const buf = bytes(input);
    assert.equal(parser.execute(buf), buf.length);
    const firstHead = events.findIndex((e) => e.kind === 'head');
    assert.ok(firstHead > 0, 'onHeaders comes first');
    const pairs = events.slice(0, firstHead).flatMap((e) => (e.kind === 'headers' ? e.pairs : []));
    assert.ok(events.slice(0, firstHead).every((e) => e.kind === 'headers'));
    assert.equal(pairs.length, 82);
    assert.deepEqual(pairs.slice(0, 4), ['X-H0', 'v0', 'X-H1', 'v1']);
    assert.deepEqual(pairs.slice(-2), ['Content-Length', '0']);
    const head = events[firstHead] as Extract<Event, { kind: 'head' }>;
    assert.equal(head.headers, undefined);
    assert.equal(head.status, 200);
    assert.deepEqual(kinds(events.slice(firstHead)), ['head:200', 'complete']);
    parser.close();
  });

  it('a head split across many execute calls parses the same', () => {
    const { parser, events } = recorder();
    const input = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello';
    for (const ch of input) assert.equal(parser.execute(bytes(ch)), 1);
    assert.deepEqual(
      kinds(events).filter((k) => k !== 'body'),
      ['head:200', 'complete'],
    );
    assert.deepEqual((events[0] as Extract<Event, { kind: 'head' }>).headers, ['Content-Length', '5', 'X-A', 'b']);
    assert.equal(bodyOf(events), 'hello');
    parser.close();
  });
});
