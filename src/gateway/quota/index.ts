/**
 * @module The `quota` policy: N requests per consumer per calendar day or month in a time zone. Counters live
 * in the shared store under `q:<policy>:<plan>:<window id>:<key>` and expire an hour after their window ends.
 * A request past the quota is answered 429 `GW_QUOTA_EXCEEDED` with Retry-After = time to the next window.
 * Denied requests are counted too (the counter only grows), which keeps the check a single atomic INCR.
 */
import type { ErrorCode } from '../../errors.ts';
import { StoreGuard } from '../rate-limit/guard.ts';
import { parseWith } from '../rate-limit/issues.ts';
import { compileKey } from '../rate-limit/key.ts';
import { logShadowExcess, planForGroups, stateUnavailable, tooManyRequests } from '../rate-limit/verdicts.ts';
import {
  CONTINUE,
  type Consumer,
  type Exchange,
  type Policy,
  type PolicyDeps,
  type PolicyFactory,
  type Verdict,
} from '../types.ts';
import { type CalendarWindow, createCalendar } from './calendar.ts';
import { type QuotaConfig, quotaConfig } from './config.ts';

export const GW_QUOTA_EXCEEDED = 'GW_QUOTA_EXCEEDED' as ErrorCode;

/** Counters outlive their window by this much, so a slightly skewed instance still finds them. */
const GRACE_MS = 3_600_000;

interface Plan {
  readonly prefix: string;
  readonly limit: number;
}

class QuotaPolicy implements Policy {
  readonly type = 'quota';
  readonly name: string;
  readonly guard: StoreGuard;
  readonly #default: Plan;
  readonly #plans: readonly (readonly [group: string, plan: Plan])[];
  readonly #byConsumer = new WeakMap<Consumer, Plan>();
  readonly #key: (ex: Exchange) => string;
  readonly #calendar: (now: number) => CalendarWindow;
  readonly #c: QuotaConfig;
  readonly #deps: PolicyDeps;

  constructor(name: string, c: QuotaConfig, deps: PolicyDeps) {
    this.name = name;
    this.#c = c;
    this.#deps = deps;
    this.#default = { prefix: `q:${name}::`, limit: c.limit };
    this.#plans = Object.entries(c.plans).map(([g, p]) => [g, { prefix: `q:${name}:${g}:`, limit: p.limit }] as const);
    this.#key = compileKey(c.key);
    this.#calendar = createCalendar(c.period, c.timeZone);
    this.guard = new StoreGuard(deps.store, c.onStoreFailure, name, deps);
  }

  #planOf(consumer: Consumer | undefined): Plan {
    if (consumer === undefined || this.#plans.length === 0) return this.#default;
    let plan = this.#byConsumer.get(consumer);
    if (plan !== undefined) return plan;
    plan = planForGroups(consumer, this.#plans, this.#default);
    this.#byConsumer.set(consumer, plan);
    return plan;
  }

  async onRequest(ex: Exchange): Promise<Verdict> {
    const now = this.#deps.now();
    const win = this.#calendar(now);
    const plan = this.#planOf(ex.consumer);
    const key = plan.prefix + win.id + ':' + this.#key(ex);
    const used = await this.guard.increment(key, this.#c.cost, win.end - now + GRACE_MS);
    if (used === undefined) return this.#c.enforce ? { kind: 'reply', reply: stateUnavailable(this.name) } : CONTINUE;
    const over = used > plan.limit;
    if (!this.#c.enforce) {
      if (over) logShadowExcess(this.#deps, this.name, ex, 'quota exceeded (shadow mode, not enforced)');
      return CONTINUE;
    }
    ex.replyHeaders[this.#c.header] = String(over ? 0 : plan.limit - used);
    if (!over) return CONTINUE;
    return tooManyRequests(GW_QUOTA_EXCEEDED, `quota_exceeded:${this.name}`, win.end - now);
  }

  close(): Promise<void> {
    return this.guard.close();
  }
}

export const factory: PolicyFactory<QuotaConfig> = {
  type: 'quota',
  parse: (raw) => parseWith(quotaConfig, raw),
  create: (name, config, deps) => new QuotaPolicy(name, config, deps),
};

export type { QuotaConfig };
