/**
 * @module End-to-end tests of the tcp listener against real servers on loopback: redis-server through the
 * balancer, failover when a target dies, half-close both ways, idle timeout, connection limit, reload, drain.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { startL4Listener } from '../../../src/l4/from-config.ts';
import { startTcpListener } from '../../../src/l4/tcp-listener.ts';
import type { TcpListener, TcpListenerOptions } from '../../../src/l4/types.ts';
import type { Pool } from '../../../src/upstream/types.ts';
import {
  closePool,
  readAll,
  recordingLog,
  redisCli,
  startRedis,
  startServer,
  type TestServer,
  tcpPool,
} from './helpers.ts';

async function listen(
  t: { after(fn: () => Promise<void> | void): void },
  pool: Pool,
  extra: Partial<TcpListenerOptions> = {},
): Promise<TcpListener> {
  const l = await startTcpListener({
    name: 'test',
    host: '127.0.0.1',
    port: 0,
    pool: () => pool,
    connectTimeoutMs: 5_000,
    idleTimeoutMs: 0,
    maxConnections: 0,
    log: recordingLog(),
    ...extra,
  });
  t.after(async () => {
    await l.drain(0);
    closePool(pool);
  });
  return l;
}

/** A client socket; `halfOpen` keeps it writable after the peer's FIN (for the half-close tests). */
async function dial(port: number, halfOpen = false): Promise<Socket> {
  const s = connect({ host: '127.0.0.1', port, allowHalfOpen: halfOpen });
  await once(s, 'connect');
  return s;
}

/** A server that writes its name to every connection and then echoes. */
async function namedEcho(t: { after(fn: () => Promise<void>): void }, name: string): Promise<TestServer> {
  const srv = await startServer((s) => {
    s.write(`${name}\n`);
    s.pipe(s);
  });
  t.after(() => srv.close());
  return srv;
}

async function firstLine(port: number): Promise<string> {
  const s = await dial(port);
  const [chunk] = (await once(s, 'data')) as [Buffer];
  s.destroy();
  return chunk.toString().split('\n')[0]!;
}

test('redis-cli PING through the listener gets PONG from a real redis-server', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const l = await listen(t, tcpPool('redis', [`127.0.0.1:${redis.port}`]));
  assert.equal(await redisCli(l.address.port, 'PING'), 'PONG');
  assert.equal(await redisCli(l.address.port, 'SET', 'k', 'v'), 'OK');
  assert.equal(await redisCli(l.address.port, 'GET', 'k'), 'v');
});

test('two redis servers, one killed: the next connections go to the live one', async (t) => {
  const a = await startRedis();
  const b = await startRedis();
  t.after(() => a.stop());
  t.after(() => b.stop());
  const log = recordingLog();
  const l = await listen(t, tcpPool('redis', [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`]), { log });
  assert.equal(await redisCli(l.address.port, 'PING'), 'PONG');
  await a.stop();
  for (let i = 0; i < 6; i++) assert.equal(await redisCli(l.address.port, 'PING'), 'PONG');
  assert.ok(log.entries.some((e) => e.msg === 'l4 connect failed'));
});

test('half-close from the client: the target sees EOF and can still answer', async (t) => {
  const srv = await startServer(async (s) => {
    const got = await readAll(s);
    s.end(`got ${got.toString()}`);
  });
  t.after(() => srv.close());
  const l = await listen(t, tcpPool('p', [`127.0.0.1:${srv.port}`]));
  const c = await dial(l.address.port, true);
  c.end('hello');
  assert.equal((await readAll(c)).toString(), 'got hello');
});

test('half-close from the target: the client sees EOF and can still send', async (t) => {
  let received: (text: string) => void = () => {};
  const done = new Promise<string>((resolve) => {
    received = resolve;
  });
  const srv = await startServer(async (s) => {
    s.end('banner');
    received((await readAll(s)).toString());
  });
  t.after(() => srv.close());
  const l = await listen(t, tcpPool('p', [`127.0.0.1:${srv.port}`]));
  const c = await dial(l.address.port, true);
  assert.equal((await readAll(c)).toString(), 'banner');
  const closed = once(c, 'close');
  c.end('after your FIN');
  assert.equal(await done, 'after your FIN');
  await closed;
});

test('an idle connection is closed on both sides', async (t) => {
  let upstreamEnded: Promise<unknown> = Promise.resolve();
  const srv = await startServer((s) => {
    s.resume();
    upstreamEnded = once(s, 'end');
  });
  t.after(() => srv.close());
  const l = await listen(t, tcpPool('p', [`127.0.0.1:${srv.port}`]), { idleTimeoutMs: 100 });
  const c = await dial(l.address.port);
  c.resume();
  await once(c, 'end');
  await upstreamEnded;
  c.destroy();
});

test('over maxConnections a connection is closed; under it they work', async (t) => {
  const srv = await namedEcho(t, 'a');
  const l = await listen(t, tcpPool('p', [`127.0.0.1:${srv.port}`]), { maxConnections: 1 });
  const first = await dial(l.address.port);
  await once(first, 'data');
  const second = await dial(l.address.port);
  second.on('error', () => {});
  second.resume();
  await once(second, 'close');
  first.write('ping');
  const [echo] = (await once(first, 'data')) as [Buffer];
  assert.equal(echo.toString(), 'ping');
  first.destroy();
});

test('a dead target is skipped; with none alive the client is closed', async (t) => {
  const live = await namedEcho(t, 'live');
  const dead = await startServer(() => {});
  const deadPort = dead.port;
  await dead.close();
  const l = await listen(t, tcpPool('p', [`127.0.0.1:${deadPort}`, `127.0.0.1:${live.port}`]));
  for (let i = 0; i < 3; i++) assert.equal(await firstLine(l.address.port), 'live');
  const none = await listen(t, tcpPool('q', [`127.0.0.1:${deadPort}`]));
  const c = await dial(none.address.port);
  c.on('error', () => {});
  c.resume();
  await once(c, 'close');
});

test('setPool swaps the pool for new connections; the port stays the same', async (t) => {
  const a = await namedEcho(t, 'a');
  const b = await namedEcho(t, 'b');
  const l = await listen(t, tcpPool('p', [`127.0.0.1:${a.port}`]));
  const port = l.address.port;
  assert.equal(await firstLine(port), 'a');
  const next = tcpPool('p', [`127.0.0.1:${b.port}`]);
  t.after(() => closePool(next));
  l.setPool(() => next);
  assert.equal(l.address.port, port);
  assert.equal(await firstLine(port), 'b');
});

test('drain stops accepting, and destroys connections left at the deadline', async (t) => {
  const srv = await namedEcho(t, 'a');
  const l = await listen(t, tcpPool('p', [`127.0.0.1:${srv.port}`]));
  const c = await dial(l.address.port);
  await once(c, 'data');
  assert.equal(l.connections, 1);
  const closed = once(c, 'close');
  await l.drain(50);
  await closed;
  assert.equal(l.connections, 0);
  const refused = connect({ host: '127.0.0.1', port: l.address.port });
  const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');
});

test('startL4Listener builds a tcp listener from its config entry', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const pool = tcpPool('redis', [`127.0.0.1:${redis.port}`]);
  const l = await startL4Listener(
    { name: 'r', protocol: 'tcp', address: '127.0.0.1:0', upstream: 'redis', limits: {}, timeouts: undefined },
    { pool: (n) => (n === 'redis' ? pool : undefined), upstreamConnectTimeoutMs: () => 5_000, log: recordingLog() },
  );
  t.after(async () => {
    await l.drain(0);
    closePool(pool);
  });
  assert.equal(await redisCli(l.address.port, 'PING'), 'PONG');
});
