import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createPool } from '../../../src/upstream/pool.ts';
import { Registry } from '../../../src/upstream/registry.ts';
import { ManualClock, upstreamConfig } from './fixtures.ts';

const A = { url: 'http://127.0.0.1:9001' };
const B = { url: 'http://127.0.0.1:9002' };
const C = { url: 'http://127.0.0.1:9003' };

it('pool: { name, targets } builds a least-request pool of parsed targets', () => {
  const pool = createPool(upstreamConfig({ targets: [A, { address: '[::1]:5432' }] }));
  assert.equal(pool.name, 'up');
  const [http, tcp] = pool.targets;
  assert.deepEqual(
    [http!.key, http!.origin, http!.host, http!.port],
    ['http://127.0.0.1:9001', A.url, '127.0.0.1', 9001],
  );
  assert.deepEqual([tcp!.key, tcp!.origin, tcp!.host, tcp!.port], ['[::1]:5432', '', '::1', 5432]);
  assert.equal(pool.hashOn, undefined);
  assert.equal(pool.sticky, undefined);
  const t = pool.pick({})!;
  const end = pool.begin(t);
  assert.equal(t.active, 1);
  end({ kind: 'response', status: 200 });
  end({ kind: 'response', status: 200 }); // a second call is ignored
  assert.equal(t.active, 0);
  pool.close();
});

it('pool: consistent-hash exposes where the key comes from (client-ip by default)', () => {
  const pool = createPool(upstreamConfig({ targets: [A, B], balance: 'consistent-hash' }));
  assert.equal(pool.hashOn, 'client-ip');
  const p2 = createPool(upstreamConfig({ targets: [A, B], balance: 'consistent-hash', hashOn: { cookie: 'sid' } }));
  assert.deepEqual(p2.hashOn, { cookie: 'sid' });
  assert.equal(pool.pick({ hashKey: '10.0.0.1' }), pool.pick({ hashKey: '10.0.0.1' }));
  pool.close();
  p2.close();
});

it('reload: a kept target keeps its state; a removed one drains and finishes its work', () => {
  const registry = new Registry();
  const clock = new ManualClock();
  const deps = { registry, now: clock.now };
  const passive = { consecutiveFailures: 1, ejectFor: '10s' };
  const old = createPool(upstreamConfig({ targets: [A, B, C], health: { passive } }), deps);
  const [a, b] = old.targets;
  old.begin(a!)({ kind: 'connect-failure' });
  assert.ok(!a!.available(), 'a is ejected');
  const inFlight = old.begin(b!);

  const next = createPool(
    upstreamConfig({ targets: [A, C, { url: 'http://127.0.0.1:9004' }], health: { passive } }),
    deps,
  );
  old.close();
  assert.equal(next.targets[0], a, 'same object across the reload');
  assert.ok(!a!.available(), 'still ejected');
  assert.equal(a!.ejections, 1);
  assert.ok(b!.draining, 'b was removed: draining');
  assert.ok(!b!.available());
  assert.equal(b!.active, 1, 'in-flight work continues');
  inFlight({ kind: 'response', status: 200 });
  assert.equal(b!.active, 0);
  assert.equal(next.load.active, 0, 'the load counters are shared across generations');
  assert.equal(registry.refsForTest('target\0up\0http://127.0.0.1:9002'), 0);
  assert.equal(registry.refsForTest('target\0up\0http://127.0.0.1:9001'), 1);
  for (let i = 0; i < 50; i++) assert.notEqual(next.pick({}), a);
  next.close();
  assert.ok(a!.draining);
});

it('reload: weights and per-target limits follow the new config', () => {
  const registry = new Registry();
  const old = createPool(upstreamConfig({ targets: [A] }), { registry });
  const next = createPool(
    upstreamConfig({ targets: [{ ...A, weight: 5 }], circuitBreaker: { maxRequestsPerTarget: 1 } }),
    { registry },
  );
  old.close();
  assert.equal(next.targets[0]!.weight, 5);
  next.begin(next.targets[0]!);
  assert.equal(next.pick({}), undefined);
  next.close();
});

it('slow start: a returning target ramps from minWeightPercent to full weight over the window', () => {
  const clock = new ManualClock();
  const pool = createPool(
    upstreamConfig({
      targets: [A, B],
      balance: 'weighted',
      slowStart: { window: '10s', minWeightPercent: 10 },
      health: { passive: { consecutiveFailures: 1, ejectFor: '5s' } },
    }),
    { now: clock.now },
  );
  clock.advance(60_000); // both past their first ramp
  const [a, b] = pool.targets;
  pool.begin(a!)({ kind: 'reset' });
  clock.advance(5_000); // a's ejection ends now: ramp starts
  const share = () => {
    let n = 0;
    for (let i = 0; i < 1000; i++) if (pool.pick({}) === a) n++;
    return n / 1000;
  };
  const early = share();
  clock.advance(5_000);
  const middle = share();
  clock.advance(5_000);
  const full = share();
  assert.ok(early < 0.12, `early ${early}`); // weight 0.1 vs 1
  assert.ok(middle > 0.3 && middle < 0.36, `middle ${middle}`); // 0.5 vs 1
  assert.equal(full, 0.5);
  assert.ok(b!.available());
  pool.close();
});
