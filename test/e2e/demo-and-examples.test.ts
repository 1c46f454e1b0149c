/**
 * Every file in examples/ loads and validates, and `portico demo` (what `npm start` runs) serves what it
 * promises: balanced users replicas, a 401 without an API key, 200 with it, a JWT route, and a 429.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfigFile } from '../../src/config/loader.ts';
import { configValidators } from '../../src/runtime/validators.ts';

const EXAMPLES = new URL('../../examples/', import.meta.url).pathname;
const BIN = new URL('../../bin/portico.mjs', import.meta.url).pathname;

/** Values for the ${VAR} references examples use (ports of demo backends, secrets). */
const EXAMPLE_ENV: Record<string, string> = {
  USERS_1: '9101',
  USERS_2: '9102',
  USERS_3: '9103',
  ORDERS: '9104',
  ACME_KEY: 'example-key-000000000001',
  JWT_SECRET: 'example-secret-0123456789-0123456789',
  CERT_DIR: '/tmp',
};

describe('examples', async () => {
  const files = (await readdir(EXAMPLES)).filter((f) => f.endsWith('.yaml'));
  it('has examples', () => assert.ok(files.length > 0));
  for (const file of files) {
    it(`${file} is a valid config`, async () => {
      const config = await loadConfigFile(join(EXAMPLES, file), {
        env: { ...process.env, ...EXAMPLE_ENV },
        validators: configValidators(),
      });
      assert.ok(config.listeners.length > 0);
    });
  }
});

describe('portico demo', () => {
  it('starts the demo and answers as it says', async (t) => {
    const child = spawn(process.execPath, [BIN, 'demo'], {
      env: { ...process.env, DEMO_PORT: '0', DEMO_ADMIN_PORT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => {
      child.kill('SIGKILL');
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    const base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`demo did not start: ${out}`)), 30_000);
      child.stdout.on('data', (c: string) => {
        out += c;
        const m = /running on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m && out.includes('429')) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once('exit', (code) => reject(new Error(`demo exited with ${code}: ${out}`)));
    });
    const replicas = new Set<number>();
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`${base}/users/42`);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('x-served-by'), 'portico');
      assert.equal(res.headers.get('server'), null);
      const body = (await res.json()) as { replica: number; path: string };
      assert.equal(body.path, '/v1/users/42');
      replicas.add(body.replica);
    }
    assert.ok(replicas.size >= 2, `load spread over replicas (saw ${[...replicas].join(',')})`);
    assert.equal((await fetch(`${base}/api/orders/`)).status, 401);
    assert.equal((await fetch(`${base}/api/orders/`, { headers: { 'x-api-key': 'demo-key-acme-0001' } })).status, 200);
    const token = /Bearer ([\w.-]+)/.exec(out)![1]!;
    assert.equal((await fetch(`${base}/jwt/orders/`, { headers: { authorization: `Bearer ${token}` } })).status, 200);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await fetch(`${base}/limited/x`)).status);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    const first = await fetch(`${base}/catalog/`);
    await first.text();
    const second = await fetch(`${base}/catalog/`);
    await second.text();
    assert.deepEqual([first.headers.get('x-cache'), second.headers.get('x-cache')], ['MISS', 'HIT']);
    const admin = /curl -s (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(out)![1]!;
    const metrics = await (await fetch(`${admin}/metrics`)).text();
    assert.match(metrics, /portico_http_requests_total/);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    assert.equal(code, 0);
  });
});
