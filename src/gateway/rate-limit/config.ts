/**
 * @module Options of the `rate-limit` policy. Every field is documented in docs/rate-limits.md.
 *
 * ```yaml
 * per-consumer:
 *   type: rate-limit
 *   limit: 100          # requests per `per`
 *   per: 1m
 *   burst: 20           # token bucket only; implies algorithm: token-bucket
 *   key: consumer       # or client-ip, route, header:<name>, claim:<name>, or a list of them
 *   plans: { gold: { limit: 1000 } }
 *   enforce: true       # false: shadow mode, counts and logs, never blocks
 *   onStoreFailure: open
 * ```
 */
import { z } from 'zod';
import { duration, name } from '../../config/primitives.ts';
import { KEY_PART } from './key.ts';

const count = z.number().int().min(1).max(1_000_000_000);
const window = duration.refine((ms) => ms >= 1, 'must be at least 1ms');
const keyPart = z.string().regex(KEY_PART, 'expected consumer, client-ip, route, header:<name> or claim:<name>');
const algorithm = z.enum(['token-bucket', 'sliding-window']);

export const keySpec = z
  .union([keyPart, z.array(keyPart).min(1).max(8)])
  .meta({ description: 'What shares one limit: consumer, client-ip, route, header:<name>, claim:<name>, or a list' });

const plan = z.strictObject({
  limit: count,
  per: window.optional(),
  burst: count.optional(),
});

export const onStoreFailure = z
  .enum(['open', 'closed'])
  .default('open')
  .meta({ description: 'When the shared store fails: open = count locally per instance, closed = reply 503' });

export const rateLimitConfig = z
  .strictObject({
    type: z.literal('rate-limit').optional(),
    limit: count.meta({ description: 'Requests allowed per `per` (the refill rate for a token bucket)' }),
    per: window.meta({ description: 'The window, e.g. 1s, 1m, 1h' }),
    burst: count.optional().meta({ description: 'Token bucket capacity (default: limit)' }),
    algorithm: algorithm
      .optional()
      .meta({ description: 'sliding-window (default) or token-bucket (default when burst is set)' }),
    key: keySpec.default('consumer'),
    cost: count.default(1).meta({ description: 'Units each request takes' }),
    plans: z
      .record(name, plan)
      .default({})
      .meta({ description: 'Limits per consumer group; the first plan (in file order) whose group matches wins' }),
    enforce: z.boolean().default(true).meta({ description: 'false: shadow mode (count and log, never block)' }),
    onStoreFailure,
    fallbackDivideBy: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(1)
      .meta({ description: 'Local fallback limit = limit / this (set to the number of instances)' }),
  })
  .superRefine((c, ctx) => {
    const alg = c.algorithm ?? (c.burst !== undefined ? 'token-bucket' : 'sliding-window');
    if (alg === 'sliding-window') {
      if (c.burst !== undefined)
        ctx.addIssue({ code: 'custom', path: ['burst'], message: 'burst needs algorithm: token-bucket' });
      for (const [p, v] of Object.entries(c.plans))
        if (v.burst !== undefined)
          ctx.addIssue({ code: 'custom', path: ['plans', p, 'burst'], message: 'burst needs algorithm: token-bucket' });
    }
  });

export type RateLimitConfig = z.output<typeof rateLimitConfig>;
