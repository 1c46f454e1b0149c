/**
 * End to end: protection against oversized and slow clients, and Expect: 100-continue.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { rawExchange, startEchoUpstream, statusOf, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';

describe('client limits', () => {
  let echo: TestServer;
  let p: PorticoProcess;

  before(async () => {
    echo = await startEchoUpstream();
    p = await startPortico(`
listeners:
  - name: web
    protocol: http
    address: 127.0.0.1:0
    limits: { maxHeaderSize: 4KiB, headersTimeout: 1s, requestTimeout: 3s, idleTimeout: 500ms }
upstreams: [ { name: echo, targets: [ { url: ${echo.url} } ] } ]
routes:
  - { name: small, match: { path: /small/* }, limits: { maxBodySize: 1KiB }, upstream: echo }
  - { name: all, match: { path: /* }, upstream: echo }
`);
  });

  after(async () => {
    await p?.stop();
    await echo?.close();
  });

  it('answers 431 to a request head over maxHeaderSize', async () => {
    const raw = await rawExchange(p.port(), `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(8000)}\r\n\r\n`);
    assert.equal(statusOf(raw), 431);
    assert.match(raw, /"code":"GW_HEADERS_TOO_LARGE"/);
  });

  it('answers 413 to a Content-Length over the route limit without reading it', async () => {
    const raw = await rawExchange(p.port(), 'POST /small/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n');
    assert.equal(statusOf(raw), 413);
    assert.match(raw, /"code":"GW_BODY_TOO_LARGE"/);
    assert.equal(echo.seen.filter((r) => r.url === '/small/x').length, 0, 'never reaches the upstream');
  });

  it('answers 413 to a chunked body that outgrows the limit', async () => {
    const chunk = 'a'.repeat(600);
    const body = `258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`;
    const raw = await rawExchange(
      p.port(),
      `POST /small/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${body}`,
    );
    assert.equal(statusOf(raw), 413);
  });

  it('lets a body under the limit through', async () => {
    const res = await fetch(`${p.url()}/small/ok`, { method: 'POST', body: 'tiny' });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { body: string }).body, 'tiny');
  });

  it('answers 408 to a client that sends its head too slowly', async () => {
    const socket = connect(p.port(), '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    await once(socket, 'close');
    assert.equal(statusOf(Buffer.concat(chunks).toString()), 408);
  });

  it('closes idle keep-alive connections after idleTimeout', async () => {
    const socket = connect(p.port(), '127.0.0.1');
    await once(socket, 'connect');
    socket.write('GET /x HTTP/1.1\r\nHost: x\r\n\r\n');
    socket.resume();
    await once(socket, 'data');
    const [hadError] = (await once(socket, 'close')) as [boolean];
    assert.equal(hadError, false);
  });

  it('rejects requests with both Content-Length and Transfer-Encoding (smuggling)', async () => {
    const raw = await rawExchange(
      p.port(),
      'POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    assert.equal(statusOf(raw), 400);
    assert.equal(echo.seen.filter((r) => r.url === '/smuggled').length, 0);
  });

  it('rejects a request without Host', async () => {
    const raw = await rawExchange(p.port(), 'GET / HTTP/1.1\r\n\r\n');
    assert.equal(statusOf(raw), 400);
    assert.match(raw, /"code":"GW_BAD_REQUEST"/);
  });

  it('sends 100 Continue only once the request is accepted', async () => {
    const accepted = connect(p.port(), '127.0.0.1');
    await once(accepted, 'connect');
    accepted.write('POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
    const [first] = (await once(accepted, 'data')) as [Buffer];
    assert.match(first.toString(), /^HTTP\/1\.1 100 Continue/);
    accepted.write('hello');
    let all = first.toString();
    accepted.on('data', (c: Buffer) => {
      all += c.toString();
    });
    while (!all.includes('"body":"hello"')) await once(accepted, 'data');
    accepted.destroy();

    const refused = await rawExchange(
      p.port(),
      'POST /small/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n',
    );
    assert.equal(statusOf(refused), 413, 'no 100 Continue for a body that would be refused');
    assert.doesNotMatch(refused, /100 Continue/);
  });

  it('answers 417 to an expectation it cannot meet', async () => {
    const raw = await rawExchange(p.port(), 'GET / HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(raw), 417);
  });
});
