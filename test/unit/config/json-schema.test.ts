/** @module The exported JSON Schema describes what users write (inputs), and its key parts are present. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { configJsonSchema } from '../../../src/config/json-schema.ts';
import { parseDuration, parseSize } from '../../../src/config/units.ts';

// biome-ignore lint/suspicious/noExplicitAny: reads deep into a JSON document
type Schema = Record<string, any>;

test('schema is plain JSON with every top-level section', () => {
  const schema = JSON.parse(JSON.stringify(configJsonSchema())) as Schema;
  assert.equal(schema.type, 'object');
  for (const key of ['listeners', 'upstreams', 'routes', 'consumers', 'policies', 'state', 'admin', 'proxy']) {
    assert.ok(key in schema.properties, key);
  }
  assert.equal(schema.additionalProperties, false);
  assert.deepEqual(schema.required, ['listeners']);
});

test('durations and sizes accept a string or an integer', () => {
  const schema = configJsonSchema() as Schema;
  const limits = schema.properties.listeners.items.properties.limits.properties;
  for (const field of ['maxHeaderSize', 'idleTimeout']) {
    const types = (limits[field].anyOf as Schema[]).map((s) => s.type).sort();
    assert.deepEqual(types, ['integer', 'string'], field);
  }
});

test('ajv accepts a valid file and rejects an unknown key', () => {
  const ajv = new Ajv2020({ strict: false, validateFormats: false });
  const validate = ajv.compile(configJsonSchema());
  const ok = {
    listeners: [{ name: 'web', protocol: 'http', address: '127.0.0.1:8080' }],
    upstreams: [{ name: 'origin', targets: [{ url: 'http://127.0.0.1:9000' }], timeouts: { connect: '2s' } }],
    routes: [{ name: 'all', match: { path: '/*' }, upstream: 'origin' }],
  };
  assert.ok(validate(ok), JSON.stringify(validate.errors));
  assert.equal(validate({ ...ok, routes: [{ name: 'all', upstream: 'origin', matc: {} }] }), false);
});

test('the editor patterns for durations and sizes agree with the parsers', () => {
  const schema = configJsonSchema() as Schema;
  const limits = schema.properties.listeners.items.properties.limits.properties;
  const durationRe = new RegExp(limits.idleTimeout.anyOf[1].pattern);
  const sizeRe = new RegExp(limits.maxHeaderSize.anyOf[1].pattern);
  for (const text of ['5s', '1.5m', '250ms', '2h', '1d', ' 5s ', '5S', '5 s', 'x', '1.5.s', '']) {
    assert.equal(durationRe.test(text), parseDuration(text) !== undefined, `duration ${JSON.stringify(text)}`);
  }
  for (const text of ['512', '64KiB', '10MiB', '1GB', '16 KB', '1kb', '1tb', 'x', '1.5MiB', '5 b', '']) {
    assert.equal(sizeRe.test(text), parseSize(text) !== undefined, `size ${JSON.stringify(text)}`);
  }
});
