import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Exchange, Policy, Verdict } from '../../../../src/gateway/types.ts';
import { factory, type ValidationReply } from '../../../../src/gateway/validate/index.ts';
import { makeDeps, makeExchange, parseOk } from '../transform/exchange.ts';

function policy(raw: Record<string, unknown>): Policy {
  return factory.create('v', parseOk(factory, raw), makeDeps());
}

function run(p: Policy, ex: Exchange): Verdict {
  return p.onRequest!(ex) as Verdict;
}

function violations(verdict: Verdict): ValidationReply {
  assert.equal(verdict.kind, 'reply');
  if (verdict.kind !== 'reply') throw new Error('unreachable');
  assert.equal(verdict.reply.status, 400);
  assert.equal(verdict.reply.code, 'GW_VALIDATION_FAILED');
  return verdict.reply as ValidationReply;
}

const order = {
  type: 'object',
  required: ['sku', 'quantity', 'customer'],
  additionalProperties: false,
  properties: {
    sku: { type: 'string', pattern: '^[A-Z]{3}-\\d+$' },
    quantity: { type: 'integer', minimum: 1 },
    customer: {
      type: 'object',
      required: ['email'],
      properties: { email: { type: 'string', format: 'email' }, since: { type: 'string', format: 'date' } },
    },
    items: { type: 'array', items: { type: 'object', properties: { price: { type: 'number' } } } },
    'a/b': { type: 'string' },
  },
};

describe('validate: body', () => {
  const p = policy({ body: order });

  test('a valid body continues', () => {
    const ex = makeExchange({
      method: 'POST',
      body: JSON.stringify({ sku: 'ABC-1', quantity: 2, customer: { email: 'a@b.io' } }),
    });
    assert.equal(run(p, ex).kind, 'continue');
  });

  test('every violation is listed with a JSON pointer to the offending value', () => {
    const body = {
      sku: 'abc',
      quantity: 0,
      customer: { since: '2023-02-30' },
      items: [{ price: 1 }, { price: 'free' }],
      'a/b': 1,
      extra: true,
    };
    const reply = violations(run(p, makeExchange({ method: 'POST', body: JSON.stringify(body) })));
    assert.equal(reply.details, 'validation_failed:body');
    assert.deepEqual(
      [...reply.errors].sort((a, b) => a.pointer.localeCompare(b.pointer)),
      [
        { pointer: '/body/a~1b', message: 'must be string' },
        { pointer: '/body/customer/email', message: 'is required' },
        { pointer: '/body/customer/since', message: 'must match format "date"' },
        { pointer: '/body/extra', message: 'is not allowed' },
        { pointer: '/body/items/1/price', message: 'must be number' },
        { pointer: '/body/quantity', message: 'must be >= 1' },
        { pointer: '/body/sku', message: 'must match pattern "^[A-Z]{3}-\\d+$"' },
      ],
    );
  });

  test('invalid JSON and a missing body are violations at /body', () => {
    assert.deepEqual(violations(run(p, makeExchange({ method: 'POST', body: '{nope' }))).errors, [
      { pointer: '/body', message: 'is not valid JSON' },
    ]);
    assert.deepEqual(violations(run(p, makeExchange({ method: 'PUT' }))).errors, [
      { pointer: '/body', message: 'a JSON body is required' },
    ]);
  });

  test('methods outside bodyMethods are not checked; the body is buffered with the limit', () => {
    assert.equal(run(p, makeExchange({ method: 'GET' })).kind, 'continue');
    assert.deepEqual(p.requestBody, { maxBytes: 1024 * 1024 });
    assert.equal(policy({ query: { type: 'object' } }).requestBody, undefined);
  });

  test('maxErrors bounds the list', () => {
    const small = policy({ body: { type: 'array', items: { type: 'integer' } }, maxErrors: 2 });
    const reply = violations(run(small, makeExchange({ method: 'POST', body: '["a","b","c","d"]' })));
    assert.deepEqual(reply.errors, [
      { pointer: '/body/0', message: 'must be integer' },
      { pointer: '/body/1', message: 'must be integer' },
    ]);
  });
});

describe('validate: query and headers', () => {
  const p = policy({
    query: {
      type: 'object',
      required: ['limit'],
      properties: {
        limit: { type: 'integer', maximum: 100 },
        tags: { type: 'array', items: { type: 'string', enum: ['a', 'b'] } },
        from: { type: 'string', format: 'date-time' },
      },
    },
    headers: {
      type: 'object',
      required: ['X-Tenant'],
      properties: { 'X-Tenant': { type: 'string', format: 'uuid' }, 'x-retries': { type: 'integer' } },
    },
  });
  const tenant = '0b8a7a5e-3f4b-4c1e-9d2a-6f1e2d3c4b5a';

  test('query strings are coerced: integers, single values to lists', () => {
    const ex = makeExchange({
      query: 'limit=10&tags=a&from=2024-01-01T10:00:00Z',
      headers: { 'x-tenant': tenant, 'x-retries': '3' },
    });
    assert.equal(run(p, ex).kind, 'continue');
    assert.equal(ex.request.headers['x-retries'], '3', 'coercion never changes the forwarded headers');
  });

  test('violations of query and headers are listed together', () => {
    const ex = makeExchange({ query: 'limit=abc&tags=a&tags=z', headers: { 'x-retries': 'many' } });
    const reply = violations(run(p, ex));
    assert.equal(reply.details, 'validation_failed:headers,query');
    assert.deepEqual(reply.errors, [
      { pointer: '/headers/x-tenant', message: 'is required' },
      { pointer: '/headers/x-retries', message: 'must be integer' },
      { pointer: '/query/limit', message: 'must be integer' },
      { pointer: '/query/tags/1', message: 'must be equal to one of the allowed values' },
    ]);
  });

  test('a missing required query parameter and a bad format', () => {
    const reply = violations(run(p, makeExchange({ query: 'from=yesterday', headers: { 'x-tenant': 'nope' } })));
    assert.deepEqual(reply.errors, [
      { pointer: '/headers/x-tenant', message: 'must match format "uuid"' },
      { pointer: '/query/limit', message: 'is required' },
      { pointer: '/query/from', message: 'must match format "date-time"' },
    ]);
  });
});

describe('validate options', () => {
  function issuePaths(raw: unknown): string[] {
    const result = factory.parse(raw);
    assert.equal(result.ok, false);
    return result.ok ? [] : result.issues.map((i) => i.path);
  }

  test('invalid schemas, unknown keywords and unknown formats are config errors at their path', () => {
    assert.deepEqual(issuePaths({ body: { type: 'objekt' } }), ['body']);
    assert.deepEqual(issuePaths({ query: { type: 'object', minProps: 1 } }), ['query']);
    assert.deepEqual(issuePaths({ headers: { type: 'string', format: 'credit-card' } }), ['headers']);
    assert.deepEqual(issuePaths({ body: {}, extra: 1 }), ['']);
    assert.deepEqual(issuePaths({}), ['']);
  });

  test('draft-07 schemas are accepted with draft: "07"', () => {
    const p = policy({
      draft: '07',
      body: { type: 'object', required: ['a'], definitions: { x: { type: 'string' } } },
    });
    assert.equal(run(p, makeExchange({ method: 'POST', body: '{"a":1}' })).kind, 'continue');
  });
});
