/**
 * @module What rate-limit and quota share around their counters: choosing a consumer's plan, logging a
 * shadow-mode excess, and the 429 / 503 replies.
 */
import type { ErrorCode, LocalReply } from '../../errors.ts';
import type { Consumer, Exchange, PolicyDeps, Verdict } from '../types.ts';
import { RETRY_AFTER, retryAfterSeconds } from './headers.ts';

// Not yet in src/errors.ts's catalogue, so replies are built here with their status rather than by localReply().
export const GW_RATE_LIMITED = 'GW_RATE_LIMITED' as ErrorCode;
export const GW_STATE_UNAVAILABLE = 'GW_STATE_UNAVAILABLE' as ErrorCode;

/** The 503 both rate-limit and quota answer when the store fails and the policy is `closed`. */
export function stateUnavailable(policy: string): LocalReply {
  return { status: 503, code: GW_STATE_UNAVAILABLE, details: `store_unavailable:${policy}` };
}

/** A 429 reply verdict with Retry-After rounded up to whole seconds. */
export function tooManyRequests(code: ErrorCode, details: string, retryAfterMs: number): Verdict {
  const reply: LocalReply = {
    status: 429,
    code,
    details,
    headers: { [RETRY_AFTER]: retryAfterSeconds(retryAfterMs) },
  };
  return { kind: 'reply', reply };
}

/** The first plan naming one of the consumer's groups, else `fallback` (plans keep config order). */
export function planForGroups<P>(
  consumer: Consumer,
  plans: readonly (readonly [group: string, plan: P])[],
  fallback: P,
): P {
  for (const [group, p] of plans) {
    if (consumer.groups.includes(group)) return p;
  }
  return fallback;
}

/** Shadow mode: the excess is logged, the request goes on. */
export function logShadowExcess(deps: PolicyDeps, policy: string, ex: Exchange, msg: string): void {
  deps.log.info({ policy, route: ex.routeName, consumer: ex.consumer?.name, requestId: ex.id }, msg);
}
