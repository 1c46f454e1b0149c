/** @module The `transform` policy factory (request/response headers, query, path, JSON body, status). */
import type { PolicyFactory } from '../types.ts';
import { type TransformOptions, transformOptions } from './options.ts';
import { toParseResult } from './parse-issues.ts';
import { createTransform } from './policy.ts';

export const factory: PolicyFactory<TransformOptions> = {
  type: 'transform',
  parse: (raw) => toParseResult(transformOptions.safeParse(raw)),
  create: (name, config, deps) => createTransform(name, config, deps),
};

export { GW_TRANSFORM_FAILED } from './policy.ts';
export { compileTemplate } from './template.ts';
