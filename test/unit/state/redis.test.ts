/** @module The store contract against a real redis-server started on its own port, plus Redis-only cases. */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, it } from 'node:test';
import { Redis } from 'ioredis';
import { createRedisStore } from '../../../src/state/redis.ts';
import type { RateLimitSpec, Store } from '../../../src/state/types.ts';
import { createRedisServer, type RedisServer } from '../../helpers/redis-server.ts';
import { within } from '../../helpers/within.ts';
import { runStoreContract } from './store-contract.ts';

let server: RedisServer;
before(async () => {
  server = await createRedisServer();
  await server.start();
});
after(() => server.stop());

/** A store whose connection is ready (bounded wait). */
async function readyStore(opts: Parameters<typeof createRedisStore>[0]): Promise<Store> {
  const store = createRedisStore(opts);
  for (let i = 0; i < 200 && !store.ready(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!store.ready()) {
    // A client left reconnecting would keep the test process alive after the server stops.
    await store.close();
    assert.fail('the store did not become ready');
  }
  return store;
}

runStoreContract('redis', () => readyStore({ url: server.url }));

const spec: RateLimitSpec = { algorithm: 'sliding-window', limit: 3, windowMs: 60_000 };

it('redis store re-sends a script the server forgot (NOSCRIPT → EVAL)', async (t) => {
  const store = await readyStore({ url: server.url, keyPrefix: 'ns:' });
  const admin = new Redis(server.url);
  t.after(async () => {
    await store.close();
    admin.disconnect();
  });
  const now = Date.UTC(2030, 0, 1);
  assert.equal((await store.take('flush', 1, spec, now)).remaining, 2);
  await admin.script('FLUSH');
  assert.equal((await store.take('flush', 1, spec, now)).remaining, 1);
  // keyPrefix is applied to script keys too.
  assert.equal(await admin.exists('ns:flush'), 1);
});

it('redis store rejects quickly while Redis is down and works again after a restart', async (t) => {
  const store = await readyStore({ url: server.url });
  t.after(() => store.close());
  const now = Date.UTC(2030, 0, 1);
  await server.stop();
  await assert.rejects(store.take('down', 1, spec, now));
  // The client notices the closed socket on its own; then calls reject without touching the network.
  for (let i = 0; i < 400 && store.ready(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(store.ready(), false);
  await assert.rejects(store.take('down', 1, spec, now), /enableOfflineQueue|Connection is closed|writeable/);
  await server.start();
  for (let i = 0; i < 400 && !store.ready(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(store.ready(), true);
  assert.equal((await store.take('down', 1, spec, now)).allowed, true);
});

/**
 * The commands Redis runs, from MONITOR on a plain socket (ioredis's monitor() can fail with a "command queue
 * state error" when a monitored line arrives during its own ready check). `onCommand` gets each command's
 * arguments, unquoted; the socket is connected and monitoring when this resolves.
 */
async function rawMonitor(url: string, onCommand: (args: string[]) => void): Promise<Socket> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => {});
  let pending = '';
  let started!: () => void;
  const ok = new Promise<void>((resolve) => {
    started = resolve;
  });
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    pending += chunk;
    let nl = pending.indexOf('\r\n');
    while (nl >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 2);
      if (line === '+OK') started();
      // +1795930461.409960 [0 127.0.0.1:50710] "evalsha" "…" "1" …
      else if (line.startsWith('+')) onCommand([...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]!));
      nl = pending.indexOf('\r\n');
    }
  });
  socket.write('MONITOR\r\n');
  await within(ok, 2000, 'MONITOR started');
  return socket;
}

/** Waits (bounded) until `cond` holds. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 300 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(cond(), true);
}

it('redis store sends the takes of one turn as one command; a batch of one is the plain command', async (t) => {
  const store = createRedisStore({ url: server.url, keyPrefix: 'batch:' });
  const seen: string[][] = [];
  const monitor = await rawMonitor(server.url, (args) => {
    if (args[0]?.toLowerCase() === 'evalsha') seen.push(args);
  });
  t.after(async () => {
    monitor.destroy();
    await store.close();
  });
  await until(() => store.ready());
  const now = Date.UTC(2030, 0, 1);
  const tb: RateLimitSpec = { algorithm: 'token-bucket', limit: 6, windowMs: 60_000 };
  assert.equal((await store.take('one', 1, tb, now)).remaining, 5);
  const all = await Promise.all(Array.from({ length: 10 }, () => store.take('many', 1, tb, now)));
  assert.equal(all.filter((d) => d.allowed).length, 6);
  assert.deepEqual(await Promise.all([store.increment('n', 2, 60_000), store.increment('n', 3, 60_000)]), [2, 5]);
  assert.deepEqual(store.batchStatsForTest(), { calls: 13, commands: 3 });
  await until(() => seen.length === 3);
  // EVALSHA sha numkeys key limit window burst now cost [count]
  assert.deepEqual(seen[0]!.slice(3), ['batch:one', '6', '60000', '6', String(now), '1']);
  assert.deepEqual(seen[1]!.slice(3), ['batch:many', '6', '60000', '6', String(now), '1', '10']);
  assert.deepEqual(seen[2]!.slice(3), ['batch:n', '5', '60000']);
});

it('redis store splits a very large turn into batches that keep call order', async (t) => {
  const store = createRedisStore({ url: server.url, keyPrefix: 'large:' });
  t.after(() => store.close());
  await until(() => store.ready());
  const wide: RateLimitSpec = { algorithm: 'sliding-window', limit: 550, windowMs: 60_000 };
  const all = await Promise.all(Array.from({ length: 600 }, () => store.take('k', 1, wide, Date.UTC(2030, 0, 1))));
  assert.deepEqual(
    all.map((d) => d.allowed),
    Array.from({ length: 600 }, (_, i) => i < 550),
  );
  assert.deepEqual(store.batchStatsForTest(), { calls: 600, commands: 2 });
});

it('redis store re-sends a script the server forgot for a whole batch (NOSCRIPT → EVAL)', async (t) => {
  const store = await readyStore({ url: server.url, keyPrefix: 'nsb:' });
  const admin = new Redis(server.url);
  t.after(async () => {
    await store.close();
    admin.disconnect();
  });
  const now = Date.UTC(2030, 0, 1);
  assert.equal((await store.take('k', 1, spec, now)).remaining, 2);
  await admin.script('FLUSH');
  const all = await Promise.all(Array.from({ length: 4 }, () => store.take('k', 1, spec, now)));
  assert.deepEqual(
    all.map((d) => [d.allowed, d.remaining]),
    [
      [true, 1],
      [true, 0],
      [false, 0],
      [false, 0],
    ],
  );
});

it('redis store rejects every caller of a batch whose command times out, then works again', async (t) => {
  const store = await readyStore({ url: server.url, keyPrefix: 'slow:', timeouts: { command: 50 } });
  const admin = new Redis(server.url);
  t.after(async () => {
    await store.close();
    admin.disconnect();
  });
  const now = Date.UTC(2030, 0, 1);
  // Both scripts known to the server, so the held commands below run as sent (no NOSCRIPT after the timeout).
  await store.take('prime', 1, spec, now);
  await store.increment('prime-n', 1, 60_000);
  // Redis holds every write command (scripts included) until UNPAUSE; the admin's own commands still run.
  await admin.client('PAUSE', 20_000, 'WRITE');
  try {
    const results = await Promise.allSettled([
      ...Array.from({ length: 5 }, () => store.take('k', 1, spec, now)),
      store.increment('n', 1, 60_000),
      store.increment('n', 1, 60_000),
    ]);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      assert.match(String(r.reason), /timed out after 50ms/);
    }
  } finally {
    await admin.client('UNPAUSE');
  }
  // The held commands ran once Redis resumed (3 of the 5 takes fit; a timed-out call may still have counted,
  // as an uncoalesced one may): each ran once, not retried.
  await until(() => store.ready());
  const after = await Promise.all(Array.from({ length: 2 }, () => store.take('k', 1, spec, now)));
  assert.deepEqual(
    after.map((d) => d.allowed),
    [false, false],
  );
  assert.equal(await store.increment('n', 1, 60_000), 3);
});

it('redis store rejects every caller of a batch when Redis goes away', async (t) => {
  const store = await readyStore({ url: server.url, keyPrefix: 'gone:' });
  t.after(async () => {
    await store.close();
    if (!store.ready()) await server.start();
  });
  const now = Date.UTC(2030, 0, 1);
  assert.equal((await store.take('k', 1, spec, now)).allowed, true);
  await server.stop();
  const results = await Promise.allSettled(Array.from({ length: 5 }, () => store.take('k', 1, spec, now)));
  assert.deepEqual(
    results.map((r) => r.status),
    ['rejected', 'rejected', 'rejected', 'rejected', 'rejected'],
  );
  await server.start();
  await until(() => store.ready());
});
