/**
 * Metrics: what one ended exchange adds to the exposition, gauges read at scrape time, separate registries,
 * and docs/admin.md listing every metric.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { describe, it } from 'node:test';
import { loadConfigText } from '../../../src/config/loader.ts';
import { ALL_METRICS } from '../../../src/observe/metric-list.ts';
import { type ExchangeRecord, type MetricSources, Metrics } from '../../../src/observe/metrics.ts';
import { createPool, type UpstreamPool } from '../../../src/upstream/pool.ts';

const CONFIG = `
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams:
  - { name: api, targets: [ { url: http://127.0.0.1:9001 }, { url: http://127.0.0.1:9002 } ] }
routes:
  - { name: users, match: { path: /users/* }, upstream: api }
  - { name: assets, match: { path: /assets/* }, cache: { ttl: 30s }, upstream: api }
`;

function exchange(over: Partial<ExchangeRecord>): ExchangeRecord {
  return {
    route: 'users',
    status: 200,
    code: undefined,
    details: '',
    target: 'http://127.0.0.1:9001',
    retries: 0,
    startedAt: 0,
    clientAborted: false,
    ...over,
  };
}

/** A finished HTTP/1 response as the metrics see it: status and the serialised head. */
function response(status: number, head = ''): ServerResponse {
  return {
    statusCode: status,
    _header: `HTTP/1.1 ${status} X\r\ncontent-length: 0${head}\r\n\r\n`,
    getHeader: () => undefined,
  } as unknown as ServerResponse;
}

function setup(sources: Partial<MetricSources> = {}): Metrics {
  const m = new Metrics(
    { pools: () => undefined, webSockets: () => 0, l4Connections: () => 0, ...sources },
    { processMetrics: false },
  );
  m.configure(loadConfigText(CONFIG, 'test.yaml'));
  return m;
}

/** The value of one sample line, or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics', () => {
  it('counts proxied exchanges by route and status, local replies with their code', async () => {
    const m = setup();
    m.exchangeDone(exchange({}), response(200), 3);
    m.exchangeDone(exchange({}), response(200), 40);
    m.exchangeDone(exchange({ status: 0 }), response(404), 1);
    m.exchangeDone(
      exchange({ route: undefined, status: 404, code: 'GW_ROUTE_NOT_FOUND', target: undefined }),
      response(404),
      1,
    );
    const text = await m.text();
    assert.equal(sample(text, 'portico_http_requests_total{route="users",status="200"}'), 2);
    assert.equal(sample(text, 'portico_http_requests_total{route="users",status="404"}'), 1);
    assert.equal(sample(text, 'portico_http_requests_total{route="",status="404",code="GW_ROUTE_NOT_FOUND"}'), 1);
    assert.equal(sample(text, 'portico_http_local_replies_total{code="GW_ROUTE_NOT_FOUND"}'), 1);
  });

  it('records durations in a cumulative histogram (seconds)', async () => {
    const m = setup();
    m.exchangeDone(exchange({}), response(200), 3); // 3 ms
    m.exchangeDone(exchange({}), response(200), 40); // 40 ms
    m.exchangeDone(exchange({}), response(200), 60_000); // over every bound
    const text = await m.text();
    const name = 'portico_http_request_duration_seconds';
    assert.equal(sample(text, `${name}_bucket{route="users",le="0.005"}`), 1);
    assert.equal(sample(text, `${name}_bucket{route="users",le="0.025"}`), 1);
    assert.equal(sample(text, `${name}_bucket{route="users",le="0.1"}`), 2);
    assert.equal(sample(text, `${name}_bucket{route="users",le="+Inf"}`), 3);
    assert.equal(sample(text, `${name}_count{route="users"}`), 3);
    assert.equal(sample(text, `${name}_sum{route="users"}`), 60.043);
  });

  it('counts upstream attempts by outcome and retries', async () => {
    const m = setup();
    m.exchangeDone(exchange({ retries: 2 }), response(200), 1);
    m.exchangeDone(exchange({ status: 502, code: 'GW_UPSTREAM_CONNECT_FAILED' }), response(502), 1);
    m.exchangeDone(exchange({ status: 503 }), response(503), 1);
    m.exchangeDone(exchange({ clientAborted: true }), response(200), 1);
    // A cache hit (no target) makes no attempt.
    m.exchangeDone(exchange({ route: 'assets', target: undefined }), response(200, '\r\nx-cache: HIT'), 1);
    const text = await m.text();
    const a = 'portico_upstream_attempts_total';
    assert.equal(sample(text, `${a}{upstream="api",outcome="response"}`), 1);
    assert.equal(sample(text, `${a}{upstream="api",outcome="retried"}`), 2);
    assert.equal(sample(text, `${a}{upstream="api",outcome="connect_failure"}`), 1);
    assert.equal(sample(text, `${a}{upstream="api",outcome="response_5xx"}`), 1);
    assert.equal(sample(text, `${a}{upstream="api",outcome="cancelled"}`), 1);
    assert.equal(sample(text, 'portico_upstream_retries_total{upstream="api"}'), 2);
  });

  it('counts cache results from the status header of caching routes', async () => {
    const m = setup();
    m.exchangeDone(exchange({ route: 'assets' }), response(200, '\r\nx-cache: MISS'), 1);
    m.exchangeDone(exchange({ route: 'assets', target: undefined }), response(200, '\r\nx-cache: HIT'), 1);
    m.exchangeDone(exchange({ route: 'assets', target: undefined }), response(200, '\r\nx-cache: HIT'), 1);
    m.exchangeDone(exchange({ route: 'assets' }), response(200, '\r\nx-cache: REVALIDATED'), 1);
    // Ended before the cache step (no header): not a cache request.
    m.exchangeDone(exchange({ route: 'assets', status: 403, code: 'GW_ADDRESS_DENIED' }), response(403), 1);
    const text = await m.text();
    const c = 'portico_cache_requests_total';
    assert.equal(sample(text, `${c}{route="assets",result="HIT"}`), 2);
    assert.equal(sample(text, `${c}{route="assets",result="MISS"}`), 1);
    assert.equal(sample(text, `${c}{route="assets",result="REVALIDATED"}`), 1);
    assert.equal(sample(text, `${c}{route="assets",result="STALE"}`), 0);
    assert.equal(sample(text, `${c}{route="users",result="HIT"}`), undefined);
  });

  it('reads gauges from the runtime at scrape time', async () => {
    const config = loadConfigText(CONFIG, 'test.yaml');
    const pool = createPool(config.upstreams[0]!);
    try {
      pool.targets[1]!.healthy = false;
      let open = 3;
      const m = setup({ pools: () => new Map<string, UpstreamPool>([['api', pool]]), webSockets: () => open });
      let text = await m.text();
      assert.equal(sample(text, 'portico_upstream_targets{upstream="api",state="healthy"}'), 1);
      assert.equal(sample(text, 'portico_upstream_targets{upstream="api",state="unhealthy"}'), 1);
      assert.equal(sample(text, 'portico_upstream_targets{upstream="api",state="ejected"}'), 0);
      assert.equal(sample(text, 'portico_upstream_active_requests{upstream="api"}'), 0);
      assert.equal(sample(text, 'portico_websocket_connections'), 3);
      open = 1;
      text = await m.text();
      assert.equal(sample(text, 'portico_websocket_connections'), 1);
      assert.equal(sample(text, 'portico_l4_connections'), 0);
    } finally {
      pool.close();
    }
  });

  it('counts reloads by result', async () => {
    const m = setup();
    m.reloaded('ok');
    m.reloaded('invalid');
    m.reloaded('ok');
    const text = await m.text();
    assert.equal(sample(text, 'portico_config_reloads_total{result="ok"}'), 2);
    assert.equal(sample(text, 'portico_config_reloads_total{result="invalid"}'), 1);
    assert.equal(sample(text, 'portico_config_reloads_total{result="failed"}'), 0);
  });

  it('keeps each Metrics in its own registry, process metrics included', async () => {
    const sources = { pools: () => undefined, webSockets: () => 0, l4Connections: () => 0 };
    const a = new Metrics(sources);
    const b = new Metrics(sources);
    a.exchangeDone(exchange({ route: 'x', target: undefined }), response(200), 1);
    const textB = await b.text();
    assert.equal(sample(textB, 'portico_http_requests_total{route="x",status="200"}'), undefined);
    assert.match(await a.text(), /^process_cpu_user_seconds_total /m);
    assert.match(textB, /^nodejs_heap_size_used_bytes /m);
  });

  it('docs/admin.md lists every metric', () => {
    const doc = readFileSync(new URL('../../../docs/admin.md', import.meta.url), 'utf8');
    for (const m of ALL_METRICS) assert.ok(doc.includes(`\`${m.name}\``), `${m.name} is missing from docs/admin.md`);
  });
});
