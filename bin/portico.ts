/** The `portico` command (started by bin/portico.mjs, which turns the compile cache on first). */

const { main } = await import('../src/cli/main.ts');

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Listeners and timers are closed by then; exit promptly even if a stray handle lingers.
    if (code !== 0 || process.argv[2] !== 'start') setImmediate(() => process.exit(code));
    else setTimeout(() => process.exit(code), 100).unref();
  },
  (err: unknown) => {
    process.stderr.write(`portico: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(70);
  },
);
