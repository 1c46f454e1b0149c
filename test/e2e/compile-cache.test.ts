/**
 * End to end: the launcher fills Node's compile cache in a child process before a server starts on a cache
 * that is not warm for these sources (bin/warm-compile-cache.mjs), so the server never loads the type
 * stripper; a second start finds the marker and goes straight on.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startEchoUpstream } from '../helpers/http.ts';
import { startPortico } from '../helpers/portico.ts';

/** The marker files under a compile-cache directory (Node puts the cache in a per-version subfolder). */
async function markers(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const sub of await readdir(dir)) {
    for (const name of await readdir(join(dir, sub))) if (name.startsWith('portico-warm-')) found.push(join(sub, name));
  }
  return found;
}

describe('compile cache warm-up', () => {
  it('fills an empty cache before the server starts, once', async (t) => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'portico-cc-'));
    const echo = await startEchoUpstream();
    t.after(() => echo.close());
    const yaml = `
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: echo, targets: [ { url: ${echo.url} } ] } ]
routes: [ { name: all, match: { path: /* }, upstream: echo } ]
`;
    const env = { NODE_COMPILE_CACHE: cacheDir };
    const first = await startPortico(yaml, { env });
    await first.stop();
    const after = await markers(cacheDir);
    assert.equal(after.length, 1, 'one marker for these sources');
    const sub = after[0]!.split('/')[0]!;
    const entries = (await readdir(join(cacheDir, sub))).length;
    assert.ok(entries > 100, `the cache holds every module (${entries} entries)`);
    const markedAt = (await stat(join(cacheDir, after[0]!))).mtimeMs;
    const second = await startPortico(yaml, { env });
    assert.equal((await fetch(`${second.url()}/x`)).status, 200);
    await second.stop();
    assert.deepEqual(await markers(cacheDir), after, 'the second start found the marker');
    assert.equal((await stat(join(cacheDir, after[0]!))).mtimeMs, markedAt, 'and did not warm again');
  });
});
