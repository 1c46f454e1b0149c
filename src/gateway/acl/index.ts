/**
 * @module `acl`: allows or denies the identified consumer by group (or name). Runs after authentication.
 * Deny wins over allow; with an `allow` list, a consumer in none of its groups is refused. No identified
 * consumer → 403 too (put an authentication policy first).
 *
 * ```yaml
 * gold-only: { type: acl, allow: [gold, platinum], deny: [suspended] }
 * ```
 */
import { z } from 'zod';
import { replyVerdict } from '../replies.ts';
import { zodParser } from '../schema.ts';
import { CONTINUE, type Exchange, type PolicyFactory, type Verdict } from '../types.ts';

const options = z
  .strictObject({
    /** Groups allowed; empty: every identified consumer not denied. */
    allow: z.array(z.string().min(1)).default([]),
    deny: z.array(z.string().min(1)).default([]),
    /** Consumer names allowed regardless of group (still subject to `deny`). */
    allowConsumers: z.array(z.string().min(1)).default([]),
  })
  .refine((o) => o.allow.length + o.deny.length + o.allowConsumers.length > 0, {
    message: 'give at least one of allow, deny, allowConsumers',
  });
export type AclOptions = z.output<typeof options>;

export const factory: PolicyFactory<AclOptions> = {
  type: 'acl',
  parse: zodParser(options),
  create(name, c) {
    const allow = new Set(c.allow);
    const deny = new Set(c.deny);
    const allowConsumers = new Set(c.allowConsumers);
    const restricted = allow.size + allowConsumers.size > 0;
    const anonymous = replyVerdict('GW_FORBIDDEN', 'acl_no_consumer');
    const denied = replyVerdict('GW_FORBIDDEN', 'acl_denied');
    const notAllowed = replyVerdict('GW_FORBIDDEN', 'acl_not_allowed');
    return {
      name,
      type: 'acl',
      onRequest(ex: Exchange): Verdict {
        const consumer = ex.consumer;
        if (consumer === undefined) return anonymous;
        const groups = consumer.groups;
        if (deny.size > 0) for (const g of groups) if (deny.has(g)) return denied;
        if (!restricted || allowConsumers.has(consumer.name)) return CONTINUE;
        for (const g of groups) if (allow.has(g)) return CONTINUE;
        return notAllowed;
      },
    };
  },
};
