/** @module The `cors` policy factory: preflights answered at the edge, CORS headers on responses. */
import { toParseResult } from '../transform/parse-issues.ts';
import type { PolicyFactory } from '../types.ts';
import { type CorsOptions, corsOptions } from './options.ts';
import { createCors } from './policy.ts';

export const factory: PolicyFactory<CorsOptions> = {
  type: 'cors',
  parse: (raw) => toParseResult(corsOptions.safeParse(raw)),
  create: (name, config, deps) => createCors(name, config, deps),
};

export { GW_CORS_REJECTED } from './policy.ts';
