/**
 * @module The `rate-limit` policy: token bucket or sliding window, per key, with plans per consumer group,
 * RateLimit / RateLimit-Policy headers, Retry-After and a 429 on denial, shadow mode, and a local fallback
 * when the shared store fails. Everything but the store call is precomputed in `create`.
 */
import type { Decision, RateLimitSpec } from '../../state/types.ts';
import {
  CONTINUE,
  type Consumer,
  type Exchange,
  type Policy,
  type PolicyDeps,
  type PolicyFactory,
  type Verdict,
} from '../types.ts';
import { type RateLimitConfig, rateLimitConfig } from './config.ts';
import { StoreGuard } from './guard.ts';
import {
  appendMember,
  limitMemberFrom,
  limitMemberHead,
  policyMember,
  RATELIMIT,
  RATELIMIT_POLICY,
} from './headers.ts';
import { parseWith } from './issues.ts';
import { compileKey } from './key.ts';
import { GW_RATE_LIMITED, logShadowExcess, planForGroups, stateUnavailable, tooManyRequests } from './verdicts.ts';

export { GW_RATE_LIMITED, GW_STATE_UNAVAILABLE, stateUnavailable } from './verdicts.ts';

/** One plan (the default or a group's), ready to use per request. */
interface Plan {
  /** Store key prefix: `rl:<policy>:<plan>:`. */
  readonly prefix: string;
  readonly id: string;
  readonly spec: RateLimitSpec;
  readonly localSpec: RateLimitSpec;
  readonly policyHeader: string;
  /** `"<id>";r=`: the RateLimit member up to the remaining count. */
  readonly limitHead: string;
}

/** A consumer's plan and, when the key is the consumer alone, its whole store key: one WeakMap hit per request. */
interface ConsumerEntry {
  readonly plan: Plan;
  readonly key: string | undefined;
}

function makePlan(
  policy: string,
  planName: string | undefined,
  limit: number,
  per: number,
  burst: number | undefined,
  c: RateLimitConfig,
): Plan {
  const algorithm = c.algorithm ?? (c.burst !== undefined || burst !== undefined ? 'token-bucket' : 'sliding-window');
  const spec: RateLimitSpec = Object.freeze(
    algorithm === 'token-bucket'
      ? { algorithm, limit, windowMs: per, burst: burst ?? c.burst ?? limit }
      : { algorithm, limit, windowMs: per },
  );
  const div = c.fallbackDivideBy;
  const localSpec: RateLimitSpec = Object.freeze({
    ...spec,
    limit: Math.max(1, Math.ceil(limit / div)),
    ...(spec.burst === undefined ? {} : { burst: Math.max(1, Math.ceil(spec.burst / div)) }),
  });
  const id = planName === undefined ? policy : `${policy}.${planName}`;
  return {
    prefix: `rl:${policy}:${planName ?? ''}:`,
    id,
    spec,
    localSpec,
    policyHeader: policyMember(id, limit, per),
    limitHead: limitMemberHead(id),
  };
}

class RateLimitPolicy implements Policy {
  readonly type = 'rate-limit';
  readonly name: string;
  readonly guard: StoreGuard;
  readonly #default: Plan;
  readonly #plans: readonly (readonly [group: string, plan: Plan])[];
  readonly #byConsumer = new WeakMap<Consumer, ConsumerEntry>();
  readonly #key: (ex: Exchange) => string;
  /** The key is `consumer` alone: the store key is cached per consumer. */
  readonly #consumerKey: boolean;
  readonly #cost: number;
  readonly #enforce: boolean;
  readonly #deps: PolicyDeps;
  /** The store answers synchronously (memory): the hook returns a Verdict, not a promise. */
  readonly #sync: boolean;

  constructor(name: string, c: RateLimitConfig, deps: PolicyDeps) {
    this.name = name;
    this.#deps = deps;
    this.#default = makePlan(name, undefined, c.limit, c.per, c.burst, c);
    this.#plans = Object.entries(c.plans).map(
      ([group, p]) => [group, makePlan(name, group, p.limit, p.per ?? c.per, p.burst, c)] as const,
    );
    this.#key = compileKey(c.key);
    this.#consumerKey = c.key === 'consumer' || (Array.isArray(c.key) && c.key.length === 1 && c.key[0] === 'consumer');
    this.#cost = c.cost;
    this.#enforce = c.enforce;
    this.guard = new StoreGuard(deps.store, c.onStoreFailure, name, deps);
    this.#sync = this.guard.sync;
  }

  /** The consumer's plan: the first configured plan naming one of its groups, else the default. Cached. */
  #entryOf(consumer: Consumer): ConsumerEntry {
    let entry = this.#byConsumer.get(consumer);
    if (entry !== undefined) return entry;
    const plan = planForGroups(consumer, this.#plans, this.#default);
    entry = { plan, key: this.#consumerKey ? `${plan.prefix}c:${consumer.name}` : undefined };
    this.#byConsumer.set(consumer, entry);
    return entry;
  }

  onRequest(ex: Exchange): Verdict | Promise<Verdict> {
    const consumer = ex.consumer;
    let plan: Plan;
    let key: string | undefined;
    if (consumer === undefined) {
      plan = this.#default;
    } else {
      const entry = this.#entryOf(consumer);
      plan = entry.plan;
      key = entry.key;
    }
    key ??= plan.prefix + this.#key(ex);
    const now = this.#deps.now();
    if (this.#sync) return this.#decide(ex, plan, this.guard.takeSync(key, this.#cost, plan.spec, now));
    return this.#takeAsync(ex, plan, key, now);
  }

  async #takeAsync(ex: Exchange, plan: Plan, key: string, now: number): Promise<Verdict> {
    return this.#decide(ex, plan, await this.guard.take(key, this.#cost, plan.spec, plan.localSpec, now));
  }

  #decide(ex: Exchange, plan: Plan, d: Decision | undefined): Verdict {
    if (d === undefined) {
      if (!this.#enforce) return CONTINUE;
      return { kind: 'reply', reply: stateUnavailable(this.name) };
    }
    if (!this.#enforce) {
      if (!d.allowed) logShadowExcess(this.#deps, this.name, ex, 'rate limit exceeded (shadow mode, not enforced)');
      return CONTINUE;
    }
    const h = ex.replyHeaders;
    appendMember(h, RATELIMIT_POLICY, plan.policyHeader);
    appendMember(h, RATELIMIT, limitMemberFrom(plan.limitHead, d.remaining, d.resetMs));
    if (d.allowed) return CONTINUE;
    return tooManyRequests(GW_RATE_LIMITED, `rate_limited:${this.name}`, d.retryAfterMs);
  }

  close(): Promise<void> {
    return this.guard.close();
  }
}

export const factory: PolicyFactory<RateLimitConfig> = {
  type: 'rate-limit',
  parse: (raw) => parseWith(rateLimitConfig, raw),
  create: (name, config, deps) => new RateLimitPolicy(name, config, deps),
};

export type { RateLimitConfig };
