/**
 * End to end through the real `portico` process: sticky cookies, the retry budget, no retry of POST by
 * default, circuit-breaker limits (503 GW_UPSTREAM_OVERLOADED) and DNS discovery of a `localhost` target.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PorticoProcess } from '../helpers/portico.ts';
import { type Replica, type Reply, Stage, send, tally, until } from './balancing-helpers.ts';

const SECRET = 'e2e-sticky-secret-0123456789';

describe('resilience through the portico command', () => {
  it('sticky cookies, retry budget, circuit breaker and DNS discovery', async (t) => {
    const stage = new Stage(t);
    const sticky = [await stage.replica('s1'), await stage.replica('s2'), await stage.replica('s3')];
    const failing = [await stage.replica('f1'), await stage.replica('f2'), await stage.replica('f3')];
    const guarded = [await stage.replica('g1'), await stage.replica('g2')];
    // Listens on both loopbacks (same port) so `localhost` works whether it resolves to 127.0.0.1 or ::1.
    const named = await stage.replica('dns', ['127.0.0.1', '::1']);
    const list = (rs: readonly Replica[]) => `[ ${rs.map((r) => `{ url: "${r.url}" }`).join(', ')} ]`;
    const p: PorticoProcess = await stage.portico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams:
  - name: sticky
    balance: round-robin
    targets: ${list(sticky)}
    sticky: { secret: ${SECRET}, ttl: 10m }
  - name: budgeted
    balance: round-robin
    targets: ${list(failing)}
    health: { passive: { consecutiveFailures: 0 } }
    retries: { attempts: 3, on: [503], budget: { percent: 20, minConcurrency: 1 } }
  - name: unbudgeted
    balance: round-robin
    targets: ${list(failing)}
    health: { passive: { consecutiveFailures: 0 } }
    retries: { attempts: 3, on: [503], budget: { percent: 100, minConcurrency: 100 } }
  - { name: guarded, balance: round-robin, targets: ${list(guarded)}, circuitBreaker: { maxRequests: 2 } }
  - { name: per-target, balance: round-robin, targets: ${list(guarded)}, circuitBreaker: { maxRequestsPerTarget: 1 } }
  - name: sticky-guarded
    balance: round-robin
    targets: ${list(guarded)}
    sticky: { secret: ${SECRET} }
    circuitBreaker: { maxRequests: 1 }
  - name: discovered
    targets: [ { url: "http://localhost:${named.port}" } ]
    discovery: { resolveEvery: 200ms }
routes:
  - { name: sticky, match: { path: /sticky/* }, upstream: sticky }
  - { name: budgeted, match: { path: /budget/* }, upstream: budgeted }
  - { name: unbudgeted, match: { path: /nobudget/* }, upstream: unbudgeted }
  - { name: guarded, match: { path: /guarded/* }, upstream: guarded }
  - { name: per-target, match: { path: /per-target/* }, upstream: per-target }
  - { name: sticky-guarded, match: { path: /sticky-guarded/* }, upstream: sticky-guarded }
  - { name: discovered, match: { path: /dns/* }, upstream: discovered }
`);
    const base = p.url();
    const hitsOf = (rs: readonly Replica[]) => rs.reduce((n, r) => n + r.hits.length, 0);
    const heldOf = (rs: readonly Replica[]) => rs.reduce((n, r) => n + r.held.length, 0);

    await t.test(
      'sticky: the cookie names no address, pins the client, and moves it when its target dies',
      async () => {
        const url = `${base}/sticky/x`;
        const first = await send(url);
        assert.equal(first.status, 200);
        assert.ok(first.setCookie !== undefined, 'no Set-Cookie on the first response');
        const [pair] = first.setCookie.split(';') as [string];
        assert.match(pair, /^portico_sticky=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
        assert.match(first.setCookie, /Max-Age=600/);
        for (const r of sticky) assert.ok(!first.setCookie.includes(String(r.port)), 'the cookie leaks a port');
        assert.doesNotMatch(first.setCookie, /127\.0\.0\.1|localhost|http/);
        const home = first.servedBy!;

        const pinned: string[] = [];
        for (let i = 0; i < 9; i++) {
          const r = await send(url, { headers: { cookie: `other=1; ${pair}` } });
          assert.equal(r.status, 200);
          assert.equal(r.setCookie, undefined, 'a pinned client was given a new cookie');
          pinned.push(r.servedBy!);
        }
        assert.deepEqual(tally(pinned), { [home]: 9 });

        // Control: without the cookie, round-robin visits every target.
        const loose = new Set<string>();
        for (let i = 0; i < 6; i++) loose.add((await send(url)).servedBy!);
        assert.equal(loose.size, 3);

        // A forged signature counts as no cookie: balanced as usual and given a real one.
        const forgedPair = pair.slice(0, -1) + (pair.endsWith('A') ? 'B' : 'A');
        const forged = await send(url, { headers: { cookie: forgedPair } });
        assert.equal(forged.status, 200);
        assert.ok(forged.setCookie !== undefined);

        // The pinned target dies: the request is retried elsewhere and the client gets a new cookie.
        const dead = sticky.find((r) => r.name === home)!;
        await dead.kill();
        const moved = await send(url, { headers: { cookie: pair } });
        assert.equal(moved.status, 200, moved.body);
        assert.notEqual(moved.servedBy, home);
        assert.ok(moved.setCookie !== undefined, 'the moved client got no new cookie');
        const [newPair] = moved.setCookie.split(';') as [string];
        assert.notEqual(newPair, pair);
        const after: string[] = [];
        for (let i = 0; i < 6; i++) {
          const r = await send(url, { headers: { cookie: newPair } });
          assert.equal(r.status, 200);
          after.push(r.servedBy!);
        }
        assert.deepEqual(tally(after), { [moved.servedBy!]: 6 });

        // The old cookie keeps working while its target is out: each failure is retried elsewhere until
        // passive checks eject the target (5 failures), then the client is balanced without a failed try.
        let last: Reply | undefined;
        for (let i = 0; i < 8; i++) {
          last = await send(url, { headers: { cookie: pair } });
          assert.equal(last.status, 200, last.body);
          assert.notEqual(last.servedBy, home);
          assert.ok(last.setCookie !== undefined && !last.setCookie.startsWith(`${pair};`));
        }
        const line = await p.waitFor((l) => l.msg === 'request' && l.requestId === last!.requestId, 10_000);
        assert.equal(line.retries, undefined, 'the ejected pinned target was still tried');
      },
    );

    await t.test('retries on 503 go to other targets; POST is not retried by default', async () => {
      for (const r of failing) r.mode = 503;
      const before = hitsOf(failing);
      for (let i = 0; i < 5; i++) {
        const r = await send(`${base}/nobudget/get`);
        assert.equal(r.status, 503, 'the last upstream 503 is passed through');
        assert.equal(r.body.startsWith('f'), true, 'an upstream body, not a local reply');
      }
      assert.equal(hitsOf(failing) - before, 15, 'each GET tried all three targets');
      for (const r of failing) assert.equal(r.hits.filter((h) => h.path === '/nobudget/get').length, 5);

      const posts = hitsOf(failing);
      const post = await send(`${base}/nobudget/post`, { method: 'POST' });
      assert.equal(post.status, 503);
      assert.equal(hitsOf(failing) - posts, 1, 'a POST was retried');
    });

    await t.test('retry budget: 20 concurrent failing requests get at most 20% retries', async () => {
      for (const r of failing) r.mode = 'hold';
      const before = hitsOf(failing);
      const clients = 20;
      let finished = 0;
      const replies = Array.from({ length: clients }, () =>
        send(`${base}/budget/get`).then((r) => {
          finished++;
          return r;
        }),
      );
      assert.ok(await until(() => heldOf(failing) === clients), `held ${heldOf(failing)} of ${clients}`);
      // Every first try fails at once; only the retries the budget admits are sent (and held again).
      for (const r of failing) r.release(503);
      assert.ok(
        await until(
          () => finished + heldOf(failing) === clients && hitsOf(failing) - before === clients + heldOf(failing),
        ),
        'the first wave did not settle',
      );
      const retries = hitsOf(failing) - before - clients;
      assert.ok(retries >= 1 && retries <= clients * 0.2, `${retries} retries for ${clients} requests`);
      // Those retries fail too: with the budget spent by themselves, none is retried again.
      for (const r of failing) r.release(503);
      const all503 = await Promise.all(replies);
      assert.ok(all503.every((r: Reply) => r.status === 503));
      assert.equal(hitsOf(failing) - before, clients + retries, 'a second wave of retries was sent');
      for (const r of failing) r.mode = 'ok';
    });

    await t.test('circuit breaker: over the limit → 503 GW_UPSTREAM_OVERLOADED, then it recovers', async () => {
      for (const [path, limit] of [
        ['/guarded/x', 'maxRequests: 2'],
        ['/per-target/x', 'maxRequestsPerTarget: 1'],
      ] as const) {
        for (const r of guarded) r.mode = 'hold';
        const inFlight = [send(`${base}${path}`), send(`${base}${path}`)];
        assert.ok(await until(() => heldOf(guarded) === 2), `${limit}: requests not in flight`);
        const over = await send(`${base}${path}`);
        assert.equal(over.status, 503, limit);
        assert.equal(over.contentType, 'application/problem+json');
        const problem = JSON.parse(over.body) as { code: string; requestId: string };
        assert.equal(problem.code, 'GW_UPSTREAM_OVERLOADED', limit);
        assert.equal(problem.requestId, over.requestId);
        assert.equal(heldOf(guarded), 2, `${limit}: the refused request reached a target`);
        for (const r of guarded) {
          r.mode = 'ok';
          r.release();
        }
        for (const r of await Promise.all(inFlight)) assert.equal(r.status, 200);
        const again = await send(`${base}${path}`);
        assert.equal(again.status, 200, `${limit}: did not recover`);
      }
    });

    await t.test('circuit breaker: a client pinned by a sticky cookie is refused too at the limit', async () => {
      const url = `${base}/sticky-guarded/x`;
      const first = await send(url);
      assert.equal(first.status, 200);
      const [pair] = first.setCookie!.split(';') as [string];
      for (const r of guarded) r.mode = 'hold';
      const inFlight = send(url, { headers: { cookie: pair } });
      assert.ok(await until(() => heldOf(guarded) === 1), 'the first request was not in flight');
      let over: Reply | undefined;
      const overDone = send(url, { headers: { cookie: pair } }).then((r) => {
        over = r;
      });
      // Either the refusal arrives or (the bug) the request reaches the pinned target.
      const decided = await until(() => over !== undefined || heldOf(guarded) > 1);
      const reachedTarget = heldOf(guarded) > 1;
      for (const r of guarded) {
        r.mode = 'ok';
        r.release();
      }
      await overDone;
      assert.equal((await inFlight).status, 200);
      assert.ok(decided);
      assert.equal(reachedTarget, false, 'a pinned request went past maxRequests');
      assert.equal(over!.status, 503);
      assert.equal((JSON.parse(over!.body) as { code: string }).code, 'GW_UPSTREAM_OVERLOADED');
      assert.equal((await send(url, { headers: { cookie: pair } })).servedBy, first.servedBy, 'still pinned after');
    });

    await t.test('DNS discovery: http://localhost:<port> is resolved to its addresses and served', async () => {
      const url = `${base}/dns/x`;
      const replies: Reply[] = [];
      const discovered = await until(
        async () => {
          const r = await send(url);
          assert.equal(r.status, 200, r.body);
          replies.push(r);
          const ids = new Set(replies.map((x) => x.requestId));
          return p.lines.some(
            (l) =>
              l.msg === 'request' && ids.has(l.requestId as string) && l.target !== `http://localhost:${named.port}`,
          );
        },
        100,
        50,
      );
      assert.ok(discovered, 'no request went to a resolved address');
      const targets = new Set(
        p.lines.filter((l) => l.msg === 'request' && String(l.path).startsWith('/dns/')).map((l) => l.target),
      );
      for (const tg of targets) {
        assert.match(String(tg), new RegExp(`^http://(localhost|127\\.0\\.0\\.1|\\[::1\\]):${named.port}$`));
      }
      // The name, not the address, is what the upstream sees as Host.
      assert.ok(named.hits.length > 0);
      for (const h of named.hits) assert.equal(h.host, `localhost:${named.port}`);
    });
  });
});
