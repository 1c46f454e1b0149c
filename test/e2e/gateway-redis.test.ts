/**
 * @module End to end: three real `portico` processes sharing one real `redis-server` (started here on its own
 * port). A global rate limit admits exactly its limit across the three; a daily quota counts down across them;
 * killing Redis follows each policy's `onStoreFailure` (open: local counting, closed: 503) without crashes or
 * hangs; after Redis restarts on the same port the limits are shared through it again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startEchoUpstream, type TestServer } from '../helpers/http.ts';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';
import { createRedisServer, type RedisServer } from '../helpers/redis-server.ts';

/** Hang detector for every request: a healthy gateway answers long before this. */
const CLIENT_TIMEOUT_MS = 5000;

const KEYS: Record<string, string> = {
  acme: 'acme-key-0000000000000',
  bob: 'bob-key-00000000000000',
  carol: 'carol-key-000000000000',
  dave: 'dave-key-0000000000000',
  probe: 'probe-key-000000000000',
};

function config(echoUrl: string, redisUrl: string): string {
  const consumers = Object.entries(KEYS)
    .map(([name, key]) => `  - { name: ${name}, apiKeys: [ ${key} ] }`)
    .join('\n');
  // Default Redis timeouts (200ms per command): decisions stay exact on a busy machine because a reply that
  // arrived while an instance's event loop was busy still counts (src/state/redis.ts, `bounded`).
  return `
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: api, targets: [ { url: ${echoUrl} } ] } ]
state: { store: redis, url: "${redisUrl}" }
consumers:
${consumers}
policies:
  key: { type: api-key, header: x-api-key }
  global: { type: rate-limit, limit: 30, per: 1m, key: consumer, onStoreFailure: open, fallbackDivideBy: 3 }
  strict: { type: rate-limit, limit: 1000, per: 1m, key: consumer, onStoreFailure: closed }
  daily: { type: quota, limit: 6, period: day, key: consumer }
routes:
  - { name: global, match: { path: /global/* }, policies: [key, global], upstream: api }
  - { name: strict, match: { path: /strict/* }, policies: [key, strict], upstream: api }
  - { name: quota, match: { path: /quota/* }, policies: [key, daily], upstream: api }
`;
}

interface Result {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
}

/** One GET as `consumer`; rejects if no answer within CLIENT_TIMEOUT_MS. */
async function get(p: PorticoProcess, path: string, consumer: string, requestId?: string): Promise<Result> {
  const headers: Record<string, string> = { 'x-api-key': KEYS[consumer]! };
  if (requestId !== undefined) headers['x-request-id'] = requestId;
  const res = await fetch(`${p.url()}${path}`, {
    headers,
    signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
  });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** `counts[i]` concurrent GETs to instance i, all at once. */
function burst(instances: readonly PorticoProcess[], counts: readonly number[], path: string, consumer: string) {
  const all: Promise<Result>[] = [];
  for (let i = 0; i < instances.length; i++) {
    for (let n = 0; n < counts[i]!; n++) all.push(get(instances[i]!, path, consumer));
  }
  return Promise.all(all);
}

/** Logs are written in batches: a marker request's access-log line means every earlier line is in `p.lines`. */
async function settleLogs(p: PorticoProcess, marker: string): Promise<void> {
  await get(p, '/global/marker', 'probe', marker);
  await p.waitFor((l) => l.msg === 'request' && l.requestId === marker, 5000);
}

const countOf = (rs: readonly Result[], status: number): number => rs.filter((r) => r.status === status).length;
const codeOf = (r: Result): string => (JSON.parse(r.body) as { code: string }).code;

describe('gateway state shared through redis by three instances', () => {
  let echo: TestServer;
  let redis: RedisServer;
  let inspect: Redis;
  const ps: PorticoProcess[] = [];

  before(async () => {
    echo = await startEchoUpstream('api');
    redis = await createRedisServer();
    await redis.start();
    inspect = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const yaml = config(echo.url, redis.url);
    ps.push(...(await Promise.all([startPortico(yaml), startPortico(yaml), startPortico(yaml)])));
    // The first request of a fresh instance already goes through Redis: a `closed` policy admits it (no 503
    // while the connection is being made). Also warms each instance with a consumer no test counts.
    for (const p of ps) assert.equal((await get(p, '/strict/warm', 'probe')).status, 200);
  });

  after(async () => {
    inspect?.disconnect();
    await Promise.all(ps.map((p) => p.stop()));
    await redis?.stop();
    await echo?.close();
  });

  it('admits exactly the global limit across the three instances; the rest get 429 with headers', async () => {
    const results = await burst(ps, [30, 30, 30], '/global/x', 'acme');
    assert.equal(countOf(results, 200), 30, 'exactly the limit is admitted');
    assert.equal(countOf(results, 429), 60);
    for (const r of results) {
      assert.equal(r.headers.get('ratelimit-policy'), '"global";q=30;w=60');
      assert.match(r.headers.get('ratelimit') ?? '', /^"global";r=\d+;t=\d+$/);
      if (r.status === 429) {
        assert.match(r.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
        assert.equal(codeOf(r), 'GW_RATE_LIMITED');
        assert.equal(r.headers.get('content-type'), 'application/problem+json');
      }
    }
    // Every instance decided through Redis: none fell back to local counting.
    await Promise.all(ps.map((p, i) => settleLogs(p, `settle-burst-${i}`)));
    for (const p of ps)
      assert.deepEqual(
        p.lines.filter((l) => l.level === 'warn' || l.level === 'error'),
        [],
      );
    await inspect.connect();
    assert.equal(await inspect.hget('portico:rl:global::c:acme', 'c'), '30', 'the count lives in Redis');
  });

  it('counts a daily quota across instances, with the remaining count, then 429 GW_QUOTA_EXCEEDED', async () => {
    const remaining: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await get(ps[i % 3]!, '/quota/x', 'bob');
      assert.equal(r.status, 200);
      remaining.push(r.headers.get('x-quota-remaining') ?? '');
    }
    assert.deepEqual(remaining, ['5', '4', '3', '2', '1', '0']);
    for (const p of ps) {
      const r = await get(p, '/quota/x', 'bob');
      assert.equal(r.status, 429);
      assert.equal(codeOf(r), 'GW_QUOTA_EXCEEDED');
      assert.equal(r.headers.get('x-quota-remaining'), '0');
      const retry = Number(r.headers.get('retry-after'));
      assert.ok(retry >= 1 && retry <= 86_400, `retry-after ${retry} is within the day`);
    }
    assert.equal((await get(ps[0]!, '/quota/x', 'carol')).headers.get('x-quota-remaining'), '5', 'per consumer');
  });

  it('follows onStoreFailure when Redis dies, then shares limits through it again once it restarts', async () => {
    inspect.disconnect();
    await redis.stop();

    // open: every instance keeps serving, counting locally with limit / fallbackDivideBy = 10 each.
    const open = await burst(ps, [12, 12, 12], '/global/x', 'dave');
    for (let i = 0; i < 3; i++) {
      const mine = open.slice(i * 12, i * 12 + 12);
      assert.equal(countOf(mine, 200), 10, `instance ${i} admits its local share`);
      assert.equal(countOf(mine, 429), 2);
    }
    // closed: refuses rather than count without the shared store.
    for (const p of ps) {
      const r = await get(p, '/strict/x', 'dave');
      assert.equal(r.status, 503);
      assert.equal(codeOf(r), 'GW_STATE_UNAVAILABLE');
    }
    for (const p of ps) {
      assert.equal(p.child.exitCode, null, 'no instance crashed');
      await p.waitFor((l) => l.msg === 'shared store unavailable; counting locally' && l.policy === 'global', 5000);
    }

    await redis.start();
    // Recovery: each instance's `global` policy logs it is back on Redis and `strict` admits again.
    const back = new Set<number>();
    for (let attempt = 0; attempt < 100 && back.size < ps.length; attempt++) {
      for (let i = 0; i < ps.length; i++) {
        if (back.has(i)) continue;
        const p = ps[i]!;
        await get(p, '/global/probe', 'probe');
        const strict = await get(p, '/strict/probe', 'probe');
        const logged = p.lines.some((l) => l.msg === 'shared store available again' && l.policy === 'global');
        if (logged && strict.status === 200) back.add(i);
      }
      if (back.size < ps.length) await sleep(100);
    }
    assert.equal(back.size, ps.length, 'every instance uses Redis again');

    // Shared again: a skewed burst still admits exactly 30 in total (local counting would admit 10 + 5 + 5).
    const shared = await burst(ps, [35, 5, 5], '/global/x', 'carol');
    assert.equal(countOf(shared, 200), 30);
    assert.equal(countOf(shared, 429), 15);
    await inspect.connect();
    assert.equal(await inspect.hget('portico:rl:global::c:carol', 'c'), '30');
  });
});
