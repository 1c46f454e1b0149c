/**
 * @module The store as rate-limit and quota see it: the shared store when it answers, local counting when it
 * does not. With `onStoreFailure: open` a failed or unreachable shared store is replaced by a per-instance
 * memory store (limits divided by `fallbackDivideBy`, so N instances together stay near the global limit);
 * with `closed` the caller gets `undefined` and answers 503. Nothing waits longer than the store's command
 * timeout, and after a timeout the shared store is skipped for `RETRY_MS` so a hung Redis costs one slow
 * request per second, not one per request. Recovery is automatic: once the client reconnects, the next
 * call goes to the shared store again.
 */
import { performance } from 'node:perf_hooks';
import { createMemoryStore } from '../../state/memory.ts';
import type { Decision, RateLimitSpec, Store } from '../../state/types.ts';
import type { PolicyDeps } from '../types.ts';

const RETRY_MS = 1000;

export type OnStoreFailure = 'open' | 'closed';

/** Counters of the degraded mode; read by metrics and tests. */
export interface GuardStats {
  /** Calls the shared store failed (error or timeout). */
  storeFailures: number;
  /** Decisions made by local counting instead of the shared store. */
  localDecisions: number;
  /** Calls refused because the store was unavailable and the policy is `closed`. */
  unavailable: number;
}

export class StoreGuard {
  readonly stats: GuardStats = { storeFailures: 0, localDecisions: 0, unavailable: 0 };
  readonly #shared: Store;
  readonly #local: Store | undefined;
  readonly #mode: OnStoreFailure;
  readonly #policy: string;
  readonly #log: PolicyDeps['log'];
  #skipUntil = 0;
  #degraded = false;

  constructor(shared: Store, mode: OnStoreFailure, policy: string, deps: Pick<PolicyDeps, 'log' | 'now'>) {
    this.#shared = shared;
    this.#mode = mode;
    this.#policy = policy;
    this.#log = deps.log;
    // A memory store needs no fallback; a remote one gets a local twin on the same clock.
    this.#local =
      shared.kind === 'memory' || mode === 'closed'
        ? undefined
        : createMemoryStore({ now: deps.now, sweepEveryMs: 30_000 });
  }

  /**
   * The shared store may be tried now (also while its first connection is made: the store waits for it).
   * When it may not, degraded mode is entered.
   */
  #usable(): boolean {
    if (this.#shared.kind === 'memory') return true;
    if ((this.#shared.ready() || this.#shared.connecting?.() === true) && performance.now() >= this.#skipUntil)
      return true;
    this.#enterDegraded('not connected');
    return false;
  }

  /** After the shared store was skipped or failed: the local store to count in, or undefined (`closed`). */
  #fallback(): Store | undefined {
    if (this.#local === undefined) {
      this.stats.unavailable++;
      return undefined;
    }
    this.stats.localDecisions++;
    return this.#local;
  }

  #failed(err: unknown): void {
    this.stats.storeFailures++;
    this.#skipUntil = performance.now() + RETRY_MS;
    this.#enterDegraded(err instanceof Error ? err.message : String(err));
  }

  #enterDegraded(reason: string): void {
    if (this.#degraded) return;
    this.#degraded = true;
    this.#log.warn(
      { policy: this.#policy, reason, onStoreFailure: this.#mode },
      this.#mode === 'open' ? 'shared store unavailable; counting locally' : 'shared store unavailable; refusing',
    );
  }

  #recovered(): void {
    if (!this.#degraded) return;
    this.#degraded = false;
    this.#log.info({ policy: this.#policy }, 'shared store available again');
  }

  /** True while decisions are made without the shared store. */
  degraded(): boolean {
    return this.#degraded;
  }

  /**
   * True when the shared store answers synchronously (memory): callers may use `takeSync` and stay off the
   * promise path. Such a store has no fallback (it cannot become unreachable).
   */
  get sync(): boolean {
    return this.#shared.takeSync !== undefined;
  }

  /** `take` for a synchronous store (`sync`); a store that throws counts as unavailable, as in `take`. */
  takeSync(key: string, cost: number, spec: RateLimitSpec, now: number): Decision | undefined {
    try {
      return this.#shared.takeSync!(key, cost, spec, now);
    } catch (err) {
      this.stats.storeFailures++;
      this.stats.unavailable++;
      this.#enterDegraded(err instanceof Error ? err.message : String(err));
      return undefined;
    }
  }

  /** A decision, or undefined when the store is unavailable and the policy is `closed`. */
  async take(
    key: string,
    cost: number,
    spec: RateLimitSpec,
    localSpec: RateLimitSpec,
    now: number,
  ): Promise<Decision | undefined> {
    if (this.#usable()) {
      try {
        const d = await this.#shared.take(key, cost, spec, now);
        this.#recovered();
        return d;
      } catch (err) {
        this.#failed(err);
      }
    }
    return this.#fallback()?.take(key, cost, localSpec, now);
  }

  /** The new counter value, or undefined when the store is unavailable and the policy is `closed`. */
  async increment(key: string, by: number, ttlMs: number): Promise<number | undefined> {
    if (this.#usable()) {
      try {
        const n = await this.#shared.increment(key, by, ttlMs);
        this.#recovered();
        return n;
      } catch (err) {
        this.#failed(err);
      }
    }
    return this.#fallback()?.increment(key, by, ttlMs);
  }

  async close(): Promise<void> {
    await this.#local?.close();
  }
}
