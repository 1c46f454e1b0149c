/**
 * @module End-to-end tests of the PROXY protocol on L4 listeners: headers sent to targets (v1, v2) are
 * parsed by a test server; headers accepted from trusted peers, refused from untrusted ones, required from
 * trusted ones; and a header before TLS (passthrough and terminate).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { duplexPair } from 'node:stream';
import { test } from 'node:test';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { encodeProxyV1, encodeProxyV2, type ProxyHeader, parseProxyHeader } from '../../../src/l4/proxy-protocol.ts';
import { startTcpListener } from '../../../src/l4/tcp-listener.ts';
import { startTlsListener } from '../../../src/l4/tls-listener.ts';
import type { ProxyProtocolOptions } from '../../../src/l4/types.ts';
import type { Pool } from '../../../src/upstream/types.ts';
import { type Cert, closePool, makeCerts, recordingLog, startServer, tcpPool } from './helpers.ts';

type T = { after(fn: () => Promise<void> | void): void };

/** A target that parses the PROXY header it is sent and answers with it as JSON, then the payload it saw. */
async function headerEcho(t: T): Promise<Pool> {
  const srv = await startServer((s) => {
    let buf = Buffer.alloc(0);
    s.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const r = parseProxyHeader(buf);
      if (r.kind === 'need-more') return;
      s.removeAllListeners('data');
      const reply = r.kind === 'header' ? { header: r.header, rest: buf.subarray(r.length).toString() } : r;
      s.end(JSON.stringify(reply));
    });
  });
  const pool = tcpPool('echo', [`127.0.0.1:${srv.port}`]);
  t.after(async () => {
    closePool(pool);
    await srv.close();
  });
  return pool;
}

async function tcpListener(t: T, pool: Pool, proxyProtocol: ProxyProtocolOptions, log = recordingLog()) {
  const l = await startTcpListener({
    name: 'pp',
    host: '127.0.0.1',
    port: 0,
    pool: () => pool,
    connectTimeoutMs: 5_000,
    idleTimeoutMs: 0,
    maxConnections: 0,
    handshakeTimeoutMs: 5_000,
    proxyProtocol,
    log,
  });
  t.after(() => l.drain(0));
  return l;
}

function reply(c: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    c.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    c.once('end', () => resolve(text));
    c.once('error', reject);
  });
}

async function send(port: number, ...writes: Buffer[]): Promise<string> {
  const c = connect({ host: '127.0.0.1', port });
  await once(c, 'connect');
  const answer = reply(c);
  for (const w of writes) c.write(w);
  return answer;
}

test('send v1 and v2: the target parses a header naming the real client', async (t) => {
  const pool = await headerEcho(t);
  for (const version of ['v1', 'v2'] as const) {
    const l = await tcpListener(t, pool, { send: version });
    const c = connect({ host: '127.0.0.1', port: l.address.port });
    await once(c, 'connect');
    const answer = reply(c);
    c.write('payload');
    const got = JSON.parse(await answer) as { header: ProxyHeader; rest: string };
    assert.equal(got.header.version, version === 'v1' ? 1 : 2);
    assert.equal(got.header.family, 'tcp4');
    assert.deepEqual(got.header.source, { address: '127.0.0.1', port: c.localPort });
    assert.deepEqual(got.header.destination, { address: '127.0.0.1', port: l.address.port });
  }
});

test('accept from a trusted peer: its header replaces the client address passed on', async (t) => {
  const pool = await headerEcho(t);
  const l = await tcpListener(t, pool, { accept: { trusted: ['127.0.0.0/8'] }, send: 'v2' });
  const src = { address: '203.0.113.7', port: 4242 };
  const dst = { address: '198.51.100.9', port: 6379 };
  // Header and payload in one write, then a v1 header split over two writes.
  const one = JSON.parse(await send(l.address.port, Buffer.concat([encodeProxyV2(src, dst), Buffer.from('hi')])));
  assert.deepEqual(one.header.source, src);
  assert.deepEqual(one.header.destination, dst);
  const v1 = encodeProxyV1({ address: '2001:db8::1', port: 1 }, { address: '2001:db8::2', port: 2 });
  const two = JSON.parse(await send(l.address.port, v1.subarray(0, 10), v1.subarray(10)));
  // IPv6 client behind an IPv4 hop: the header we send keeps the client's family.
  assert.deepEqual(two.header.source, { address: '2001:db8::1', port: 1 });
  // LOCAL: the socket's own addresses are used.
  const local = JSON.parse(await send(l.address.port, encodeProxyV2()));
  assert.equal(local.header.source.address, '127.0.0.1');
});

test('a trusted peer that sends no header, or a bad one, is closed', async (t) => {
  const pool = await headerEcho(t);
  const log = recordingLog();
  const l = await tcpListener(t, pool, { accept: { trusted: ['127.0.0.1'] } }, log);
  assert.equal(await send(l.address.port, Buffer.from('PING\r\n')), '');
  assert.equal(await send(l.address.port, Buffer.from('PROXY TCP4 1.2.3.4 bad 1 2\r\n')), '');
  assert.equal(log.entries.filter((e) => e.msg === 'l4 missing or bad PROXY header from trusted peer').length, 2);
});

test('an untrusted peer that sends a header is closed; without one it is served', async (t) => {
  const srv = await startServer((s) => s.pipe(s));
  const pool = tcpPool('plain', [`127.0.0.1:${srv.port}`]);
  t.after(async () => {
    closePool(pool);
    await srv.close();
  });
  const log = recordingLog();
  const l = await tcpListener(t, pool, { accept: { trusted: ['10.0.0.0/8', 'fd00::/8'] } }, log);
  const header = encodeProxyV1({ address: '1.2.3.4', port: 1 }, { address: '5.6.7.8', port: 2 });
  assert.equal(await send(l.address.port, header), '');
  assert.ok(log.entries.some((e) => e.msg === 'l4 PROXY header from an untrusted peer'));
  const c = connect({ host: '127.0.0.1', port: l.address.port });
  await once(c, 'connect');
  c.write('hello');
  const [echo] = (await once(c, 'data')) as [Buffer];
  assert.equal(echo.toString(), 'hello');
  c.destroy();
});

test('a PROXY header before TLS: passthrough routes by SNI, terminate decrypts', async (t) => {
  const [a] = (await makeCerts(['a.test'])) as [Cert];
  const tlsServer = createTlsServer({ cert: a.cert, key: a.key }, (s) => s.end('tls-backend\n'));
  tlsServer.listen(0, '127.0.0.1');
  await once(tlsServer, 'listening');
  const tlsPool = tcpPool('tls', [`127.0.0.1:${(tlsServer.address() as { port: number }).port}`]);
  const plain = await startServer((s) => s.end('plain-backend\n'));
  const plainPool = tcpPool('plain', [`127.0.0.1:${plain.port}`]);
  t.after(async () => {
    closePool(tlsPool);
    closePool(plainPool);
    await plain.close();
    const closed = once(tlsServer, 'close');
    tlsServer.close();
    await closed;
  });
  const common = {
    host: '127.0.0.1',
    port: 0,
    connectTimeoutMs: 5_000,
    idleTimeoutMs: 0,
    maxConnections: 0,
    proxyProtocol: { accept: { trusted: ['127.0.0.1/32'] } },
    log: recordingLog(),
  };
  const pass = await startTlsListener({
    ...common,
    name: 'pass',
    mode: 'passthrough',
    sni: [{ names: ['a.test'], pool: () => tlsPool }],
  });
  const term = await startTlsListener({
    ...common,
    name: 'term',
    mode: 'terminate',
    certificates: [a],
    sni: [],
    defaultPool: () => plainPool,
  });
  t.after(() => pass.drain(0));
  t.after(() => term.drain(0));
  const header = encodeProxyV2({ address: '192.0.2.1', port: 1 }, { address: '192.0.2.2', port: 443 });
  for (const [port, expected] of [
    [pass.address.port, 'tls-backend\n'],
    [term.address.port, 'plain-backend\n'],
  ] as const) {
    for (const together of [false, true]) {
      const s = await tlsWithHeader(port, header, together, a.cert);
      assert.equal(
        await reply(s as unknown as Socket),
        expected,
        `port ${port}, header and hello together: ${together}`,
      );
      s.destroy();
    }
  }
});

/**
 * A TLS client behind a PROXY header. `together` sends the header and the ClientHello in one TCP write
 * (through an in-memory pair), so the listener reads TLS bytes along with the header.
 */
async function tlsWithHeader(port: number, header: Buffer, together: boolean, ca: string): Promise<TLSSocket> {
  const raw = connect({ host: '127.0.0.1', port });
  await once(raw, 'connect');
  if (!together) {
    raw.write(header);
    return tlsConnect({ socket: raw, servername: 'a.test', ca });
  }
  const [mine, theirs] = duplexPair();
  let first = true;
  theirs.on('data', (chunk: Buffer) => {
    raw.write(first ? Buffer.concat([header, chunk]) : chunk);
    first = false;
  });
  theirs.on('end', () => raw.end());
  raw.on('data', (chunk: Buffer) => theirs.write(chunk));
  raw.on('end', () => theirs.end());
  raw.on('close', () => theirs.destroy());
  return tlsConnect({ socket: mine, servername: 'a.test', ca });
}
