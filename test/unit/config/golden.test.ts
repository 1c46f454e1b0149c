/**
 * @module Golden-file tests of the loader: each test/fixtures/configs/<name>.yaml loads to <name>.golden.json
 * (normalised config) or fails with exactly the lines of <name>.errors.txt.
 * Regenerate with `UPDATE_GOLDEN=1 node --test test/unit/config/golden.test.ts`, then review the diff.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfigFile } from '../../../src/config/loader.ts';
import { ConfigError, formatConfigIssue } from '../../../src/errors.ts';

const DIR = join(import.meta.dirname, '../../fixtures/configs');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

/** The environment every fixture sees: fixed, never the real process.env. */
export const FIXTURE_ENV: Record<string, string> = {
  PORTICO_ADDR: '127.0.0.1:8081',
  ORIGIN_PORT: '9100',
  PORTICO_ENV: 'test',
  EMPTY: '',
  ACME_KEY: 'key-from-env',
  SECRETS_DIR: 'files',
};

async function render(file: string): Promise<{ kind: 'golden' | 'errors'; text: string }> {
  try {
    const config = await loadConfigFile(join(DIR, file), { env: FIXTURE_ENV });
    return { kind: 'golden', text: `${JSON.stringify(config, null, 2)}\n` };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    // Issues name the file by the path it was loaded from; keep the golden text independent of the checkout.
    const lines = err.issues.map((i) => formatConfigIssue({ ...i, file: i.file.slice(DIR.length + 1) }));
    return { kind: 'errors', text: `${lines.join('\n')}\n` };
  }
}

for (const file of readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort()) {
  const base = join(DIR, file.slice(0, -'.yaml'.length));
  test(`fixture ${file}`, async () => {
    const { kind, text } = await render(file);
    const expectedFile = kind === 'golden' ? `${base}.golden.json` : `${base}.errors.txt`;
    const otherFile = kind === 'golden' ? `${base}.errors.txt` : `${base}.golden.json`;
    if (UPDATE) {
      writeFileSync(expectedFile, text);
      rmSync(otherFile, { force: true });
      return;
    }
    assert.ok(!existsSync(otherFile), `${file} was expected to ${kind === 'golden' ? 'fail' : 'load'}:\n${text}`);
    assert.ok(existsSync(expectedFile), `no ${expectedFile}; run with UPDATE_GOLDEN=1`);
    assert.equal(text, readFileSync(expectedFile, 'utf8'));
  });
}
