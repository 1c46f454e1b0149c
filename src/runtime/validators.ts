/** @module Checks other layers add to config loading (beyond the schema and cross-references). */
import type { ConfigValidator } from '../config/loader.ts';
import { validateConsumers } from '../gateway/consumers.ts';
import { validatePolicies } from '../gateway/registry.ts';

export function configValidators(): ConfigValidator[] {
  return [(config) => validatePolicies(config), (config) => validateConsumers(config.consumers)];
}
