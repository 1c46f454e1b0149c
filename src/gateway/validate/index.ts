/** @module The `validate` policy factory: JSON Schema checks of request headers, query and body. */
import { toParseResult } from '../transform/parse-issues.ts';
import type { PolicyFactory } from '../types.ts';
import { type ValidateOptions, validateOptions } from './options.ts';
import { createValidate } from './policy.ts';

export const factory: PolicyFactory<ValidateOptions> = {
  type: 'validate',
  parse: (raw) => toParseResult(validateOptions.safeParse(raw)),
  create: (name, config) => createValidate(name, config),
};

export { GW_VALIDATION_FAILED, type ValidationReply, type Violation } from './policy.ts';
