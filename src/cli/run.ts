/**
 * @module Runs the `portico` command line and sets the exit code (bin/portico.mjs, the launcher, calls it).
 * Importing this module does nothing, so the compile-cache warm-up (bin/warm-compile-cache.mjs) can load it.
 */
import { main } from './main.ts';

export function runCommand(argv: string[]): void {
  main(argv).then(
    (code) => {
      process.exitCode = code;
      // Listeners and timers are closed by then; exit promptly even if a stray handle lingers.
      if (code !== 0 || argv[0] !== 'start') setImmediate(() => process.exit(code));
      else setTimeout(() => process.exit(code), 100).unref();
    },
    (err: unknown) => {
      process.stderr.write(`portico: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exit(70);
    },
  );
}
