/** @module Config schema of the gateway layer: consumers and named policy instances. */
import { z } from 'zod';
import { name } from '../config/primitives.ts';

export const consumer = z.strictObject({
  name,
  groups: z.array(z.string()).default([]),
  metadata: z.record(z.string(), z.string()).default({}),
  /** Plain API keys (use `${ENV}` references) or `sha256:<hex>` hashes. */
  apiKeys: z.array(z.string().min(1)).default([]),
});

/**
 * A named policy: `type` picks the factory; the other keys are that factory's options, checked by its own
 * `parse` (src/gateway/registry.ts), so they are loose here.
 */
export const policyEntry = z.looseObject({ type: z.string() });
