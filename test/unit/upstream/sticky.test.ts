import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createPool } from '../../../src/upstream/pool.ts';
import { upstreamConfig } from './fixtures.ts';

const targets = [{ url: 'http://127.0.0.1:9001' }, { url: 'http://127.0.0.1:9002' }, { url: 'http://127.0.0.1:9003' }];
const secret = 'a-test-secret-of-some-length';

it('sticky: a cookie names no address and brings the client back to its target', () => {
  const pool = createPool(upstreamConfig({ targets, sticky: { secret } }));
  const sticky = pool.sticky!;
  for (const t of pool.targets) {
    const value = sticky.cookieFor(t);
    assert.ok(!value.includes('127.0.0.1') && !value.includes('900'), value);
    assert.match(value, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    assert.equal(sticky.targetFromCookie(value), t);
  }
  assert.equal(new Set(pool.targets.map((t) => sticky.cookieFor(t))).size, 3);
  pool.close();
});

it('sticky: forged, truncated and other-secret cookies are refused', () => {
  const pool = createPool(upstreamConfig({ targets, sticky: { secret } }));
  const other = createPool(upstreamConfig({ targets, sticky: { secret: 'another-secret-entirely' } }));
  const value = pool.sticky!.cookieFor(pool.targets[0]!);
  const [id, sig] = value.split('.') as [string, string];
  const flipped = sig.slice(0, -1) + (sig.endsWith('A') ? 'B' : 'A');
  assert.equal(pool.sticky!.targetFromCookie(`${id}.${flipped}`), undefined);
  assert.equal(pool.sticky!.targetFromCookie(id), undefined);
  assert.equal(pool.sticky!.targetFromCookie(`${id}.`), undefined);
  assert.equal(pool.sticky!.targetFromCookie(''), undefined);
  assert.equal(other.sticky!.targetFromCookie(value), undefined);
  // Another pool with the same secret and target accepts it (what workers sharing a secret rely on).
  const twin = createPool(upstreamConfig({ targets, sticky: { secret } }));
  assert.equal(twin.sticky!.targetFromCookie(value), twin.targets[0]);
  for (const p of [pool, other, twin]) p.close();
});

it('sticky: an unavailable pinned target yields undefined so the client moves', () => {
  const pool = createPool(upstreamConfig({ targets, sticky: { secret } }));
  const value = pool.sticky!.cookieFor(pool.targets[1]!);
  pool.targets[1]!.healthy = false;
  assert.equal(pool.sticky!.targetFromCookie(value), undefined);
  const moved = pool.pick({})!;
  assert.notEqual(moved, pool.targets[1]);
  assert.equal(pool.sticky!.targetFromCookie(pool.sticky!.cookieFor(moved)), moved);
  pool.close();
});

it('sticky: Set-Cookie carries the name, HttpOnly, SameSite and Max-Age from ttl', () => {
  const pool = createPool(upstreamConfig({ targets, sticky: { cookie: 'srv', ttl: '1h', secret } }));
  const t = pool.targets[0]!;
  assert.equal(
    pool.sticky!.setCookieFor(t),
    `srv=${pool.sticky!.cookieFor(t)}; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600`,
  );
  const session = createPool(upstreamConfig({ targets, sticky: {} }));
  assert.ok(!session.sticky!.setCookieFor(session.targets[0]!).includes('Max-Age'));
  pool.close();
  session.close();
});
