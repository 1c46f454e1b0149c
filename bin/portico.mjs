#!/usr/bin/env -S node --max-semi-space-size=4
// The `portico` command's launcher. It is JavaScript for one reason: the compile cache must be on before the
// first TypeScript file is loaded. With the cache warm, Node neither type-strips nor compiles Portico's modules
// again at each start, and the type stripper (about 25 MiB resident) is never loaded into the server process.
// `--max-semi-space-size=4` (also in the npm scripts): a small young generation keeps the heap from ballooning
// under load, since a proxy allocates many short-lived objects (bench/RESULTS.md).
import module from 'node:module';

module.enableCompileCache?.();
await import('./portico.ts');
