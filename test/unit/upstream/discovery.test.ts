import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { LookupAll } from '../../../src/upstream/discovery.ts';
import { createPool } from '../../../src/upstream/pool.ts';
import { Registry } from '../../../src/upstream/registry.ts';
import { upstreamConfig } from './fixtures.ts';

it('discovery: localhost is resolved with the system resolver and its addresses become targets', async () => {
  const pool = createPool(
    upstreamConfig({ targets: [{ url: 'http://localhost:9001', weight: 3 }], discovery: { resolveEvery: '1h' } }),
  );
  assert.equal(pool.targets[0]!.key, 'http://localhost:9001', 'the name stands in until the first answer');
  await pool.resolveNow();
  const v4 = pool.targets.find((t) => t.host === '127.0.0.1');
  assert.ok(v4, `targets: ${pool.targets.map((t) => t.key).join(', ')}`);
  assert.equal(v4.key, 'http://127.0.0.1:9001');
  assert.equal(v4.origin, 'http://127.0.0.1:9001');
  assert.equal(v4.hostname, 'localhost');
  assert.equal(v4.weight, 3);
  assert.ok(pool.targets.every((t) => t.hostname === 'localhost' && t.port === 9001));
  pool.close();
});

it('discovery: answers that change add, keep and drain targets; failures keep the last answer', async () => {
  let answer: string[] | Error = ['10.0.0.1'];
  const lookup: LookupAll = async (host) => {
    assert.equal(host, 'svc.internal');
    if (answer instanceof Error) throw answer;
    return answer.map((address) => ({ address }));
  };
  const registry = new Registry();
  const pool = createPool(
    upstreamConfig({ targets: [{ address: 'svc.internal:5432' }], discovery: { resolveEvery: '1h' } }),
    { lookup, registry },
  );
  await pool.resolveNow();
  assert.deepEqual(
    pool.targets.map((t) => t.key),
    ['10.0.0.1:5432'],
  );
  const first = pool.targets[0]!;
  const before = pool.targets;
  answer = ['10.0.0.2', '10.0.0.1', 'fd00::5'];
  await pool.resolveNow();
  assert.notEqual(pool.targets, before, 'a new array, never mutated in place');
  assert.deepEqual(
    pool.targets.map((t) => t.key),
    ['10.0.0.1:5432', '10.0.0.2:5432', '[fd00::5]:5432'],
  );
  assert.equal(pool.targets[0], first, 'a kept address keeps its target');
  const end = pool.begin(first);
  answer = ['10.0.0.2'];
  await pool.resolveNow();
  assert.deepEqual(
    pool.targets.map((t) => t.key),
    ['10.0.0.2:5432'],
  );
  assert.ok(first.draining, 'a vanished address drains');
  end({ kind: 'response', status: 200 });
  const current = pool.targets;
  answer = new Error('SERVFAIL');
  await pool.resolveNow();
  answer = [];
  await pool.resolveNow();
  assert.equal(pool.targets, current);
  pool.close();
});

it('discovery: IP targets and pools without discovery are left alone', async () => {
  const lookup: LookupAll = async () => assert.fail('no lookup expected');
  const pool = createPool(
    upstreamConfig({ targets: [{ url: 'http://127.0.0.1:1' }], discovery: { resolveEvery: '1h' } }),
    { lookup },
  );
  const plain = createPool(upstreamConfig({ targets: [{ url: 'http://localhost:1' }] }), { lookup });
  await pool.resolveNow();
  await plain.resolveNow();
  assert.equal(plain.targets[0]!.key, 'http://localhost:1');
  assert.equal(plain.targets[0]!.hostname, undefined);
  pool.close();
  plain.close();
});
