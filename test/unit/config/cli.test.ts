/** @module `portico validate` and `portico schema` entry points, run in a child process to see real output. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../../..');
const FIXTURES = join(ROOT, 'test/fixtures/configs');

/** Runs `code` (an async function body with `validate` and `schema` modules imported) in a fresh Node. */
async function node(code: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = `
    const validate = await import(${JSON.stringify(join(ROOT, 'src/cli/validate.ts'))});
    const schema = await import(${JSON.stringify(join(ROOT, 'src/cli/schema.ts'))});
    process.exitCode = await (async () => { ${code} })();`;
  try {
    const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: FIXTURES,
      env: { PATH: process.env.PATH ?? '' },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('validate: OK line on stdout, exit 0', async () => {
  const r = await node(`return validate.runValidate('minimal.yaml');`);
  assert.deepEqual(r, { code: 0, stdout: 'minimal.yaml: OK (1 listeners, 1 upstreams, 1 routes)\n', stderr: '' });
});

test('validate: every issue on stderr, exit 1', async () => {
  const r = await node(`return validate.runValidate('err-cross-references.yaml');`);
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  const lines = r.stderr.trimEnd().split('\n');
  // The same issues, in the same order, as the golden file of that fixture.
  const golden = readFileSync(
    new URL('../../fixtures/configs/err-cross-references.errors.txt', import.meta.url),
    'utf8',
  );
  assert.deepEqual(lines, golden.trimEnd().split('\n'));
  assert.ok(
    lines.every((l) => /^err-cross-references\.yaml:\d+:\d+ \S+: /.test(l)),
    r.stderr,
  );
});

test('validate: missing file is one clear line, exit 1', async () => {
  const r = await node(`return validate.runValidate('nope.yaml');`);
  assert.deepEqual(r, { code: 1, stdout: '', stderr: 'nope.yaml cannot read config file: no such file\n' });
});

test('schema: pretty JSON Schema on stdout, exit 0', async () => {
  const r = await node(`return schema.runSchema();`);
  assert.equal(r.code, 0);
  const parsed = JSON.parse(r.stdout) as { properties: Record<string, unknown> };
  assert.ok('listeners' in parsed.properties);
  assert.ok(r.stdout.includes('\n  "'), 'pretty printed');
});
