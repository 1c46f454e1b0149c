/**
 * @module End-to-end tests of the byte pipe under load: bulk transfers both ways with slow readers (so
 * reads fill the shared buffer, move to private ones, and pause on pending writes), many connections at
 * once (so the shared read buffer is reused between them), and half-close after a bulk transfer. Every
 * test compares the bytes received with the bytes sent.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { startTcpListener } from '../../../src/l4/tcp-listener.ts';
import type { TcpListener } from '../../../src/l4/types.ts';
import type { Pool } from '../../../src/upstream/types.ts';
import { closePool, readAll, recordingLog, startServer, tcpPool } from './helpers.ts';

type T = { after(fn: () => Promise<void> | void): void };

async function listen(t: T, pool: Pool): Promise<TcpListener> {
  const l = await startTcpListener({
    name: 'pipe',
    host: '127.0.0.1',
    port: 0,
    pool: () => pool,
    connectTimeoutMs: 5_000,
    idleTimeoutMs: 60_000,
    maxConnections: 0,
    log: recordingLog(),
  });
  t.after(async () => {
    await l.drain(0);
    closePool(pool);
  });
  return l;
}

function sha(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Deterministic bytes for connection `id`, so a mix-up between connections shows. */
function pattern(id: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + id * 7 + (i >> 10)) & 0xff;
  return b;
}

/** Reads everything, pausing now and then so the proxy's writes to us go pending. */
function readSlowly(s: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    s.on('data', (c: Buffer) => {
      parts.push(c);
      if (++n % 16 === 0) {
        s.pause();
        setTimeout(() => s.resume(), 2);
      }
    });
    s.once('end', () => resolve(Buffer.concat(parts)));
    s.once('error', reject);
  });
}

test('8 MiB each way through an echo target, with a slow reader, arrive intact', async (t) => {
  const srv = await startServer((s) => s.pipe(s));
  t.after(() => srv.close());
  const l = await listen(t, tcpPool('echo', [`127.0.0.1:${srv.port}`]));
  const data = randomBytes(8 * 1024 * 1024);
  const c = connect({ host: '127.0.0.1', port: l.address.port, allowHalfOpen: true });
  await once(c, 'connect');
  const received = readSlowly(c);
  c.end(data);
  const got = await received;
  assert.equal(got.length, data.length);
  assert.equal(sha(got), sha(data));
  c.destroy();
});

test('20 connections at once each get their own bytes, slow and fast readers mixed', async (t) => {
  const size = 3 * 1024 * 1024 + 123;
  const srv = await startServer((s) => {
    s.once('data', (first: Buffer) => {
      s.end(pattern(Number(first.toString()), size));
    });
  });
  t.after(() => srv.close());
  const l = await listen(t, tcpPool('p', [`127.0.0.1:${srv.port}`]));
  const results = await Promise.all(
    Array.from({ length: 20 }, async (_, id) => {
      const c = connect({ host: '127.0.0.1', port: l.address.port });
      await once(c, 'connect');
      c.write(String(id));
      const got = id % 2 === 0 ? await readSlowly(c) : await readAll(c);
      c.destroy();
      return { id, got };
    }),
  );
  for (const { id, got } of results) {
    assert.equal(got.length, size, `connection ${id}`);
    assert.ok(got.equals(pattern(id, size)), `connection ${id} got another connection's bytes`);
  }
});

test('a target that sends 4 MiB and half-closes: the client gets all of it, then can still send', async (t) => {
  const data = randomBytes(4 * 1024 * 1024);
  let received: (b: Buffer) => void = () => {};
  const done = new Promise<Buffer>((resolve) => {
    received = resolve;
  });
  const srv = await startServer(async (s) => {
    s.end(data);
    received(await readAll(s));
  });
  t.after(() => srv.close());
  const l = await listen(t, tcpPool('p', [`127.0.0.1:${srv.port}`]));
  const c = connect({ host: '127.0.0.1', port: l.address.port, allowHalfOpen: true });
  await once(c, 'connect');
  const got = await readSlowly(c);
  assert.equal(sha(got), sha(data));
  const closed = once(c, 'close');
  c.end('thanks');
  assert.equal((await done).toString(), 'thanks');
  await closed;
});

test('a stalled client gets its own bytes, though other connections were read meanwhile', async (t) => {
  // Small writes keep the proxy's reads small (the shared buffer); a client that does not read makes the
  // proxy's write to it wait, and then another connection moves data. The waiting bytes must not change.
  const { setImmediate: tick } = await import('node:timers/promises');
  let stalled: () => void = () => {};
  const blocked = new Promise<void>((resolve) => {
    stalled = resolve;
  });
  // 32 MiB is well above what loopback buffers hold (about 4 MiB per socket), so the target does block.
  const total = 32 * 1024 * 1024;
  const small = 16_000;
  const srv = await startServer((s) => {
    s.once('data', async (first: Buffer) => {
      const id = Number(first.toString());
      if (id !== 0) {
        s.end(pattern(id, 256 * 1024 + 5));
        return;
      }
      const all = pattern(0, total);
      for (let at = 0; at < all.length; at += small) {
        if (!s.write(all.subarray(at, at + small))) {
          stalled();
          await once(s, 'drain');
        } else await tick();
      }
      stalled(); // in case it never blocked: the test then passes without proving much
      s.end();
    });
  });
  t.after(() => srv.close());
  const l = await listen(t, tcpPool('p', [`127.0.0.1:${srv.port}`]));
  const a = connect({ host: '127.0.0.1', port: l.address.port });
  await once(a, 'connect');
  a.pause();
  a.write('0');
  await blocked;
  for (let id = 1; id <= 3; id++) {
    const b = connect({ host: '127.0.0.1', port: l.address.port });
    await once(b, 'connect');
    b.write(String(id));
    assert.ok((await readAll(b)).equals(pattern(id, 256 * 1024 + 5)), `connection ${id}`);
    b.destroy();
  }
  const reading = readAll(a);
  a.resume();
  const got = await reading;
  assert.equal(got.length, total);
  assert.ok(got.equals(pattern(0, total)), 'the stalled connection got other bytes');
  a.destroy();
});
