/**
 * @module End-to-end tests of the tls listener: SNI passthrough to two real TLS servers with their own
 * certificates (verified by node:tls clients), the default route, and TLS termination to plain pools.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { test } from 'node:test';
import { createServer as createTlsServer, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { startTlsListener } from '../../../src/l4/tls-listener.ts';
import type { TlsListener, TlsListenerOptions } from '../../../src/l4/types.ts';
import type { Pool } from '../../../src/upstream/types.ts';
import { type Cert, closePool, makeCerts, recordingLog, startServer, tcpPool } from './helpers.ts';

type T = { after(fn: () => Promise<void> | void): void };

/** A real TLS server that answers every connection with its name. */
async function tlsBackend(t: T, name: string, cert: Cert): Promise<Pool> {
  const server = createTlsServer({ cert: cert.cert, key: cert.key }, (s) => s.end(`${name}\n`));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const pool = tcpPool(name, [`127.0.0.1:${(server.address() as { port: number }).port}`]);
  t.after(async () => {
    closePool(pool);
    const closed = once(server, 'close');
    server.close();
    await closed;
  });
  return pool;
}

/** A plain TCP server that answers with its name and then echoes. */
async function plainBackend(t: T, name: string): Promise<Pool> {
  const srv = await startServer((s) => {
    s.write(`${name}\n`);
    s.pipe(s);
  });
  const pool = tcpPool(name, [`127.0.0.1:${srv.port}`]);
  t.after(async () => {
    closePool(pool);
    await srv.close();
  });
  return pool;
}

async function listen(t: T, options: Partial<TlsListenerOptions>): Promise<TlsListener> {
  const l = await startTlsListener({
    name: 'tls',
    host: '127.0.0.1',
    port: 0,
    mode: 'passthrough',
    sni: [],
    connectTimeoutMs: 5_000,
    idleTimeoutMs: 0,
    maxConnections: 0,
    log: recordingLog(),
    ...options,
  });
  t.after(() => l.drain(0));
  return l;
}

/** Connects with TLS (verifying against `ca`) and returns the first line the server sends. */
async function hello(
  port: number,
  servername: string | undefined,
  ca: string,
): Promise<{ line: string; s: TLSSocket }> {
  const s = tlsConnect({ host: '127.0.0.1', port, ca, ...(servername === undefined ? {} : { servername }) });
  await once(s, 'secureConnect');
  const [chunk] = (await once(s, 'data')) as [Buffer];
  return { line: chunk.toString().split('\n')[0]!, s };
}

async function expectClosed(port: number, servername: string, ca: string): Promise<void> {
  const s = tlsConnect({ host: '127.0.0.1', port, servername, ca });
  const [err] = (await once(s, 'error')) as [NodeJS.ErrnoException];
  assert.ok(err.code === 'ECONNRESET' || /socket disconnected/.test(err.message), err.message);
}

test('passthrough routes by SNI to two TLS servers, each presenting its own certificate', async (t) => {
  const [a, b] = (await makeCerts(['a.test', '*.b.test'])) as [Cert, Cert];
  const poolA = await tlsBackend(t, 'A', a);
  const poolB = await tlsBackend(t, 'B', b);
  const l = await listen(t, {
    sni: [
      { names: ['a.test'], pool: () => poolA },
      { names: ['*.b.test'], pool: () => poolB },
    ],
  });
  const viaA = await hello(l.address.port, 'a.test', a.cert);
  assert.equal(viaA.line, 'A');
  assert.equal(viaA.s.getPeerCertificate().subject.CN, 'a.test');
  viaA.s.destroy();
  const viaB = await hello(l.address.port, 'x.b.test', b.cert);
  assert.equal(viaB.line, 'B');
  viaB.s.destroy();
  await expectClosed(l.address.port, 'unknown.test', a.cert);
});

test('passthrough sends clients without SNI, and unknown names, to the default pool', async (t) => {
  const [a] = (await makeCerts(['a.test'])) as [Cert];
  const poolA = await tlsBackend(t, 'A', a);
  const l = await listen(t, { sni: [], defaultPool: () => poolA });
  // No servername and an IP host: node sends no SNI; skip the name check, the chain is still verified.
  const s = tlsConnect({ host: '127.0.0.1', port: l.address.port, ca: a.cert, checkServerIdentity: () => undefined });
  await once(s, 'secureConnect');
  const [chunk] = (await once(s, 'data')) as [Buffer];
  assert.equal(chunk.toString(), 'A\n');
  s.destroy();
  const other = await hello(l.address.port, 'other.test', a.cert).catch((e: Error) => e);
  // The certificate is for a.test, so the client rejects the name, but the bytes did reach A.
  assert.ok(other instanceof Error && /a\.test/.test(other.message));
});

test('a client that sends no TLS at all is closed', async (t) => {
  const l = await listen(t, { sni: [] });
  const c = netConnect({ host: '127.0.0.1', port: l.address.port });
  c.on('error', () => {});
  c.end('GET / HTTP/1.1\r\n\r\n');
  c.resume();
  await once(c, 'close');
});

test('terminate: certificates chosen by SNI, decrypted bytes go to plain pools chosen by SNI', async (t) => {
  const [a, b] = (await makeCerts(['a.test', '*.b.test'])) as [Cert, Cert];
  const plainA = await plainBackend(t, 'plain-a');
  const plainB = await plainBackend(t, 'plain-b');
  const l = await listen(t, {
    mode: 'terminate',
    certificates: [a, b],
    sni: [{ names: ['*.b.test'], pool: () => plainB }],
    defaultPool: () => plainA,
  });
  const viaA = await hello(l.address.port, 'a.test', a.cert);
  assert.equal(viaA.line, 'plain-a');
  assert.equal(viaA.s.getPeerCertificate().subject.CN, 'a.test');
  viaA.s.write('echo me');
  const [echo] = (await once(viaA.s, 'data')) as [Buffer];
  assert.equal(echo.toString(), 'echo me');
  viaA.s.destroy();
  const viaB = await hello(l.address.port, 'www.b.test', b.cert);
  assert.equal(viaB.line, 'plain-b');
  assert.equal(viaB.s.getPeerCertificate().subject.CN, '*.b.test');
  viaB.s.destroy();
});

test('terminate: a failed handshake closes the client', async (t) => {
  const [a] = (await makeCerts(['a.test'])) as [Cert];
  const plainA = await plainBackend(t, 'plain-a');
  const l = await listen(t, { mode: 'terminate', certificates: [a], sni: [], defaultPool: () => plainA });
  const c = netConnect({ host: '127.0.0.1', port: l.address.port });
  c.on('error', () => {});
  c.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]));
  c.resume();
  await once(c, 'close');
});

test('terminate without certificates is rejected at start', async () => {
  await assert.rejects(
    startTlsListener({
      name: 'bad',
      host: '127.0.0.1',
      port: 0,
      mode: 'terminate',
      sni: [],
      connectTimeoutMs: 1000,
      idleTimeoutMs: 0,
      maxConnections: 0,
      log: recordingLog(),
    }),
    /certificate/,
  );
});
