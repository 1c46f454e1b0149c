import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileTemplate, TemplateError } from '../../../src/gateway/templates.ts';
import { exchangeForTest } from './helpers.ts';

test('templates render consumer, jwt, query, header and other fields', () => {
  const ex = exchangeForTest({
    method: 'POST',
    path: '/orders/7',
    query: 'page=2&q=a+b%21',
    headers: { 'x-tenant': 'acme', accept: 'application/json' },
    params: { id: '7' },
  });
  ex.consumer = { name: 'acme', groups: ['gold', 'beta'], metadata: { plan: 'pro' } };
  ex.claims = { sub: 'u-1', roles: ['a', 'b'], org: { id: 9 }, exp: 5 };
  const t = compileTemplate(
    '{{consumer.name}}|{{ consumer.groups }}|{{consumer.metadata.plan}}|{{jwt.sub}}|{{jwt.roles}}|{{jwt.org.id}}|' +
      '{{claims.org}}|{{request.query.page}}|{{request.query.q}}|{{request.header.X-Tenant}}|{{request.method}}|' +
      '{{request.path}}|{{params.id}}|{{route.name}}|{{client.address}}|{{request.id}}',
  );
  assert.equal(t(ex), 'acme|gold,beta|pro|u-1|a,b|9|{"id":9}|2|a b!|acme|POST|/orders/7|7|test-route|127.0.0.1|req-1');
});

test('missing values render empty; constants and single fields compile to cheap functions', () => {
  const ex = exchangeForTest();
  assert.equal(compileTemplate('{{consumer.name}}')(ex), '');
  assert.equal(compileTemplate('x-{{jwt.sub}}-{{request.query.none}}-y')(ex), 'x---y');
  assert.equal(compileTemplate('plain text')(ex), 'plain text');
});

test('the query is re-read after a policy rewrites it', () => {
  const ex = exchangeForTest({ query: 'a=1' });
  const t = compileTemplate('{{request.query.a}}');
  assert.equal(t(ex), '1');
  ex.request.query = 'a=2';
  assert.equal(t(ex), '2');
});

test('unknown fields and unclosed braces fail at compile time', () => {
  assert.throws(() => compileTemplate('{{consumer.password}}'), TemplateError);
  assert.throws(() => compileTemplate('{{nope}}'), TemplateError);
  assert.throws(() => compileTemplate('{{request.query}}'), TemplateError);
  assert.throws(() => compileTemplate('hello {{jwt.sub'), TemplateError);
});
