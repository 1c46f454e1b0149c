/**
 * @module undici's connection pool, loaded on its own.
 *
 * Importing the package root also loads fetch, WebSocket, cache and mock code that Portico's data path never
 * uses (about 14 MiB of resident memory); the pool module alone is what the forwarder needs.
 */
import { createRequire } from 'node:module';
import type { Pool as UndiciPool } from 'undici';

const require = createRequire(import.meta.url);

export const Pool: typeof UndiciPool = require('undici/lib/dispatcher/pool.js');
export type Pool = UndiciPool;
