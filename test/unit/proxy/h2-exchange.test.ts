/**
 * @module H2Request/H2Response (src/proxy/h2-exchange.ts) over a real node:http2 server and client: the HTTP/1
 * shapes the request path relies on.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { it } from 'node:test';
import { H2Request, H2Response } from '../../../src/proxy/h2-exchange.ts';

/** Serves each stream through `handle` with a request/response pair; returns the client's view of one request. */
async function exchange(
  handle: (req: H2Request, res: H2Response) => void,
  request: Record<string, string> = {},
  body?: string,
): Promise<{ headers: IncomingHttpHeaders; body: string; trailers: IncomingHttpHeaders | undefined }> {
  const server = createServer();
  let socket: Socket | undefined;
  server.prependListener('connection', (s: Socket) => {
    socket = s;
  });
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    const req = new H2Request(stream, headers, socket!, 0);
    handle(req, new H2Response(stream, req));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    const stream = client.request({ ':path': '/p?q=1', ...request }, { endStream: body === undefined });
    if (body !== undefined) stream.end(body);
    let trailers: IncomingHttpHeaders | undefined;
    stream.on('trailers', (t: IncomingHttpHeaders) => {
      trailers = t;
    });
    const [headers] = (await once(stream, 'response')) as [IncomingHttpHeaders];
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString();
    return { headers, body: text, trailers };
  } finally {
    client.close();
    server.close();
  }
}

it('gives the request HTTP/1 shapes: no pseudo-headers, host from :authority, the real socket', async () => {
  let seen: H2Request | undefined;
  await exchange((req, res) => {
    seen = req;
    res.end();
  });
  assert.equal(seen!.method, 'GET');
  assert.equal(seen!.url, '/p?q=1');
  assert.equal(seen!.httpVersionMajor, 2);
  assert.equal(seen!.headers.host, seen!.authority);
  assert.deepEqual(
    Object.keys(seen!.headers).filter((n) => n.startsWith(':')),
    [],
  );
  assert.equal(typeof seen!.socket.remoteAddress, 'string');
  assert.equal(seen!.complete, true, 'a request ended with its HEADERS has no body to wait for');
});

it('writeHead takes a flat list: a repeated name gives one field each, connection-specific fields are dropped', async () => {
  const got = await exchange((_req, res) => {
    res.writeHead(201, [
      'Set-Cookie',
      'a=1',
      'set-cookie',
      'b=2',
      'Connection',
      'close',
      'X-One',
      'x',
      'content-length',
      '2',
    ]);
    res.end('ok');
  });
  assert.equal(got.headers[':status'], 201);
  assert.deepEqual(got.headers['set-cookie'], ['a=1', 'b=2']);
  assert.equal(got.headers.connection, undefined);
  assert.equal(got.headers['x-one'], 'x');
  assert.equal(got.body, 'ok');
});

it('refuses an invalid field before anything is sent, and the response can still be answered', async () => {
  const got = await exchange((_req, res) => {
    assert.throws(() => res.writeHead(200, ['x-upstream', 'kept?', 'x-bad', 'a\r\nb']));
    assert.equal(res.headersSent, false);
    res.writeHead(502, { 'content-length': 0 });
    res.end();
  });
  assert.equal(got.headers[':status'], 502);
  assert.equal(got.headers['x-bad'], undefined);
  assert.equal(got.headers['x-upstream'], undefined, 'nothing of the refused head is kept');
});

it('relays the request body through data and end, and setHeader fields join the head', async () => {
  const got = await exchange(
    (req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => {
        text += c.toString();
      });
      req.on('end', () => {
        res.setHeader('x-echo', 'yes');
        res.end(text.toUpperCase());
      });
    },
    { ':method': 'POST' },
    'hello',
  );
  assert.equal(got.body, 'HELLO');
  assert.equal(got.headers['x-echo'], 'yes');
});

it('sends trailers at the end of a body of unannounced length', async () => {
  const got = await exchange((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('part');
    res.addTrailers({ 'grpc-status': '0' });
    res.end();
  });
  assert.equal(got.body, 'part');
  assert.equal(got.trailers?.['grpc-status'], '0');
});

it('a closed stream lets go of its request and response, and both still see close (then the request its own)', async () => {
  let stream: ServerHttp2Stream | undefined;
  const order: string[] = [];
  let closed: Promise<unknown> | undefined;
  await exchange((req, res) => {
    stream = req.stream;
    req.on('close', () => order.push('request close'));
    res.on('close', () => order.push('response close'));
    closed = once(req.stream, 'close');
    res.end('done');
  });
  await closed;
  assert.deepEqual(order, ['response close', 'request close']);
  // Node keeps a closed stream's object until a full collection; what it still points to would be promoted.
  const held = Object.getOwnPropertySymbols(stream!).map((s) => (stream as unknown as Record<symbol, unknown>)[s]);
  assert.ok(!held.some((v) => v instanceof H2Request || v instanceof H2Response), 'no exchange object on the stream');
});
