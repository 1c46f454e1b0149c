/** The `portico` command without the launcher (`node bin/portico.ts …`); bin/portico.mjs is the usual way in. */

const { runCommand } = await import('../src/cli/run.ts');

runCommand(process.argv.slice(2));
