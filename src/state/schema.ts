/**
 * @module Config schema of shared state: `memory` (default, one instance) or `redis` (single URL, Sentinel or
 * Cluster) so rate limits and quotas are global across instances. docs/rate-limits.md explains each key.
 */
import { z } from 'zod';
import { duration } from '../config/primitives.ts';

const node = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected host:port, e.g. 10.0.0.5:6379')
  .transform((s) => {
    const i = s.lastIndexOf(':');
    return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
  });

const redisTimeouts = z.strictObject({
  command: duration
    .default(200)
    .meta({ description: 'Longest wait for one Redis command before the policy falls back (default 200ms)' }),
  connect: duration.default(1000).meta({ description: 'Longest wait for a connection (default 1s)' }),
});

const redisState = z
  .strictObject({
    store: z.literal('redis'),
    /** Single Redis: `redis://[:password@]host:port[/db]` or `rediss://…`. */
    url: z
      .string()
      .regex(/^rediss?:\/\//, 'expected redis://host:port or rediss://host:port')
      .optional(),
    /** Sentinel: `host:port` of each sentinel, with the master's `name`. */
    sentinels: z.array(node).min(1).optional(),
    name: z.string().min(1).optional(),
    /** Cluster: `host:port` seed nodes. */
    cluster: z.array(node).min(1).optional(),
    keyPrefix: z.string().max(64).default('portico:'),
    timeouts: redisTimeouts.default({ command: 200, connect: 1000 }),
  })
  .superRefine((c, ctx) => {
    const modes = [c.url, c.sentinels, c.cluster].filter((m) => m !== undefined).length;
    if (modes !== 1) ctx.addIssue({ code: 'custom', message: 'set exactly one of url, sentinels or cluster' });
    if (c.sentinels !== undefined && c.name === undefined)
      ctx.addIssue({ code: 'custom', path: ['name'], message: 'sentinels need the master name' });
    if (c.sentinels === undefined && c.name !== undefined)
      ctx.addIssue({ code: 'custom', path: ['name'], message: 'name is only for sentinels' });
  });

export const stateConfig = z.discriminatedUnion('store', [z.strictObject({ store: z.literal('memory') }), redisState]);

export type StateConfig = z.output<typeof stateConfig>;
