/**
 * @module End to end: shadow mode (`enforce: false`) of `rate-limit` and `quota` through the real process —
 * requests past the limit are never refused and carry no limit headers, but each would-be denial is logged
 * with its policy, route, consumer and request id.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startEchoUpstream, type TestServer } from '../helpers/http.ts';
import { type LogLine, type PorticoProcess, startPortico } from '../helpers/portico.ts';

const KEY = 'shadow-key-00000000000';

describe('shadow mode', () => {
  let echo: TestServer;
  let p: PorticoProcess;

  before(async () => {
    echo = await startEchoUpstream('api');
    p = await startPortico(`
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: api, targets: [ { url: ${echo.url} } ] } ]
consumers: [ { name: acme, apiKeys: [ ${KEY} ] } ]
policies:
  key: { type: api-key, header: x-api-key }
  rl-shadow: { type: rate-limit, limit: 3, per: 1m, key: consumer, enforce: false }
  q-shadow: { type: quota, limit: 2, period: day, key: consumer, enforce: false }
routes:
  - { name: rl, match: { path: /rl/* }, policies: [key, rl-shadow], upstream: api }
  - { name: q, match: { path: /q/* }, policies: [key, q-shadow], upstream: api }
`);
  });

  after(async () => {
    await p?.stop();
    await echo?.close();
  });

  /** `n` sequential requests with request ids `<prefix>-1` … `<prefix>-n`; returns their responses. */
  async function send(path: string, prefix: string, n: number): Promise<Response[]> {
    const out: Response[] = [];
    for (let i = 1; i <= n; i++) {
      const res = await fetch(`${p.url()}${path}`, {
        headers: { 'x-api-key': KEY, 'x-request-id': `${prefix}-${i}` },
        signal: AbortSignal.timeout(5000),
      });
      await res.text();
      out.push(res);
    }
    return out;
  }

  /** Waits for the access-log line of `requestId`, so every policy log line of that request is in. */
  const logged = (requestId: string): Promise<LogLine> =>
    p.waitFor((l) => l.msg === 'request' && l.requestId === requestId, 5000);

  it('rate-limit: never 429, no limit headers, and each would-be denial logged', async () => {
    const responses = await send('/rl/x', 'rl', 6);
    assert.deepEqual(
      responses.map((r) => r.status),
      [200, 200, 200, 200, 200, 200],
    );
    for (const r of responses) {
      assert.equal(r.headers.get('ratelimit'), null);
      assert.equal(r.headers.get('ratelimit-policy'), null);
      assert.equal(r.headers.get('retry-after'), null);
    }
    await logged('rl-6');
    const denials = p.lines.filter((l) => l.msg === 'rate limit exceeded (shadow mode, not enforced)');
    assert.deepEqual(
      denials.map((l) => l.requestId),
      ['rl-4', 'rl-5', 'rl-6'],
    );
    for (const l of denials) {
      assert.equal(l.policy, 'rl-shadow');
      assert.equal(l.route, 'rl');
      assert.equal(l.consumer, 'acme');
    }
  });

  it('quota: never 429, and each request over the quota logged', async () => {
    const responses = await send('/q/x', 'q', 4);
    assert.deepEqual(
      responses.map((r) => r.status),
      [200, 200, 200, 200],
    );
    await logged('q-4');
    const denials = p.lines.filter((l) => l.msg === 'quota exceeded (shadow mode, not enforced)');
    assert.deepEqual(
      denials.map((l) => l.requestId),
      ['q-3', 'q-4'],
    );
    assert.equal(denials[0]!.policy, 'q-shadow');
    assert.equal(denials[0]!.consumer, 'acme');
  });
});
