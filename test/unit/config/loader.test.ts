/** @module Loader behaviour beyond the golden files: options, positions, freezing, file handling. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfigFile, loadConfigText } from '../../../src/config/loader.ts';
import { ConfigError } from '../../../src/errors.ts';

const MINIMAL = `listeners:
  - { name: web, protocol: http, address: 127.0.0.1:8080 }
upstreams:
  - name: origin
    targets: [ { url: http://127.0.0.1:9000 } ]
routes:
  - name: all
    upstream: origin
`;

function issuesOf(fn: () => unknown): ConfigError['issues'] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues;
  }
  assert.fail('expected a ConfigError');
}

test('a valid config is normalised and deeply frozen', () => {
  const config = loadConfigText(MINIMAL, 'portico.yaml', { env: {} });
  assert.equal(config.listeners[0]!.limits.maxHeaderSize, 16 * 1024);
  assert.equal(config.routes[0]!.match.path, '/*');
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.listeners[0]!.limits));
  assert.ok(Object.isFrozen(config.upstreams[0]!.targets));
  assert.throws(() => {
    (config.routes as unknown as unknown[]).push({});
  }, TypeError);
});

test('issues carry file, 1-based line and column, and YAML path', () => {
  const text = MINIMAL.replace('upstream: origin', 'upstream: orign');
  const [issue, ...rest] = issuesOf(() => loadConfigText(text, 'conf/p.yaml', { env: {} }));
  assert.equal(rest.length, 0);
  assert.deepEqual(issue, {
    file: 'conf/p.yaml',
    line: 8,
    column: 15,
    path: 'routes[0].upstream',
    message: 'unknown upstream "orign" (did you mean "origin"?)',
  });
});

test('a missing key points at the nearest existing parent', () => {
  const text = MINIMAL.replace('    upstream: origin\n', '');
  const issues = issuesOf(() => loadConfigText(text, 'p.yaml', { env: {} }));
  assert.deepEqual(
    issues.map((i) => [i.line, i.column, i.path, i.message]),
    [[7, 5, 'routes[0].upstream', 'a route needs exactly one of upstream, respond or redirect']],
  );
});

test('validators run on the parsed config; their paths map to positions', () => {
  const seen: string[] = [];
  const issues = issuesOf(() =>
    loadConfigText(MINIMAL, 'p.yaml', {
      env: {},
      validators: [
        (config) => {
          seen.push(config.routes[0]!.name);
          return [
            { path: ['upstreams', 0, 'targets', 0, 'url'], message: 'no' },
            { path: ['routes', 0, 'nothere'], message: 'parent position' },
          ];
        },
        () => {
          throw new Error('boom');
        },
      ],
    }),
  );
  assert.deepEqual(seen, ['all']);
  assert.deepEqual(
    issues.map((i) => `${i.line}:${i.column} ${i.path}: ${i.message}`),
    [
      '1:1 : internal error in a config check: boom',
      '5:23 upstreams[0].targets[0].url: no',
      '7:5 routes[0].nothere: parent position',
    ],
  );
});

test('validators are skipped while the schema rejects the file', () => {
  let called = false;
  issuesOf(() =>
    loadConfigText(`${MINIMAL}bogus: 1\n`, 'p.yaml', {
      env: {},
      validators: [
        () => {
          called = true;
          return [];
        },
      ],
    }),
  );
  assert.equal(called, false);
});

test('env defaults to process.env', () => {
  process.env.PORTICO_LOADER_TEST_ADDR = '127.0.0.1:9999';
  try {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a config reference, not a template
    const text = MINIMAL.replace('127.0.0.1:8080', '"${PORTICO_LOADER_TEST_ADDR}"');
    assert.equal(loadConfigText(text, 'p.yaml').listeners[0]!.address, '127.0.0.1:9999');
  } finally {
    delete process.env.PORTICO_LOADER_TEST_ADDR;
  }
});

test('an unset variable is one issue at its value, not also a schema issue', () => {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a config reference, not a template
  const text = MINIMAL.replace('127.0.0.1:8080', '"${NOPE}"');
  const issues = issuesOf(() => loadConfigText(text, 'p.yaml', { env: {} }));
  assert.deepEqual(
    issues.map((i) => `${i.line}:${i.column} ${i.path}`),
    ['2:43 listeners[0].address'],
  );
});

test('YAML anchors, aliases and merge keys work', () => {
  const text = `listeners:
  - &base { name: a, protocol: http, address: 127.0.0.1:1 }
  - { <<: *base, name: b, address: 127.0.0.1:2 }
upstreams:
  - { name: u, targets: [ { url: http://127.0.0.1:3 } ] }
`;
  const config = loadConfigText(text, 'p.yaml', { env: {} });
  assert.equal(config.listeners[1]!.protocol, 'http');
});

test('loadConfigFile reads relative file: references from the config directory', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'portico-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'key.txt'), 'abc\n');
  writeFileSync(join(dir, 'p.yaml'), `${MINIMAL}consumers:\n  - { name: c, apiKeys: [ "file:key.txt" ] }\n`);
  const config = await loadConfigFile(join(dir, 'p.yaml'), { env: {} });
  assert.deepEqual(config.consumers[0]!.apiKeys, ['abc']);
});

test('a missing config file is a one-issue ConfigError', async () => {
  await assert.rejects(loadConfigFile('/nonexistent/portico.yaml'), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.equal(err.message, '/nonexistent/portico.yaml cannot read config file: no such file');
    return true;
  });
});

test('redirect.to must be an absolute URL with a scheme or a path; a bare host gets a hint', () => {
  const withTo = (to: string) =>
    MINIMAL.replace('    upstream: origin\n', `    redirect: { to: "${to}", status: 301 }\n`);
  for (const ok of ['https://new.example.com{path}{query}', '/elsewhere', '{path}/', 'mailto:a@example.com']) {
    const config = loadConfigText(withTo(ok), 'p.yaml', { env: {} });
    assert.equal(config.routes[0]!.redirect?.to, ok);
  }
  const [issue, ...rest] = issuesOf(() => loadConfigText(withTo('example.com/x'), 'conf/p.yaml', { env: {} }));
  assert.equal(rest.length, 0);
  assert.deepEqual(issue, {
    file: 'conf/p.yaml',
    line: 8,
    column: 21,
    path: 'routes[0].redirect.to',
    message:
      'must be an absolute URL with a scheme or a path starting with "/" (did you mean "https://example.com/x"?)',
  });
  for (const bad of ['example.com:8080/x', '//example.com/x', 'https:/x', 'x{path}']) {
    const issues = issuesOf(() => loadConfigText(withTo(bad), 'p.yaml', { env: {} }));
    assert.deepEqual(
      issues.map((i) => i.path),
      ['routes[0].redirect.to'],
      bad,
    );
    assert.match(issues[0]!.message, /did you mean|no host/, bad);
  }
});
