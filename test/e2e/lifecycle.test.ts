/**
 * End to end: the command line (start, validate, schema), reload on SIGHUP under load, and graceful shutdown.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startEchoUpstream, startUpstream } from '../helpers/http.ts';
import { runPortico, startPortico } from '../helpers/portico.ts';

const config = (upstreamUrl: string, extraRoute = '') => `
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: origin, targets: [ { url: ${upstreamUrl} } ] } ]
routes:
${extraRoute}
  - { name: all, match: { path: /* }, upstream: origin }
`;

describe('command line', () => {
  it('validate exits 0 for a good file and 1 with every error for a bad one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-cli-'));
    const good = join(dir, 'good.yaml');
    await writeFile(good, config('http://127.0.0.1:9000'));
    const ok = await runPortico(['validate', '-c', good]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /OK/);

    const bad = join(dir, 'portico.yaml');
    await writeFile(
      bad,
      `listeners:
  - { name: web, protocol: htp, address: 127.0.0.1:8080 }
upstreams:
  - name: users
    targets: [ { url: http://127.0.0.1:9000 } ]
    timeouts: { connect: 2 seconds }
routes:
  - name: all
    match: { path: /* }
    upstream: usres
`,
    );
    const res = await runPortico(['validate', '-c', bad]);
    assert.equal(res.code, 1);
    assert.match(res.stderr, /portico\.yaml:2:\d+ listeners\[0\]\.protocol: /);
    assert.match(res.stderr, /portico\.yaml:6:\d+ upstreams\[0\]\.timeouts\.connect: invalid duration/);
    assert.match(
      res.stderr,
      /portico\.yaml:10:\d+ routes\[0\]\.upstream: unknown upstream "usres" \(did you mean "users"\?\)/,
    );
  });

  it('schema prints a JSON Schema', async () => {
    const res = await runPortico(['schema']);
    assert.equal(res.code, 0);
    const schema = JSON.parse(res.stdout) as { properties: Record<string, unknown> };
    assert.ok(schema.properties.listeners);
    assert.ok(schema.properties.routes);
  });

  it('start fails clearly on a missing file and on a taken port', async () => {
    const missing = await runPortico(['start', '-c', '/nonexistent/portico.yaml']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nonexistent\/portico\.yaml/);

    const taken = createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const port = (taken.address() as AddressInfo).port;
    const dir = await mkdtemp(join(tmpdir(), 'portico-cli-'));
    const file = join(dir, 'portico.yaml');
    await writeFile(file, config('http://127.0.0.1:9000').replace('127.0.0.1:0', `127.0.0.1:${port}`));
    const res = await runPortico(['start', '-c', file]);
    taken.close();
    assert.equal(res.code, 1);
    assert.match(res.stderr, new RegExp(`address already in use: 127\\.0\\.0\\.1:${port}`));
  });

  it('hash-password prints a scrypt hash that basic-auth accepts', async () => {
    const res = await runPortico(['hash-password'], { input: 's3cret-passw0rd\n' });
    assert.equal(res.code, 0, res.stderr);
    const hash = res.stdout.trim();
    assert.match(hash, /^scrypt:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    const { createConsumerDirectory } = await import('../../src/gateway/consumers.ts');
    const { consumer } = await import('../../src/gateway/schema.ts');
    const dir = createConsumerDirectory([
      consumer.parse({ name: 'ci', basicAuth: [{ username: 'ci', password: hash }] }),
    ]);
    assert.equal((await dir.byBasic('ci', 's3cret-passw0rd'))?.name, 'ci');
    assert.equal(await dir.byBasic('ci', 'wrong'), undefined);
  });

  it('unknown commands and options exit 2 with usage', async () => {
    const res = await runPortico(['frobnicate']);
    assert.equal(res.code, 2);
    assert.match(res.stderr, /Usage: portico/);
  });
});

describe('reload and shutdown', () => {
  it('reloads on SIGHUP under concurrent requests with zero failures', async (t) => {
    const a = await startEchoUpstream('a');
    const b = await startEchoUpstream('b');
    const p = await startPortico(config(a.url));
    t.after(async () => {
      await p.stop();
      await a.close();
      await b.close();
    });
    const port = p.port();
    let failures = 0;
    let done = 0;
    let stop = false;
    const seenNames = new Set<string>();
    const worker = async () => {
      for (let i = 0; i < 2000 && !stop; i++) {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/load`);
          const body = (await res.json()) as { name: string };
          if (res.status !== 200) failures++;
          seenNames.add(body.name);
          done++;
        } catch {
          failures++;
        }
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 150));
      const line = await p.reload(config(i % 2 === 0 ? b.url : a.url));
      assert.equal(line.msg, 'reloaded');
      assert.equal(p.port(), port, 'the listener keeps its port');
    }
    stop = true;
    await Promise.all(workers);
    assert.equal(failures, 0);
    assert.ok(done > 0);
    assert.deepEqual([...seenNames].sort(), ['a', 'b']);
  });

  it('keeps the running config when the new one has errors', async (t) => {
    const a = await startEchoUpstream('a');
    const p = await startPortico(config(a.url));
    t.after(async () => {
      await p.stop();
      await a.close();
    });
    const line = await p.reload('listeners: [ { name: web, protocol: http } ]\nroutes: nope\n');
    assert.match(String(line.msg), /reload failed/);
    assert.match(p.stderr, /portico\.yaml:1:\d+ listeners\[0\]/);
    const res = await fetch(`${p.url()}/still`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { name: string }).name, 'a');
  });

  it('applies route changes on reload', async (t) => {
    const a = await startEchoUpstream('a');
    const p = await startPortico(config(a.url));
    t.after(async () => {
      await p.stop();
      await a.close();
    });
    assert.equal((await fetch(`${p.url()}/old`)).status, 200);
    await p.reload(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: origin, targets: [ { url: ${a.url} } ] } ]
routes: [ { name: only-new, match: { path: /new }, upstream: origin } ]
`);
    assert.equal((await fetch(`${p.url()}/old`)).status, 404);
    assert.equal((await fetch(`${p.url()}/new`)).status, 200);
  });

  it('drains in-flight requests on SIGTERM, refuses new connections, and exits 0', async () => {
    const slow = await startUpstream((_req, res) => {
      setTimeout(() => res.end('finished'), 700);
    });
    const p = await startPortico(config(slow.url));
    try {
      const inflight = fetch(`${p.url()}/slow`).then(async (r) => ({ status: r.status, body: await r.text() }));
      await new Promise((r) => setTimeout(r, 150));
      const exit = p.stop('SIGTERM');
      await new Promise((r) => setTimeout(r, 100));
      await assert.rejects(fetch(`${p.url()}/new`), 'new connections are refused while draining');
      const result = await inflight;
      assert.deepEqual(result, { status: 200, body: 'finished' });
      assert.equal(await exit, 0);
    } finally {
      await p.stop('SIGKILL');
      await slow.close();
    }
  });

  it('cuts requests that outlive the drain deadline and still exits 0', async () => {
    const stuck = await startUpstream(() => {});
    const p = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: origin, targets: [ { url: ${stuck.url} } ] } ]
routes: [ { name: all, match: { path: /* }, upstream: origin } ]
proxy: { drainTimeout: 300ms }
`);
    try {
      const inflight = fetch(`${p.url()}/stuck`).then(
        () => 'answered',
        () => 'cut',
      );
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(await p.stop('SIGINT'), 0);
      assert.equal(await inflight, 'cut');
    } finally {
      await stuck.close();
    }
  });
});
