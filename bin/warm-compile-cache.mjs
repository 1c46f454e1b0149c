// Fills Node's compile cache with every module of Portico, in a short-lived process of its own, so that the
// server never has to load the TypeScript stripper (about 28 MiB that would stay resident until a restart).
// Run by bin/portico.mjs before `start` and `demo` when the cache has not been filled for these sources yet;
// it imports each file of src/ (no module does work on import) and exits.
import { readdirSync } from 'node:fs';
import module from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

module.enableCompileCache?.();
const src = fileURLToPath(new URL('../src/', import.meta.url));
const files = readdirSync(src, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.ts'))
  .sort();
for (const file of files) await import(pathToFileURL(join(src, file)).href);
module.flushCompileCache?.();
