#!/usr/bin/env node
// The `portico` command's launcher. It is JavaScript for one reason: the compile cache must be on before the
// first TypeScript file is loaded. With the cache warm, Node neither type-strips nor compiles Portico's modules
// again at each start, and the type stripper (about 28 MiB resident) is never loaded into the server process;
// before a server starts on a cache that is not warm for these sources, bin/warm-compile-cache.mjs fills it
// in a child process first. For `start` and `demo` it also sets the server's memory settings (below).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import module from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * V8 flags a server runs with unless the user gave their own value (on the command line or in NODE_OPTIONS),
 * each measured on the bench (docs/architecture.md, bench/RESULTS.md):
 * - a small young generation: a proxy allocates many short-lived objects, and larger ones raised the peak;
 * - a 1 GiB old generation. Below 2 GiB V8 lets the heap grow to about twice what survives a full collection
 *   rather than four times, which kept 20–30 MiB of heap pages from being held between collections.
 */
const SERVER_V8_FLAGS = ['--max-semi-space-size=4', '--max-old-space-size=1024'];

const command = process.argv[2];
if (command === 'start' || command === 'demo') useServerSettings();
const cache = module.enableCompileCache?.();
if (cache?.directory && (command === 'start' || command === 'demo')) warmCompileCache(cache.directory);
const { runCommand } = await import('../src/cli/run.ts');
runCommand(process.argv.slice(2));

/**
 * Both settings are read only when a process starts, so the launcher replaces itself (same PID, stdio and
 * arguments) once with them: the V8 flags above, and one glibc malloc arena. glibc gives each thread that
 * allocates its own arena and keeps what they free; V8's compiler threads allocate about 30 MiB while a
 * server warms up, so a server peaked some 16 MiB higher with them than with one shared arena, which gives
 * that memory back to the requests that follow. Values set by the user are kept.
 */
function useServerSettings() {
  if (typeof process.execve !== 'function') return;
  const env = { ...process.env };
  let changed = false;
  if (process.platform === 'linux' && env.MALLOC_ARENA_MAX === undefined) {
    env.MALLOC_ARENA_MAX = '1';
    changed = true;
  }
  // V8 takes `_` for `-` in flag names.
  const given = [...process.execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)].map((a) => a.replaceAll('_', '-'));
  const flags = SERVER_V8_FLAGS.filter((flag) => {
    const name = flag.slice(0, flag.indexOf('='));
    return !given.some((a) => a === name || a.startsWith(`${name}=`));
  });
  if (flags.length > 0) changed = true;
  if (!changed) return;
  // execve is experimental in Node 24: its warning would reach the user's stderr on every start.
  process.removeAllListeners('warning');
  try {
    process.execve(process.execPath, [process.execPath, ...flags, ...process.execArgv, ...process.argv.slice(1)], env);
  } catch {
    // Not replaced: run as we are, at the cost of some memory.
  }
}

/** Fills the compile cache in a child process unless a marker says it holds these exact sources already. */
function warmCompileCache(directory) {
  try {
    const src = fileURLToPath(new URL('../src/', import.meta.url));
    const hash = createHash('sha1').update(process.version);
    for (const file of readdirSync(src, { recursive: true, encoding: 'utf8' }).sort()) {
      if (!file.endsWith('.ts')) continue;
      const st = statSync(join(src, file));
      hash.update(`${file}\0${st.size}\0${st.mtimeMs}\0`);
    }
    const marker = join(directory, `portico-warm-${hash.digest('hex')}`);
    if (existsSync(marker)) return;
    const warm = fileURLToPath(new URL('./warm-compile-cache.mjs', import.meta.url));
    const done = spawnSync(process.execPath, [warm], { stdio: 'ignore', timeout: 60_000 });
    if (done.status === 0) writeFileSync(marker, '');
  } catch {
    // A cache that cannot be warmed only costs memory: start anyway.
  }
}
