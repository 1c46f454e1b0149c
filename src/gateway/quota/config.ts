/**
 * @module Options of the `quota` policy (docs/rate-limits.md).
 *
 * ```yaml
 * monthly:
 *   type: quota
 *   limit: 10000
 *   period: month              # or day
 *   timeZone: Europe/Paris     # calendar windows start at local midnight (default UTC)
 *   plans: { gold: { limit: 1000000 } }
 *   header: x-quota-remaining
 * ```
 */
import { z } from 'zod';
import { headerName, name } from '../../config/primitives.ts';
import { keySpec, onStoreFailure } from '../rate-limit/config.ts';
import { isTimeZone } from './calendar.ts';

const count = z.number().int().min(1).max(1_000_000_000_000);

export const quotaConfig = z.strictObject({
  type: z.literal('quota').optional(),
  limit: count.meta({ description: 'Requests allowed per period' }),
  period: z.enum(['day', 'month']).meta({ description: 'Calendar day or month in `timeZone`' }),
  timeZone: z
    .string()
    .default('UTC')
    .refine(isTimeZone, 'unknown IANA time zone (e.g. UTC, Europe/Paris, America/New_York)'),
  key: keySpec.default('consumer'),
  cost: z.number().int().min(1).max(1_000_000).default(1),
  plans: z
    .record(name, z.strictObject({ limit: count }))
    .default({})
    .meta({ description: 'Limits per consumer group; the first plan (in file order) whose group matches wins' }),
  header: headerName
    .default('x-quota-remaining')
    .transform((h) => h.toLowerCase())
    .meta({ description: 'Response header carrying the remaining count' }),
  enforce: z.boolean().default(true),
  onStoreFailure,
});

export type QuotaConfig = z.output<typeof quotaConfig>;
