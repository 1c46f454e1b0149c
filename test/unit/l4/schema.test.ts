/** @module Unit tests of the L4 listener config fields, their cross-field checks, and config → settings. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { z } from 'zod';
import { address, name } from '../../../src/config/primitives.ts';
import { l4Settings, splitAddress } from '../../../src/l4/from-config.ts';
import { checkL4Listener, l4ListenerFields } from '../../../src/l4/schema.ts';
import type { TcpSettings, TlsSettings } from '../../../src/l4/types.ts';
import type { Pool } from '../../../src/upstream/types.ts';

/** The listener object as src/config/schema.ts composes it (with the proposed limits.maxConnections). */
const listener = z
  .strictObject({
    name,
    protocol: z.enum(['http', 'https', 'tcp', 'tls']),
    address,
    upstream: name.optional(),
    limits: z
      .strictObject({ maxConnections: z.number().int().nonnegative().default(0) })
      .default({ maxConnections: 0 }),
    ...l4ListenerFields,
  })
  .superRefine(checkL4Listener);

function issues(raw: unknown): string[] {
  const r = listener.safeParse(raw);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

test('a tcp listener with PROXY protocol and timeouts parses, durations in ms', () => {
  const l = listener.parse({
    name: 'pg',
    protocol: 'tcp',
    address: '0.0.0.0:6432',
    upstream: 'pg',
    proxyProtocol: { accept: { trusted: ['10.0.0.0/8'] }, send: 'v2' },
    timeouts: { connect: '2s', idle: '10m' },
  });
  assert.deepEqual(l.timeouts, { connect: 2000, idle: 600_000, handshake: 10_000 });
  assert.equal(l.proxyProtocol?.send, 'v2');
});

test('cross-field rules', () => {
  // A tcp listener without upstream is a cross-reference issue (src/config/references.ts), not a schema one.
  assert.deepEqual(issues({ name: 'a', protocol: 'tcp', address: ':1' }), []);
  assert.deepEqual(issues({ name: 'a', protocol: 'tls', address: ':1' }), [
    'sni: a tls listener needs sni routes or a default upstream',
  ]);
  assert.deepEqual(issues({ name: 'a', protocol: 'tls', address: ':1', upstream: 'u', tls: { mode: 'terminate' } }), [
    'tls.certificates: tls terminate needs a certificate',
  ]);
  assert.deepEqual(issues({ name: 'a', protocol: 'http', address: ':1', proxyProtocol: {} }), [
    'proxyProtocol: only for tcp and tls listeners',
  ]);
  assert.equal(
    issues({ name: 'a', protocol: 'tls', address: ':1', sni: [{ names: ['a b'], upstream: 'u' }] }).length,
    1,
  );
  assert.equal(
    issues({ name: 'a', protocol: 'tcp', address: ':1', upstream: 'u', proxyProtocol: { send: 'v3' } }).length,
    1,
  );
});

test('config → settings: pools by name, defaults, unknown upstream throws', () => {
  const pools = new Map<string, Pool>([
    ['a', { name: 'a' } as Pool],
    ['b', { name: 'b' } as Pool],
  ]);
  const log = { debug() {}, info() {}, warn() {}, error() {} };
  const deps = { pool: (n: string) => pools.get(n), upstreamConnectTimeoutMs: () => 1234, log };
  const tcp = l4Settings(
    listener.parse({ name: 't', protocol: 'tcp', address: ':1', upstream: 'a' }),
    deps,
  ) as TcpSettings;
  assert.equal(tcp.pool().name, 'a');
  assert.equal(tcp.connectTimeoutMs, 1234);
  assert.equal(tcp.maxConnections, 0);
  const tls = l4Settings(
    listener.parse({
      name: 's',
      protocol: 'tls',
      address: ':1',
      upstream: 'a',
      sni: [{ names: ['*.b.test'], upstream: 'b' }],
    }),
    deps,
  ) as TlsSettings;
  assert.equal(tls.mode, 'passthrough');
  assert.equal(tls.sni[0]!.pool().name, 'b');
  assert.equal(tls.defaultPool!().name, 'a');
  assert.throws(() => l4Settings(listener.parse({ name: 't', protocol: 'tcp', address: ':1', upstream: 'zz' }), deps));
  assert.deepEqual(splitAddress('[::1]:443'), { host: '::1', port: 443 });
  assert.deepEqual(splitAddress(':80'), { host: '::', port: 80 });
});
