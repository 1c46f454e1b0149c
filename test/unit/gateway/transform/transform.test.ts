import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { factory } from '../../../../src/gateway/transform/index.ts';
import type { Exchange, Policy, Verdict } from '../../../../src/gateway/types.ts';
import { type ExchangeInit, makeDeps, makeExchange, parseOk, respond } from './exchange.ts';

function policy(raw: Record<string, unknown>): Policy {
  return factory.create('t', parseOk(factory, raw), makeDeps());
}

function run(p: Policy, ex: Exchange): Verdict {
  return p.onRequest!(ex) as Verdict;
}

/** Runs request body rules on `body` and returns the rewritten JSON. */
function requestBody(rules: Record<string, unknown>, body: unknown, init: ExchangeInit = {}): unknown {
  const p = policy({ request: { body: rules } });
  const ex = makeExchange({ method: 'POST', ...init, body: JSON.stringify(body) });
  assert.equal(run(p, ex).kind, 'continue');
  return JSON.parse(ex.body!.toString());
}

const acme = { name: 'acme', groups: ['gold', 'beta'], metadata: { tier: 'pro' } };

describe('transform: JSON request body', () => {
  test('keep only listed fields, through nested objects and arrays', () => {
    const out = requestBody(
      { keep: ['id', 'user.name', 'items.sku'] },
      { id: 1, secret: 's', user: { name: 'a', password: 'p' }, items: [{ sku: 'x', cost: 1 }, { sku: 'y' }] },
    );
    assert.deepEqual(out, { id: 1, user: { name: 'a' }, items: [{ sku: 'x' }, { sku: 'y' }] });
  });

  test('keep applies to each element of a top-level array', () => {
    assert.deepEqual(requestBody({ keep: ['a'] }, [{ a: 1, b: 2 }, { b: 3 }]), [{ a: 1 }, {}]);
  });

  test('drop listed fields, through arrays; missing paths are ignored', () => {
    const out = requestBody(
      { drop: ['role', 'user.isAdmin', 'items.internal', 'no.such.path'] },
      { role: 'admin', user: { name: 'a', isAdmin: true }, items: [{ sku: 'x', internal: 1 }] },
    );
    assert.deepEqual(out, { user: { name: 'a' }, items: [{ sku: 'x' }] });
  });

  test('rename fields, creating the target objects', () => {
    const out = requestBody({ rename: { firstName: 'name.first', 'a.b': 'c' } }, { firstName: 'Ann', a: { b: 1 } });
    assert.deepEqual(out, { name: { first: 'Ann' }, a: {}, c: 1 });
  });

  test('set values from templates and literals; a lone placeholder keeps the value type', () => {
    const out = requestBody(
      {
        set: {
          'meta.consumer': '{{consumer.name}}',
          'meta.tier': '{{consumer.metadata.tier}}',
          'meta.sub': '{{jwt.sub}}',
          'meta.alias': '{{claims.sub}}@{{client.address}}',
          'meta.roles': '{{jwt.roles}}',
          'meta.level': '{{jwt.org.level}}',
          'meta.q': '{{request.query.x}}',
          'meta.label': 'by {{consumer.name}} for {{params.id}}',
          'meta.missing': '{{request.header.x-none}}',
          'meta.version': 2,
          'meta.flags': { beta: true },
        },
      },
      { meta: { keep: 1 } },
      {
        consumer: acme,
        claims: { sub: 'user-7', roles: ['r1', 'r2'], org: { level: 3 } },
        query: 'y=1&x=hello%20world',
        params: { id: '42' },
      },
    );
    assert.deepEqual(out, {
      meta: {
        keep: 1,
        consumer: 'acme',
        tier: 'pro',
        sub: 'user-7',
        alias: 'user-7@127.0.0.1',
        roles: ['r1', 'r2'],
        level: 3,
        q: 'hello world',
        label: 'by acme for 42',
        missing: '',
        version: 2,
        flags: { beta: true },
      },
    });
  });

  test('wrap and unwrap', () => {
    assert.deepEqual(requestBody({ wrap: 'data' }, [1, 2]), { data: [1, 2] });
    assert.deepEqual(requestBody({ wrap: 'a.b' }, { x: 1 }), { a: { b: { x: 1 } } });
    assert.deepEqual(requestBody({ unwrap: 'payload.user' }, { payload: { user: { id: 3 } } }), { id: 3 });
  });

  test('operations run in order unwrap → keep → drop → rename → set → wrap', () => {
    const out = requestBody(
      {
        wrap: 'data',
        set: { by: '{{consumer.name}}' },
        rename: { a: 'alpha' },
        drop: ['b.secret'],
        keep: ['a', 'b'],
        unwrap: 'input',
      },
      { input: { a: 1, b: { ok: 1, secret: 2 }, c: 3 } },
      { consumer: acme },
    );
    assert.deepEqual(out, { data: { b: { ok: 1 }, alpha: 1, by: 'acme' } });
  });

  test('content-length is removed after a rewrite; the proxy recomputes it', () => {
    const p = policy({ request: { body: { drop: ['x'] } } });
    const ex = makeExchange({ method: 'POST', body: '{"x":1,"y":2}', headers: { 'content-length': '13' } });
    run(p, ex);
    assert.equal(ex.body!.toString(), '{"y":2}');
    assert.equal(ex.request.headers['content-length'], undefined);
  });

  test('a body that is not JSON is refused with 400 GW_TRANSFORM_FAILED', () => {
    const p = policy({ request: { body: { drop: ['role'] } } });
    const ex = makeExchange({ method: 'POST', body: 'role=admin', headers: { 'content-type': 'text/plain' } });
    const verdict = run(p, ex);
    assert.equal(verdict.kind, 'reply');
    if (verdict.kind !== 'reply') return;
    assert.equal(verdict.reply.status, 400);
    assert.equal(verdict.reply.code, 'GW_TRANSFORM_FAILED');
    assert.equal(verdict.reply.details, 'request_body_not_json');
  });

  test('unwrap of a missing key is refused; an empty body is left alone', () => {
    const p = policy({ request: { body: { unwrap: 'data' } } });
    const missing = run(p, makeExchange({ method: 'POST', body: '{"other":1}' }));
    assert.equal(missing.kind === 'reply' && missing.reply.details, 'request_body_unwrap_missing');
    const empty = makeExchange({ method: 'POST', body: '' });
    assert.equal(run(p, empty).kind, 'continue');
    assert.equal(empty.body!.length, 0);
  });

  test('body buffering is requested only with body rules, with the configured limit', () => {
    assert.equal(policy({ request: { headers: { remove: ['x'] } } }).requestBody, undefined);
    assert.deepEqual(policy({ request: { body: { wrap: 'd' } } }).requestBody, { maxBytes: 1024 * 1024 });
    const p = policy({ maxBodySize: '64KiB', response: { body: { wrap: 'd' } } });
    assert.equal(p.requestBody, undefined);
    assert.deepEqual(p.responseBody, { maxBytes: 65536 });
  });
});

describe('transform: request headers, query and path', () => {
  test('headers: remove, rename, set (template) and add', () => {
    const p = policy({
      request: {
        headers: {
          remove: ['X-Debug'],
          rename: { 'x-old': 'x-new' },
          set: { 'X-Consumer': '{{consumer.name}}', 'x-groups': '{{consumer.groups}}' },
          add: { 'x-forwarded-tag': 'portico', accept: 'text/plain' },
        },
      },
    });
    const ex = makeExchange({
      headers: { 'x-debug': '1', 'x-old': 'v', 'x-consumer': 'spoofed', accept: 'application/json' },
      consumer: acme,
    });
    assert.equal(run(p, ex).kind, 'continue');
    assert.deepEqual(ex.request.headers, {
      'x-new': 'v',
      'x-consumer': 'acme',
      'x-groups': 'gold,beta',
      'x-forwarded-tag': 'portico',
      accept: 'application/json, text/plain',
    });
  });

  test('a header value with CR/LF from client data is refused', () => {
    const p = policy({ request: { headers: { set: { 'x-q': '{{request.query.q}}' } } } });
    const verdict = run(p, makeExchange({ query: 'q=a%0d%0aInjected:%201' }));
    assert.equal(verdict.kind === 'reply' && verdict.reply.details, 'invalid_header_value:x-q');
  });

  test('a constant header value is checked once: a valid one is set, an invalid one always refused', () => {
    const ok = policy({ request: { headers: { set: { 'x-bench': '1' }, add: { 'x-tag': 'a' } } } });
    const ex = makeExchange({ headers: { 'x-tag': 'z' } });
    assert.equal(run(ok, ex).kind, 'continue');
    assert.equal(ex.request.headers['x-bench'], '1');
    assert.equal(ex.request.headers['x-tag'], 'z, a');
    const bad = policy({ request: { headers: { set: { 'x-bad': 'a\u0001b' } } } });
    for (let i = 0; i < 2; i++) {
      const verdict = run(bad, makeExchange());
      assert.equal(verdict.kind === 'reply' && verdict.reply.details, 'invalid_header_value:x-bad');
    }
  });

  test('query: remove, rename and set; untouched parameters keep their encoding', () => {
    const p = policy({
      request: { query: { remove: ['debug'], rename: { q: 'search' }, set: { tenant: '{{consumer.name}} x' } } },
    });
    const ex = makeExchange({ query: 'q=a%20b&debug=1&keep=x+y&tenant=evil', consumer: acme });
    run(p, ex);
    assert.equal(ex.request.query, 'search=a%20b&keep=x+y&tenant=acme%20x');
  });

  test('path from a template; values are percent-encoded', () => {
    const p = policy({ request: { path: '/v2/users/{{params.id}}/{{request.query.tab}}' } });
    const ex = makeExchange({ path: '/users/7', params: { id: '../admin' }, query: 'tab=a/b' });
    run(p, ex);
    assert.equal(ex.request.path, '/v2/users/..%2Fadmin/a%2Fb');
  });

  test('response body rules remove accept-encoding so the upstream answers in plain JSON', () => {
    const p = policy({ response: { body: { drop: ['x'] } } });
    const ex = makeExchange({ headers: { 'accept-encoding': 'gzip' } });
    run(p, ex);
    assert.equal(ex.request.headers['accept-encoding'], undefined);
  });
});

describe('transform: response', () => {
  test('body rules, headers and status mapping', async () => {
    const p = policy({
      response: {
        body: { unwrap: 'data', drop: ['internal'], set: { status: '{{response.status}}' }, wrap: 'result' },
        headers: { remove: ['server'], set: { 'x-upstream-status': '{{response.status}}' } },
        statusMap: { 404: 200 },
      },
    });
    const ex = respond(
      makeExchange(),
      404,
      { 'content-length': '40', server: 'x', 'content-type': 'application/json' },
      '{"data":{"id":1,"internal":true}}',
    );
    await p.onResponse!(ex);
    assert.equal(ex.response!.status, 200);
    assert.deepEqual(JSON.parse(ex.responseBody!.toString()), { result: { id: 1, status: 404 } });
    assert.deepEqual(ex.response!.headers, { 'content-type': 'application/json', 'x-upstream-status': '404' });
  });

  test('non-JSON, compressed or mismatching bodies pass through unchanged', async () => {
    const p = policy({ response: { body: { unwrap: 'data' } } });
    for (const [headers, body] of [
      [{ 'content-length': '5' }, 'hello'],
      [{ 'content-encoding': 'gzip' }, '{"data":1}'],
      [{}, '{"error":"nope"}'],
    ] as const) {
      const ex = respond(makeExchange(), 200, { ...headers }, body);
      await p.onResponse!(ex);
      assert.equal(ex.responseBody!.toString(), body);
      assert.deepEqual(ex.response!.headers, headers);
    }
  });

  test('response headers: add keeps a list; an invalid rendered value is skipped and logged', async () => {
    const deps = makeDeps();
    const p = factory.create(
      't',
      parseOk(factory, {
        response: { headers: { add: { 'set-cookie': 'b=2' }, set: { 'x-h': '{{request.header.x-raw}}' } } },
      }),
      deps,
    );
    const ex = respond(makeExchange({ headers: { 'x-raw': 'a\nb' } }), 200, { 'set-cookie': 'a=1' });
    await p.onResponse!(ex);
    assert.deepEqual(ex.response!.headers, { 'set-cookie': ['a=1', 'b=2'] });
    assert.equal(deps.warnings.length, 1);
  });
});

describe('transform options', () => {
  function issues(raw: unknown): string[] {
    const result = factory.parse(raw);
    assert.equal(result.ok, false);
    return result.ok ? [] : result.issues.map((i) => `${i.path}: ${i.message}`);
  }

  test('unknown keys, bad templates, protected headers and bad paths are reported with paths', () => {
    const found = issues({
      request: {
        headers: { set: { 'content-length': '1', 'x-a': '{{nope.x}}' } },
        body: { drop: ['a..b'], set: { x: '{{jwt}}' } },
        path: 'no-slash',
      },
      response: { statusMap: { abc: 200 } },
      extra: 1,
    });
    const paths = found.map((line) => line.slice(0, line.indexOf(':')));
    for (const expected of [
      'request.headers.set.content-length',
      'request.headers.set.x-a',
      'request.body.drop.0',
      'request.body.set.x',
      'request.path',
      'response.statusMap.abc',
      '',
    ]) {
      assert.ok(paths.includes(expected), `${expected} in ${JSON.stringify(found)}`);
    }
  });

  test('an empty transform is refused', () => {
    assert.deepEqual(issues({}), [': a transform needs a request or a response section']);
  });
});
