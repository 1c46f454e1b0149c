/**
 * @module A pool: one upstream's targets, its balancer, health checks, outlier detection, circuit limits,
 * retry policy, sticky sessions and discovery, built once per config generation.
 *
 * Targets and load counters come from a Registry keyed by upstream name and target key, so a reload that
 * keeps a target keeps its health, ejection and counts: build the new pool first, then `close()` the old one.
 * A target no pool keeps any more is marked draining: no new picks, in-flight attempts end normally.
 */
import type { UpstreamConfig } from '../config/schema.ts';
import { createBalancer } from './balancers/index.ts';
import { attemptEnded, attemptStarted, circuitLimits, overLimits, UpstreamLoad } from './circuit-breaker.ts';
import { Discovery, type LookupAll, needsLookup, type Source, systemLookup } from './discovery.ts';
import { ActiveChecker } from './health/active.ts';
import { OutlierDetector } from './health/passive.ts';
import { Registry } from './registry.ts';
import { UpstreamRetryPolicy } from './retry.ts';
import { createWeightOf } from './slow-start.ts';
import { CookieSticky } from './sticky.ts';
import { type Clock, type TargetAddress, targetAddress, UpstreamTarget } from './target.ts';
import type { AttemptOutcome, HashOn, NoTargetReason, PickHint, Pool, Target } from './types.ts';

export interface PoolDeps {
  /** Shared by every generation's pools so state outlives reloads; a fresh one when omitted. */
  readonly registry?: Registry;
  /** Monotonic milliseconds. */
  readonly now?: Clock;
  /** Uniform in [0, 1). */
  readonly random?: () => number;
  /** DNS lookup of every address of a name (discovery). */
  readonly lookup?: LookupAll;
}

/** The Pool createPool returns, with what admin, metrics and tests may read. */
export interface UpstreamPool extends Pool {
  readonly targets: readonly UpstreamTarget[];
  readonly retry: UpstreamRetryPolicy;
  readonly load: UpstreamLoad;
  readonly outliers: OutlierDetector;
  /** Runs every active check now (admin "check now", tests). */
  checkNow(): void;
  /** Resolves every discovered name now. */
  resolveNow(): Promise<void>;
}

export function createPool(config: UpstreamConfig, deps: PoolDeps = {}): UpstreamPool {
  const registry = deps.registry ?? new Registry();
  const now = deps.now ?? (() => performance.now());
  const random = deps.random ?? Math.random;
  const name = config.name;
  const limits = circuitLimits(config);
  const active = config.health.active;
  const loadKey = `upstream\0${name}`;
  const load = registry.acquire(loadKey, () => new UpstreamLoad());

  const acquire = (address: TargetAddress, weight: number, hostname: string | undefined): UpstreamTarget => {
    const t = registry.acquire(`target\0${name}\0${address.key}`, () => {
      const fresh = new UpstreamTarget(address, weight, now, hostname);
      // With active checks, a new target earns traffic by passing its first check.
      fresh.healthy = active === undefined;
      return fresh;
    });
    t.weight = weight;
    t.maxActive = limits.maxRequestsPerTarget;
    if (active === undefined) t.healthy = true;
    return t;
  };
  const release = (t: UpstreamTarget): void => {
    registry.release<UpstreamTarget>(`target\0${name}\0${t.key}`, (gone) => {
      gone.draining = true;
    });
  };

  const sources: Source[] = config.targets.map((tc) => {
    const address = targetAddress(tc);
    const resolve = config.discovery !== undefined && needsLookup(address);
    return { address, weight: tc.weight, hostname: resolve ? address.host : undefined, resolved: undefined };
  });

  /** Targets from the sources' current answers, reusing held ones; releases those no longer listed. */
  const build = (previous: readonly UpstreamTarget[]): UpstreamTarget[] => {
    const held = new Map(previous.map((t) => [t.key, t]));
    const next: UpstreamTarget[] = [];
    const seen = new Set<string>();
    for (const s of sources) {
      for (const address of s.resolved ?? [s.address]) {
        if (seen.has(address.key)) continue;
        seen.add(address.key);
        const kept = held.get(address.key);
        next.push(kept ?? acquire(address, s.weight, s.hostname));
        held.delete(address.key);
      }
    }
    for (const gone of held.values()) release(gone);
    return next;
  };

  let targets = build([]);
  const getTargets = () => targets;
  const balancer = createBalancer(config.balance, { random, weightOf: createWeightOf(config.slowStart, now) });
  const outliers = new OutlierDetector(config.health.passive, now);
  const retry = new UpstreamRetryPolicy(config.retries, load);
  const sticky =
    config.sticky === undefined
      ? undefined
      : new CookieSticky(config.sticky, getTargets, () => !overLimits(load, limits));
  const hashOn: HashOn | undefined = config.balance === 'consistent-hash' ? (config.hashOn ?? 'client-ip') : undefined;

  const checkType = active?.type ?? (sources[0]!.address.protocol === 'tcp:' ? 'tcp' : 'http');
  const checker = active === undefined ? undefined : new ActiveChecker(active, checkType, getTargets, now);
  const discovery =
    config.discovery === undefined
      ? undefined
      : new Discovery(sources, config.discovery.resolveEvery, deps.lookup ?? systemLookup, () => {
          targets = build(targets);
          checker?.checkNow();
        });
  checker?.start();
  discovery?.start();
  let closed = false;

  return {
    name,
    get targets() {
      return targets;
    },
    retry,
    hashOn,
    sticky,
    load,
    outliers,

    pick(hint: PickHint): Target | undefined {
      if (overLimits(load, limits)) {
        load.overloaded++;
        return undefined;
      }
      return balancer.pick(targets, hint);
    },

    begin(target: Target, isRetry = false): (outcome: AttemptOutcome) => void {
      const t = target as UpstreamTarget;
      attemptStarted(load, t, limits, isRetry);
      let ended = false;
      return (outcome: AttemptOutcome) => {
        if (ended) return;
        ended = true;
        attemptEnded(load, t, limits, isRetry);
        outliers.record(t, outcome, targets);
      };
    },

    noTargetReason(hint: PickHint): NoTargetReason {
      if (overLimits(load, limits)) return 'overloaded';
      for (const t of targets)
        if (t.full() && (hint.exclude === undefined || !hint.exclude.has(t))) return 'overloaded';
      return 'unavailable';
    },

    retryAfterMs(): number | undefined {
      // Only read on the 503 path. A target kept out by an active check (or draining) gives no date; an
      // available one (excluded by a retry) means the pool is not down at all.
      const at = now();
      let soonest = Number.POSITIVE_INFINITY;
      for (const t of targets) {
        if (t.draining || !t.healthy) continue;
        if (!t.isEjected()) return undefined;
        soonest = Math.min(soonest, t.ejectedUntil - at);
      }
      return soonest === Number.POSITIVE_INFINITY ? undefined : soonest;
    },

    checkNow(): void {
      checker?.checkNow();
    },

    async resolveNow(): Promise<void> {
      await discovery?.resolveNow();
    },

    close(): void {
      if (closed) return;
      closed = true;
      checker?.close();
      discovery?.close();
      for (const t of targets) release(t);
      registry.release(loadKey);
    },
  };
}
