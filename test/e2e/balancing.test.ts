/**
 * End to end through the real `portico` process: how each algorithm spreads requests over three real
 * replicas, and consistent hashing's stability across a reload that removes a target.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PorticoProcess } from '../helpers/portico.ts';
import { type Replica, Stage, send, tally, until, workers } from './balancing-helpers.ts';

describe('balancing algorithms through the portico command', () => {
  it('round-robin, weighted, least-request, random and consistent-hash spread requests as documented', async (t) => {
    const stage = new Stage(t);
    const a = await stage.replica('a');
    const b = await stage.replica('b');
    const c = await stage.replica('c');
    // Separate replicas for least-request: one of them holds requests, which must not disturb the others.
    const la = await stage.replica('la');
    const lb = await stage.replica('lb');
    const lc = await stage.replica('lc');
    const three = (r: readonly Replica[], weights: readonly number[] = [1, 1, 1]) =>
      `[ ${r.map((x, i) => `{ url: "${x.url}", weight: ${weights[i]} }`).join(', ')} ]`;
    const yaml = (hashTargets: readonly Replica[]) => `
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams:
  - { name: rr, balance: round-robin, targets: ${three([a, b, c])} }
  - { name: weighted, balance: weighted, targets: ${three([a, b, c], [3, 2, 1])} }
  - { name: least, balance: least-request, targets: ${three([la, lb, lc])} }
  - { name: random, balance: random, targets: ${three([a, b, c])} }
  - name: hash
    balance: consistent-hash
    hashOn: { header: x-user }
    targets: [ ${hashTargets.map((x) => `{ url: "${x.url}" }`).join(', ')} ]
routes:
  - { name: rr, match: { path: /rr/* }, upstream: rr }
  - { name: weighted, match: { path: /weighted/* }, upstream: weighted }
  - { name: least, match: { path: /least/* }, upstream: least }
  - { name: random, match: { path: /random/* }, upstream: random }
  - { name: hash, match: { path: /hash/* }, upstream: hash }
`;
    const p: PorticoProcess = await stage.portico(yaml([a, b, c]));
    const base = p.url();
    const sequence = async (path: string, n: number): Promise<string[]> => {
      const out: string[] = [];
      for (let i = 0; i < n; i++) {
        const r = await send(`${base}${path}`);
        assert.equal(r.status, 200, `${path} #${i}`);
        out.push(r.servedBy!);
      }
      return out;
    };

    await t.test('round-robin: an exact rotation over the three targets', async () => {
      const seen = await sequence('/rr/x', 12);
      assert.deepEqual(new Set(seen.slice(0, 3)), new Set(['a', 'b', 'c']));
      for (let i = 3; i < seen.length; i++) assert.equal(seen[i], seen[i % 3], `request ${i}: ${seen.join(' ')}`);
    });

    await t.test('weighted 3:2:1: 60 requests split 30/20/10 (±1), never a burst of the heavy one', async () => {
      const seen = await sequence('/weighted/x', 60);
      const counts = tally(seen);
      for (const [name, want] of [
        ['a', 30],
        ['b', 20],
        ['c', 10],
      ] as const) {
        assert.ok(Math.abs((counts[name] ?? 0) - want) <= 1, `${name}: ${JSON.stringify(counts)}`);
      }
      // Smooth WRR: in each cycle of 6, a never takes more than 2 in a row.
      assert.doesNotMatch(seen.join(''), /aaa/);
    });

    await t.test('least-request: a target with a request stuck in flight gets no new ones', async () => {
      lb.mode = 'hold';
      // Send until lb holds one (bounded): the others answer at once.
      const stuck: Promise<unknown>[] = [];
      let answered = 0;
      const gotOne = await until(() => {
        if (lb.held.length > 0) return true;
        stuck.push(
          send(`${base}/least/warm`).then((r) => {
            answered++;
            return r;
          }),
        );
        return false;
      }, 100);
      assert.ok(gotOne, 'lb never received a request');
      // Every warm-up request but the held ones (one, or more if la or lc was busy at a pick) has finished:
      // la and lc are idle.
      assert.ok(await until(() => answered === stuck.length - lb.held.length), 'warm-up requests did not finish');
      const seen = await sequence('/least/x', 60);
      const counts = tally(seen);
      assert.equal(counts.lb, undefined, `the busy target got requests: ${JSON.stringify(counts)}`);
      // Both idle ones share the load (power of two choices, ties to a random one of the pair).
      assert.ok((counts.la ?? 0) >= 10 && (counts.lc ?? 0) >= 10, JSON.stringify(counts));
      lb.mode = 'ok';
      lb.release();
      const done = await Promise.all(stuck);
      assert.ok(done.every((r) => (r as { status: number }).status === 200));
    });

    await t.test('random: 300 requests, each target between 60 and 140 (expected 100)', async () => {
      const seen: string[] = [];
      await workers(4, 75, async () => {
        const r = await send(`${base}/random/x`);
        assert.equal(r.status, 200);
        seen.push(r.servedBy!);
      });
      const counts = tally(seen);
      // Binomial(300, 1/3): sd ≈ 8.2, so ±40 is ~5 sd (a false alarm about once in a million runs).
      for (const name of ['a', 'b', 'c']) {
        const n = counts[name] ?? 0;
        assert.ok(n >= 60 && n <= 140, `${name}: ${JSON.stringify(counts)}`);
      }
    });

    await t.test('consistent-hash: a key sticks to its target; removing one moves only (about) its keys', async () => {
      const keys = Array.from({ length: 100 }, (_, i) => `user-${i}-${i * 7919}`);
      const where = async (): Promise<Map<string, string>> => {
        const out = new Map<string, string>();
        await workers(4, keys.length / 4, async (w, i) => {
          const key = keys[w * (keys.length / 4) + i]!;
          const r = await send(`${base}/hash/x`, { headers: { 'x-user': key } });
          assert.equal(r.status, 200);
          out.set(key, r.servedBy!);
        });
        return out;
      };
      const first = await where();
      const second = await where();
      assert.deepEqual(second, first, 'the same key went to another target with nothing changed');
      const counts = tally([...first.values()]);
      for (const name of ['a', 'b', 'c']) assert.ok((counts[name] ?? 0) >= 15, JSON.stringify(counts));

      const line = await p.reload(yaml([a, b]));
      assert.equal(line.msg, 'reloaded');
      const after = await where();
      let movedFromOthers = 0;
      for (const key of keys) {
        const before = first.get(key)!;
        const now = after.get(key)!;
        assert.notEqual(now, 'c', `${key} still on the removed target`);
        if (before !== 'c' && now !== before) movedFromOthers++;
      }
      // Maglev is near-minimal, not minimal: a removal can remap well under 1% of the other targets' slots.
      assert.ok(movedFromOthers <= 2, `${movedFromOthers} keys of the kept targets moved`);
    });
  });
});
