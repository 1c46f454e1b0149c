/** The admin server's lifecycle: listen, move to another address, close; and its routing of paths. */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { describe, it } from 'node:test';
import pino from 'pino';
import { AdminServer, type AdminView } from '../../../src/admin/server.ts';
import { Metrics } from '../../../src/observe/metrics.ts';

function view(): AdminView {
  const sources = { pools: () => undefined, webSockets: () => 0, l4Connections: () => 0 };
  return {
    ...sources,
    metrics: new Metrics(sources, { processMetrics: false }),
    config: () => undefined,
    cache: () => undefined,
    ready: () => true,
    draining: () => false,
    reload: undefined,
  };
}

function get(address: string, path: string, method = 'GET'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(`http://${address}${path}`, { method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('AdminServer', () => {
  it('listens on loopback, moves on a new address, and closes', async (t) => {
    const admin = new AdminServer(view(), pino({ level: 'silent' }));
    t.after(() => admin.close());
    await admin.apply(':0');
    const first = admin.address!;
    assert.match(first, /^127\.0\.0\.1:\d+$/);
    assert.equal((await get(first, '/healthz')).body, 'ok\n');
    await admin.apply(':0'); // unchanged address: nothing to do
    assert.equal(admin.address, first);

    await admin.apply('127.0.0.1:0');
    const second = admin.address!;
    assert.notEqual(second, first);
    assert.equal((await get(second, '/ready')).status, 200);
    await assert.rejects(get(first, '/healthz'), /ECONNREFUSED/);

    await admin.close();
    assert.equal(admin.address, undefined);
    await assert.rejects(get(second, '/healthz'), /ECONNREFUSED/);
  });

  it('keeps the old socket when the new address cannot be bound', async (t) => {
    const a = new AdminServer(view(), pino({ level: 'silent' }));
    const b = new AdminServer(view(), pino({ level: 'silent' }));
    t.after(() => Promise.all([a.close(), b.close()]));
    await a.apply('127.0.0.1:0');
    await b.apply('127.0.0.1:0');
    const taken = a.address!;
    const kept = b.address!;
    await assert.rejects(b.apply(taken), /EADDRINUSE/);
    assert.equal(b.address, kept);
    assert.equal((await get(kept, '/healthz')).status, 200);
  });

  it('answers 404 for unknown paths and 501 for a reload without a config source', async (t) => {
    const admin = new AdminServer(view(), pino({ level: 'silent' }));
    t.after(() => admin.close());
    await admin.apply('127.0.0.1:0');
    const missing = await get(admin.address!, '/nope');
    assert.equal(missing.status, 404);
    assert.equal(JSON.parse(missing.body).code, 'GW_ROUTE_NOT_FOUND');
    const proto = await get(admin.address!, '/__proto__');
    assert.equal(proto.status, 404);
    const reload = await get(admin.address!, '/reload', 'POST');
    assert.equal(reload.status, 501);
    assert.equal(JSON.parse(reload.body).code, 'GW_INTERNAL');
  });
});
