/**
 * End to end: the launcher (bin/portico.mjs) replaces itself once so the server runs with one glibc malloc
 * arena (`MALLOC_ARENA_MAX=1`) and its V8 memory flags, in the same process the caller started (same PID, so
 * signals and exit codes are the server's), with no warning on stderr; values the user set are kept.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { startEchoUpstream } from '../helpers/http.ts';
import { startPortico } from '../helpers/portico.ts';

/** One variable of a running process's environment, from /proc. */
async function envOf(pid: number, name: string): Promise<string | undefined> {
  const env = await readFile(`/proc/${pid}/environ`, 'latin1');
  const entry = env.split('\0').find((e) => e.startsWith(`${name}=`));
  return entry?.slice(name.length + 1);
}

/** A running process's command line, from /proc. */
async function argvOf(pid: number): Promise<string[]> {
  return (await readFile(`/proc/${pid}/cmdline`, 'latin1')).split('\0').filter((a) => a !== '');
}

describe('launcher', { skip: process.platform !== 'linux' && 'Linux only (glibc malloc arenas, /proc)' }, () => {
  const yaml = (url: string) => `
listeners: [ { name: web, protocol: http, address: 127.0.0.1:0 } ]
upstreams: [ { name: echo, targets: [ { url: ${url} } ] } ]
routes: [ { name: all, match: { path: /* }, upstream: echo } ]
`;

  const inherited = process.env.MALLOC_ARENA_MAX !== undefined && 'MALLOC_ARENA_MAX is set for the test run';
  it('runs the server with one malloc arena, in the process it was started as', { skip: inherited }, async (t) => {
    const echo = await startEchoUpstream();
    t.after(() => echo.close());
    const p = await startPortico(yaml(echo.url));
    try {
      const started = await p.waitFor((l) => l.msg === 'started');
      assert.equal(started.pid, p.child.pid, 'the started server is the process the caller spawned');
      assert.equal(await envOf(p.child.pid!, 'MALLOC_ARENA_MAX'), '1');
      assert.equal((await fetch(`${p.url()}/x`)).status, 200);
    } finally {
      await p.stop();
    }
    assert.doesNotMatch(p.stderr, /warning/i);
  });

  it("keeps the user's own MALLOC_ARENA_MAX", async (t) => {
    const echo = await startEchoUpstream();
    t.after(() => echo.close());
    const p = await startPortico(yaml(echo.url), { env: { MALLOC_ARENA_MAX: '4' } });
    try {
      assert.equal(await envOf(p.child.pid!, 'MALLOC_ARENA_MAX'), '4');
    } finally {
      await p.stop();
    }
  });

  it('runs the server with its V8 memory flags', async (t) => {
    const echo = await startEchoUpstream();
    t.after(() => echo.close());
    const p = await startPortico(yaml(echo.url));
    try {
      const argv = await argvOf(p.child.pid!);
      assert.ok(argv.includes('--max-old-space-size=1024'), argv.join(' '));
      assert.ok(argv.includes('--max-semi-space-size=4'), argv.join(' '));
    } finally {
      await p.stop();
    }
  });

  it("keeps the user's own V8 flags, on the command line or in NODE_OPTIONS, and adds no second value", async (t) => {
    const echo = await startEchoUpstream();
    t.after(() => echo.close());
    const p = await startPortico(yaml(echo.url), { env: { NODE_OPTIONS: '--max_old_space_size=2048' } });
    try {
      const argv = await argvOf(p.child.pid!);
      assert.equal(argv.filter((a) => a.startsWith('--max-old-space-size')).length, 0, argv.join(' '));
      assert.equal(await envOf(p.child.pid!, 'NODE_OPTIONS'), '--max_old_space_size=2048');
      assert.ok(argv.includes('--max-semi-space-size=4'), argv.join(' '));
    } finally {
      await p.stop();
    }
  });
});
