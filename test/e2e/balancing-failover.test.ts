/**
 * End to end through the real `portico` process: a replica killed under load costs no client request, is
 * taken out, and comes back on the same port after passing its active checks; and health state (a passive
 * ejection) outlives a SIGHUP reload that keeps the target.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LogLine, PorticoProcess } from '../helpers/portico.ts';
import { type Replica, type Reply, Stage, send, until, workers } from './balancing-helpers.ts';

/** The access-log lines of `replies`, in the same order (lines are flushed about once a second). */
async function logsOf(p: PorticoProcess, replies: readonly Reply[]): Promise<LogLine[]> {
  const want = new Set(replies.map((r) => r.requestId));
  const byId = new Map<string, LogLine>();
  const found = await until(
    () => {
      for (const l of p.lines) {
        const id = l.requestId as string;
        if (l.msg === 'request' && want.has(id)) byId.set(id, l);
      }
      return byId.size === want.size;
    },
    200,
    50,
  );
  assert.ok(found, `access-log lines missing: ${want.size - byId.size} of ${want.size}`);
  return replies.map((r) => byId.get(r.requestId)!);
}

/**
 * Sends runs of `run` GETs one at a time (at most `batches` runs) until one run was served entirely without
 * a retry and never by `avoid`: with round-robin over three targets that means `avoid` is no longer picked.
 */
async function untilAvoided(p: PorticoProcess, url: string, avoid: Replica, run = 15, batches = 10): Promise<boolean> {
  for (let b = 0; b < batches; b++) {
    const replies: Reply[] = [];
    for (let i = 0; i < run; i++) {
      const r = await send(url);
      assert.equal(r.status, 200, `probe ${i}: ${r.body}`);
      replies.push(r);
    }
    const lines = await logsOf(p, replies);
    if (lines.every((l) => l.retries === undefined && l.target !== avoid.url)) return true;
  }
  return false;
}

describe('failover through the portico command', () => {
  it('kills one of three replicas under load: no failed request, ejected, back after its checks', async (t) => {
    const stage = new Stage(t);
    const replicas = [await stage.replica('a'), await stage.replica('b'), await stage.replica('c')];
    const [, b] = replicas as [Replica, Replica, Replica];
    // Passive ejection is off so that the target's return is decided by active checks alone. The budget
    // admits a retry for each of the 8 concurrent clients: this test is about failover, not the budget.
    const p = await stage.portico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams:
  - name: app
    balance: round-robin
    targets: [ ${replicas.map((r) => `{ url: "${r.url}" }`).join(', ')} ]
    health:
      active: { path: /healthz, interval: 200ms, timeout: 1s, healthyThreshold: 2, unhealthyThreshold: 2 }
      passive: { consecutiveFailures: 0 }
    retries: { attempts: 3, on: [connect-failure, reset], budget: { percent: 100, minConcurrency: 8 } }
routes: [ { name: all, match: { path: /* }, upstream: app } ]
`);
    const url = `${p.url()}/work`;
    // New targets take traffic only after a first passing check.
    assert.ok(await until(() => replicas.every((r) => r.checks > 0)), 'no health checks arrived');
    assert.ok(await until(async () => (await send(url)).status === 200), 'the pool never became available');

    const failures: string[] = [];
    const replies: Reply[] = [];
    let done = 0;
    let killed: Promise<void> | undefined;
    await workers(8, 30, async (w, i) => {
      const r = await send(url);
      if (r.status !== 200) failures.push(`worker ${w} #${i}: ${r.status} ${r.body}`);
      replies.push(r);
      done++;
      if (done === 60 && killed === undefined) {
        // Hold b's next request so one is surely in flight when b dies (reset, then retried elsewhere).
        b.mode = 'hold';
        killed = (async () => {
          await until(() => b.held.length > 0, 400, 5);
          await b.kill();
        })();
      }
    });
    await killed;
    assert.deepEqual(failures, [], 'client requests failed while a replica died');
    assert.ok(!b.alive);
    const retried = (await logsOf(p, replies)).filter((l) => typeof l.retries === 'number' && l.retries > 0);
    assert.ok(retried.length > 0, 'no request needed a retry: the kill did not hit anything in flight');
    assert.ok(
      retried.every((l) => l.status === 200 && l.target !== b.url),
      'a retried request ended on the dead target',
    );

    // Taken out: a run of requests never touches b (round-robin would pick it every third time).
    assert.ok(await untilAvoided(p, url, b), 'the dead target kept being picked');

    // Back on the same port: it must pass its checks (healthyThreshold 2) before it gets traffic again.
    b.mode = 'ok';
    const hitsBefore = b.hits.length;
    const checksBefore = b.checks;
    await b.restart();
    assert.ok(b.alive);
    const probes: Reply[] = [];
    const back = await until(
      async () => {
        const r = await send(url);
        assert.equal(r.status, 200, r.body);
        probes.push(r);
        return r.servedBy === 'b';
      },
      200,
      20,
    );
    assert.ok(back, 'the replica did not get traffic after it came back');
    const firstHit = b.hits[hitsBefore]!;
    assert.ok(
      firstHit.checksBefore - checksBefore >= 2,
      `traffic came back after ${firstHit.checksBefore - checksBefore} passing checks`,
    );
    const lines = await logsOf(p, probes);
    assert.equal(lines.at(-1)!.target, b.url, 'the access log names the returned target again');
  });

  it('keeps a passive ejection across a SIGHUP reload that keeps the target', async (t) => {
    const stage = new Stage(t);
    const a = await stage.replica('a');
    const b = await stage.replica('b');
    const yaml = (targets: readonly Replica[], responseTimeout: string) => `
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams:
  - name: app
    balance: round-robin
    targets: [ ${targets.map((r) => `{ url: "${r.url}" }`).join(', ')} ]
    health: { passive: { consecutiveFailures: 2, ejectFor: 5m, maxEjectFor: 5m } }
    timeouts: { response: ${responseTimeout} }
routes: [ { name: all, match: { path: /* }, upstream: app } ]
`;
    const p = await stage.portico(yaml([a, b], '30s'));
    const url = `${p.url()}/work`;
    const spread = async (n: number): Promise<Record<string, number>> => {
      const out: Record<string, number> = {};
      for (let i = 0; i < n; i++) {
        const r = await send(url);
        assert.equal(r.status, 200, r.body);
        out[r.servedBy!] = (out[r.servedBy!] ?? 0) + 1;
      }
      return out;
    };
    assert.deepEqual(await spread(4), { a: 2, b: 2 });

    // b dies: its connect failures are retried on a, and two in a row eject it.
    await b.kill();
    assert.deepEqual(await spread(6), { a: 6 });
    await b.restart();
    // Alive again, but ejected for 5 minutes: round-robin skips it.
    assert.deepEqual(await spread(6), { a: 6 });
    const hitsBefore = b.hits.length;

    // A reload that changes the upstream but keeps b keeps b's ejection.
    assert.equal((await p.reload(yaml([a, b], '20s'))).msg, 'reloaded');
    assert.deepEqual(await spread(10), { a: 10 });
    assert.equal(b.hits.length, hitsBefore, 'the ejected target got traffic after the reload');

    // Control: dropping b and adding it back gives it a fresh state, so it takes traffic at once.
    assert.equal((await p.reload(yaml([a], '20s'))).msg, 'reloaded');
    assert.equal((await p.reload(yaml([a, b], '20s'))).msg, 'reloaded');
    assert.deepEqual(await spread(4), { a: 2, b: 2 });
  });

  it('drains a target removed by a reload: no new requests, the one in flight finishes', async (t) => {
    const stage = new Stage(t);
    const replicas = [await stage.replica('a'), await stage.replica('b'), await stage.replica('c')];
    const [a, b, c] = replicas as [Replica, Replica, Replica];
    const yaml = (targets: readonly Replica[]) => `
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams:
  - { name: app, balance: round-robin, targets: [ ${targets.map((r) => `{ url: "${r.url}" }`).join(', ')} ] }
routes: [ { name: all, match: { path: /* }, upstream: app } ]
`;
    const p = await stage.portico(yaml(replicas));
    const url = `${p.url()}/work`;
    c.mode = 'hold';
    const pending: Promise<Reply>[] = [];
    let answered = 0;
    assert.ok(
      await until(() => {
        if (c.held.length > 0) return true;
        pending.push(
          send(url).then((r) => {
            answered++;
            return r;
          }),
        );
        return false;
      }, 50),
      'c never got a request',
    );
    // Every request sent so far is answered or held by c, so none is still on its way to c.
    assert.ok(await until(() => answered + c.held.length === pending.length), 'warm-up requests did not settle');
    assert.equal((await p.reload(yaml([a, b]))).msg, 'reloaded');
    const hitsBefore = c.hits.length;
    for (let i = 0; i < 10; i++) {
      const r = await send(url);
      assert.equal(r.status, 200);
      assert.notEqual(r.servedBy, 'c');
    }
    assert.equal(c.hits.length, hitsBefore, 'the removed target got new requests');
    c.release();
    const done = await Promise.all(pending);
    assert.ok(done.every((r) => r.status === 200));
    assert.ok(
      done.some((r) => r.servedBy === 'c'),
      'the in-flight request on the removed target did not finish',
    );
  });
  it('a 503 with every target ejected or down carries Retry-After until the ejection ends', async (t) => {
    const stage = new Stage(t);
    const a = await stage.replica('a');
    const b = await stage.replica('b');
    // b answers 500 and is ejected for 5 minutes (the last available target never is, so a stays in);
    // then a dies and its active checks take it out: no target is left, and only b's return has a date.
    const p = await stage.portico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams:
  - name: app
    balance: round-robin
    targets: [ { url: "${a.url}" }, { url: "${b.url}" } ]
    health:
      active: { path: /healthz, interval: 50ms, healthyThreshold: 1, unhealthyThreshold: 1 }
      passive: { consecutiveFailures: 1, ejectFor: 5m, maxEjectFor: 5m }
routes: [ { name: all, match: { path: /* }, upstream: app } ]
`);
    const url = `${p.url()}/work`;
    b.mode = 500;
    assert.ok(await until(async () => (await send(url)).status === 500), 'b was never tried');
    await a.kill();
    let res: Response | undefined;
    assert.ok(
      await until(async () => {
        res = await fetch(url);
        await res.arrayBuffer();
        return res.status === 503;
      }),
      'no 503 once every target was out',
    );
    assert.equal(res!.headers.get('content-type'), 'application/problem+json');
    const retryAfter = Number(res!.headers.get('retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 300, `retry-after ${retryAfter}`);

    // Control: with b down by its checks too, nobody knows when a target is back: no Retry-After.
    b.mode = 'ok';
    await b.kill();
    assert.ok(
      await until(async () => {
        res = await fetch(url);
        await res.arrayBuffer();
        return res.status === 503 && !res.headers.has('retry-after');
      }),
      'Retry-After stayed with no ejected target that could come back',
    );
  });
});
