/** @module Checks other layers add to config loading (beyond the schema and cross-references). */
import type { ConfigValidator } from '../config/loader.ts';

export function configValidators(): ConfigValidator[] {
  return [];
}
