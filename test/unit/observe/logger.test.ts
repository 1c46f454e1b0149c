/**
 * The process logger (src/observe/logger.ts) batches lines as UTF-8 bytes before they reach stdout. A child
 * process logs through it; every line must come out whole, in order, with multi-byte text intact, including
 * lines longer than a batch and lines written while earlier batches are still being written.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';

const LOGGER = new URL('../../../src/observe/logger.ts', import.meta.url).href;

async function runChild(script: string): Promise<string> {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => chunks.push(c));
  const [code] = (await once(child, 'exit')) as [number];
  assert.equal(code, 0);
  return Buffer.concat(chunks).toString('utf8');
}

describe('logger', () => {
  it('writes every line whole and in order: access lines, pino lines, multi-byte text, lines over a batch', async () => {
    const out = await runChild(`
      import { createLogger, lineWriter, flushLogger } from ${JSON.stringify(LOGGER)};
      const log = createLogger('info');
      const line = lineWriter(log);
      for (let i = 0; i < 3000; i++) {
        if (i % 500 === 7) log.info({ i }, 'pino line');
        else if (i % 700 === 3) line(JSON.stringify({ i, big: 'é'.repeat(20000) }) + '\\n');
        else line(JSON.stringify({ i, path: '/caf\u00e9/\u{1F600}/' + i }) + '\\n');
      }
      flushLogger(log);
      setTimeout(() => process.exit(0), 300);
    `);
    const lines = out.split('\n');
    assert.equal(lines.pop(), '', 'ends with a newline');
    assert.equal(lines.length, 3000);
    for (const [i, text] of lines.entries()) {
      const entry = JSON.parse(text) as { i: number; path?: string; big?: string; msg?: string };
      assert.equal(entry.i, i, `line ${i} in order`);
      if (i % 500 === 7) assert.equal(entry.msg, 'pino line');
      else if (i % 700 === 3) assert.equal(entry.big, 'é'.repeat(20000));
      else assert.equal(entry.path, `/caf\u00e9/\u{1F600}/${i}`);
    }
  });

  it('a lone line reaches stdout within about a second, without a flush', async () => {
    const out = await runChild(`
      import { createLogger, lineWriter } from ${JSON.stringify(LOGGER)};
      const log = createLogger('info');
      lineWriter(log)('{"quiet":true}\\n');
      setTimeout(() => process.exit(0), 1600);
    `);
    assert.equal(out, '{"quiet":true}\n');
  });
});
