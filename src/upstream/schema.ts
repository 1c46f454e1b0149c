/**
 * @module Config schema of an upstream: its targets and how they are balanced, checked and protected.
 * Composed into the whole file's schema by src/config/schema.ts.
 */
import { z } from 'zod';
import { address, duration, name } from '../config/primitives.ts';

const target = z
  .strictObject({
    /** `http://host:port` for HTTP upstreams. */
    url: z.url({ protocol: /^https?$/ }).optional(),
    /** `host:port` for TCP upstreams. */
    address: address.optional(),
    weight: z.number().int().min(1).max(1000).default(1),
  })
  .refine((t) => (t.url === undefined) !== (t.address === undefined), {
    message: 'a target has either url (HTTP) or address (TCP), not both',
  });

const upstreamTimeouts = z.strictObject({
  connect: duration.default(5_000).meta({ description: 'TCP (and TLS) connect' }),
  response: duration.default(60_000).meta({ description: 'From request sent to response headers received' }),
  idle: duration.default(60_000).meta({ description: 'Longest silence while a body streams, either way' }),
  keepAlive: duration.default(4_000).meta({ description: 'How long an idle pooled connection is kept' }),
});

export const upstream = z.strictObject({
  name,
  balance: z
    .enum(['round-robin', 'weighted', 'least-connections', 'least-request', 'random', 'consistent-hash'])
    .default('round-robin'),
  targets: z.array(target).min(1, 'an upstream needs at least one target'),
  timeouts: upstreamTimeouts.default(upstreamTimeouts.parse({})),
  /** Connections kept per target (undici pool size). */
  maxConnectionsPerTarget: z.number().int().positive().default(128),
});
