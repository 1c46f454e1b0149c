import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { factory } from '../../../../src/gateway/cors/index.ts';
import type { Exchange, Policy, Verdict } from '../../../../src/gateway/types.ts';
import { makeDeps, makeExchange, parseOk, respond } from '../transform/exchange.ts';

function policy(raw: Record<string, unknown>): Policy {
  return factory.create('cors', parseOk(factory, raw), makeDeps());
}

function preflight(origin: string, method = 'PUT', requestHeaders?: string): Exchange {
  const headers: Record<string, string> = { origin, 'access-control-request-method': method };
  if (requestHeaders !== undefined) headers['access-control-request-headers'] = requestHeaders;
  return makeExchange({ method: 'OPTIONS', path: '/items', headers });
}

function run(p: Policy, ex: Exchange): Verdict {
  const verdict = p.onRequest!(ex);
  assert.ok(!(verdict instanceof Promise));
  return verdict as Verdict;
}

function respondHeaders(verdict: Verdict): Readonly<Record<string, string>> {
  assert.equal(verdict.kind, 'respond');
  if (verdict.kind !== 'respond') throw new Error('unreachable');
  assert.equal(verdict.status, 204);
  return verdict.headers;
}

function rejectedWith(verdict: Verdict, details: string): void {
  assert.equal(verdict.kind, 'reply');
  if (verdict.kind !== 'reply') throw new Error('unreachable');
  assert.equal(verdict.reply.status, 403);
  assert.equal(verdict.reply.code, 'GW_CORS_REJECTED');
  assert.equal(verdict.reply.details, details);
}

describe('cors preflight', () => {
  const app = policy({
    origins: ['https://app.example.com'],
    methods: ['GET', 'PUT'],
    allowedHeaders: ['Content-Type', 'X-Trace'],
    maxAge: '10m',
  });

  test('an allowed preflight is answered with 204 and every CORS header', () => {
    const headers = respondHeaders(run(app, preflight('https://app.example.com', 'PUT', 'content-type, x-trace')));
    assert.deepEqual(headers, {
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-allow-methods': 'GET, PUT',
      'access-control-allow-headers': 'content-type, x-trace',
      'access-control-max-age': '600',
      vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
    });
  });

  test('a disallowed origin gets 403', () => {
    rejectedWith(run(app, preflight('https://evil.example.net')), 'cors_origin_not_allowed');
  });

  test('a disallowed method gets 403, even a safelisted one', () => {
    rejectedWith(run(app, preflight('https://app.example.com', 'DELETE')), 'cors_method_not_allowed');
    rejectedWith(run(app, preflight('https://app.example.com', 'POST')), 'cors_method_not_allowed');
  });

  test('a header that is not allowed gets 403; header names compare case-insensitively', () => {
    rejectedWith(run(app, preflight('https://app.example.com', 'PUT', 'x-secret')), 'cors_header_not_allowed');
    assert.equal(run(app, preflight('https://app.example.com', 'PUT', 'X-Trace')).kind, 'respond');
  });

  test('OPTIONS without Access-Control-Request-Method is not a preflight and goes upstream', () => {
    const ex = makeExchange({ method: 'OPTIONS', headers: { origin: 'https://app.example.com' } });
    assert.equal(run(app, ex).kind, 'continue');
  });

  test('a preflight without Origin is not a CORS request', () => {
    const ex = makeExchange({ method: 'OPTIONS', headers: { 'access-control-request-method': 'PUT' } });
    assert.equal(run(app, ex).kind, 'continue');
  });
});

describe('cors credentials and wildcards', () => {
  test('credentials: the origin is echoed with Allow-Credentials, never *', () => {
    const p = policy({ origins: ['*'], credentials: true, methods: ['*'] });
    const headers = respondHeaders(run(p, preflight('https://any.example.org', 'PATCH', 'authorization')));
    assert.equal(headers['access-control-allow-origin'], 'https://any.example.org');
    assert.equal(headers['access-control-allow-credentials'], 'true');
    assert.equal(headers['access-control-allow-methods'], 'PATCH');
    assert.equal(headers['access-control-allow-headers'], 'authorization');
  });

  test('any origin without credentials: Allow-Origin is *', () => {
    const p = policy({ origins: ['*'] });
    const headers = respondHeaders(run(p, preflight('https://any.example.org', 'DELETE')));
    assert.equal(headers['access-control-allow-origin'], '*');
    assert.equal(headers['access-control-allow-credentials'], undefined);
    assert.equal(headers['access-control-allow-methods'], 'GET, HEAD, PUT, PATCH, POST, DELETE');
    assert.equal(headers['access-control-allow-headers'], undefined, 'nothing asked, nothing reflected');
  });

  test('without allowedHeaders the requested headers are reflected', () => {
    const p = policy({ origins: ['https://app.example.com'] });
    const headers = respondHeaders(run(p, preflight('https://app.example.com', 'PUT', 'X-A, X-B')));
    assert.equal(headers['access-control-allow-headers'], 'X-A, X-B');
  });

  test('subdomain patterns match one or more labels, not the apex or look-alikes', () => {
    const p = policy({ origins: ['https://*.example.com', 'http://localhost:*'] });
    for (const ok of [
      'https://a.example.com',
      'https://a.b.example.com',
      'http://localhost:5173',
      'http://localhost',
    ]) {
      assert.equal(run(p, preflight(ok)).kind, 'respond', ok);
    }
    for (const bad of [
      'https://example.com',
      'http://a.example.com',
      'https://a.example.com.evil.net',
      'https://aexample.com',
      'https://a.example.com:8443',
      'http://localhost.evil.net',
    ]) {
      rejectedWith(run(p, preflight(bad)), 'cors_origin_not_allowed');
    }
  });

  test('credentials with any origin logs a warning at create', () => {
    const deps = makeDeps();
    factory.create('c', parseOk(factory, { origins: ['*'], credentials: true }), deps);
    assert.equal(deps.warnings.length, 1);
  });
});

describe('cors on actual requests', () => {
  const p = policy({
    origins: ['https://app.example.com'],
    credentials: true,
    exposedHeaders: ['X-Request-Id', 'RateLimit'],
  });

  test('an allowed origin gets Allow-Origin, Credentials, Expose-Headers and Vary on the response', () => {
    const ex = makeExchange({ method: 'POST', headers: { origin: 'https://app.example.com' } });
    assert.equal(run(p, ex).kind, 'continue');
    // Also in replyHeaders, so a local reply of a later policy (a 401) is readable by the page.
    assert.equal(ex.replyHeaders['access-control-allow-origin'], 'https://app.example.com');
    respond(ex, 200, { vary: 'Accept-Encoding', 'access-control-allow-origin': '*' });
    p.onResponse!(ex);
    assert.deepEqual(ex.response!.headers, {
      vary: 'Accept-Encoding, Origin',
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-allow-credentials': 'true',
      'access-control-expose-headers': 'X-Request-Id, RateLimit',
    });
  });

  test('a disallowed origin is forwarded but gets no CORS headers (upstream ones removed)', () => {
    const ex = makeExchange({ headers: { origin: 'https://evil.example.net' } });
    assert.equal(run(p, ex).kind, 'continue');
    assert.deepEqual(ex.replyHeaders, {});
    respond(ex, 200, { 'access-control-allow-origin': 'https://evil.example.net' });
    p.onResponse!(ex);
    assert.deepEqual(ex.response!.headers, { vary: 'Origin' });
  });

  test('a request without Origin still gets Vary: Origin (the answer depends on it)', () => {
    const ex = respond(makeExchange(), 200, { vary: 'Accept, origin' });
    p.onResponse!(ex);
    assert.deepEqual(ex.response!.headers, { vary: 'Accept, origin' });
    const plain = respond(makeExchange(), 200);
    p.onResponse!(plain);
    assert.equal(plain.response!.headers.vary, 'Origin');
  });

  test('any origin without credentials sends * and no Vary', () => {
    const star = policy({ origins: ['*'] });
    const ex = makeExchange({ headers: { origin: 'https://x.example' } });
    run(star, ex);
    respond(ex, 200);
    star.onResponse!(ex);
    assert.deepEqual(ex.response!.headers, { 'access-control-allow-origin': '*' });
  });
});

describe('cors options', () => {
  test('bad origins and unknown keys are reported with paths', () => {
    const result = factory.parse({ origins: ['https://a.com/', 'ftp//x'], credential: true, maxAge: 600 });
    assert.equal(result.ok, false);
    if (result.ok) return;
    const paths = result.issues.map((i) => i.path).sort();
    assert.deepEqual(paths, ['', 'maxAge', 'origins.0', 'origins.1']);
    assert.match(result.issues.find((i) => i.path === 'origins.0')!.message, /trailing/);
  });

  test('origins are required', () => {
    const result = factory.parse({});
    assert.equal(result.ok, false);
  });
});
