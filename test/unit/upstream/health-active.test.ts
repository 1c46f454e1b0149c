import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { it } from 'node:test';
import { statusTable } from '../../../src/upstream/health/active.ts';
import { createPool } from '../../../src/upstream/pool.ts';
import { startScriptedUpstream } from '../../helpers/scripted-upstream.ts';
import { until, upstreamConfig } from './fixtures.ts';

// A long interval: the first check runs at start, the rest when the test calls checkNow().
const slow = { interval: '1h', timeout: '2s' };

it('active: expectedStatuses become a lookup table', () => {
  const t = statusTable([204, '300-302']);
  assert.deepEqual(
    [200, 204, 299, 300, 302, 303].map((s) => t[s]),
    [0, 1, 0, 1, 1, 0],
  );
});

it('active http: a new target takes traffic only after its first passing check', async (t) => {
  const up = await startScriptedUpstream([{ status: 503 }], { status: 200 });
  t.after(() => up.close());
  const pool = createPool(
    upstreamConfig({
      targets: [{ url: up.url }],
      health: { active: { ...slow, path: '/healthz', host: 'svc.local' } },
    }),
  );
  t.after(() => pool.close());
  const target = pool.targets[0]!;
  assert.ok(!target.available(), 'not before a check');
  assert.equal(pool.pick({}), undefined);
  await until(() => target.checkFailures === 1, 'first check failed');
  assert.ok(!target.available());
  pool.checkNow();
  await until(() => target.available(), 'the first pass');
  assert.deepEqual(up.requests[0], { method: 'GET', path: '/healthz', host: 'svc.local' });
});

it('active http: unhealthyThreshold failures take a target out, healthyThreshold passes bring it back', async (t) => {
  const up = await startScriptedUpstream();
  t.after(() => up.close());
  const pool = createPool(
    upstreamConfig({
      targets: [{ url: up.url }],
      health: { active: { ...slow, unhealthyThreshold: 2, healthyThreshold: 2, expectedStatuses: [200] } },
    }),
  );
  t.after(() => pool.close());
  const target = pool.targets[0]!;
  await until(() => target.available(), 'first pass');
  assert.match(up.requests[0]!.host, /^127\.0\.0\.1:\d+$/);
  up.script([{ status: 500 }, { reset: true }, { status: 200 }], { status: 200 });
  pool.checkNow();
  await until(() => target.checkFailures === 1, 'one failure');
  assert.ok(target.available(), 'one failure is not enough');
  pool.checkNow();
  await until(() => target.checkFailures === 2, 'second failure');
  assert.ok(!target.available(), 'two in a row: out');
  pool.checkNow();
  await until(() => target.checkPasses === 1, 'one pass');
  assert.ok(!target.available(), 'one pass is not enough to return');
  pool.checkNow();
  await until(() => target.checkPasses === 2, 'two passes');
  assert.ok(target.available());
});

it('active http: a check that outlives its timeout fails', async (t) => {
  const up = await startScriptedUpstream([], { status: 200, delayMs: 5_000 });
  t.after(() => up.close());
  const pool = createPool(
    upstreamConfig({ targets: [{ url: up.url }], health: { active: { interval: '1h', timeout: '50ms' } } }),
  );
  t.after(() => pool.close());
  await until(() => pool.targets[0]!.checkFailures === 1, 'timed-out check');
  assert.ok(!pool.targets[0]!.available());
});

it('active tcp: connect passes, refused fails (default type for address targets)', async (t) => {
  const server = net.createServer((s) => s.end());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const closed = net.createServer();
  closed.listen(0, '127.0.0.1');
  await once(closed, 'listening');
  const deadPort = (closed.address() as net.AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  const livePort = (server.address() as net.AddressInfo).port;
  const pool = createPool(
    upstreamConfig({
      targets: [{ address: `127.0.0.1:${livePort}` }, { address: `127.0.0.1:${deadPort}` }],
      health: { active: slow },
    }),
  );
  t.after(() => pool.close());
  const [live, dead] = pool.targets;
  await until(() => live!.available() && dead!.checkFailures === 1, 'tcp checks');
  assert.ok(!dead!.available());
  assert.equal(pool.pick({}), live);
});

it('active: close() stops checking', async (t) => {
  const up = await startScriptedUpstream();
  t.after(() => up.close());
  const pool = createPool(upstreamConfig({ targets: [{ url: up.url }], health: { active: slow } }));
  await until(() => pool.targets[0]!.available(), 'first pass');
  pool.close();
  pool.checkNow();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(up.requests.length, 1);
});
