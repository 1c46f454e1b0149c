/** The error catalogue and docs/errors.md describe the same codes, with the same statuses. */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { ERROR_CODES } from '../../src/errors.ts';

const doc = await readFile(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const documented = new Map<string, number>();
for (const m of doc.matchAll(/^\| `(GW_[A-Z_]+)` \| (\d{3}) \|/gm)) documented.set(m[1]!, Number(m[2]));

test('every code in src/errors.ts is documented with its status', () => {
  for (const [code, { status }] of Object.entries(ERROR_CODES)) {
    assert.equal(documented.get(code), status, `${code} (${status}) in docs/errors.md`);
  }
});

test('docs/errors.md lists no code the catalogue lacks', () => {
  for (const code of documented.keys())
    assert.ok(code in ERROR_CODES, `${code} is documented but not in src/errors.ts`);
});

test('codes are GW_ upper snake case and titles carry no placeholders', () => {
  for (const [code, { title }] of Object.entries(ERROR_CODES)) {
    assert.match(code, /^GW_[A-Z]+(_[A-Z]+)*$/);
    assert.doesNotMatch(title, /[{}$%]/);
  }
});
