/**
 * @module Passive health (outlier detection): attempts that fail in a row (connect failure, reset, timeout,
 * 5xx) eject a target for `ejectFor × n` (n-th ejection in a row, capped at `maxEjectFor`). At most
 * `maxEjectionPercent` of the pool is ejected at once (at least one target may be), and never the last
 * available one: a pool with no target left can only fail, a sick target may still answer.
 */
import type { UpstreamConfig } from '../../config/schema.ts';
import type { Clock, UpstreamTarget } from '../target.ts';
import type { AttemptOutcome } from '../types.ts';

export type PassiveConfig = UpstreamConfig['health']['passive'];

/** Did this outcome count against the target? Undefined = says nothing (cancelled by the client). */
export function isFailure(outcome: AttemptOutcome): boolean | undefined {
  switch (outcome.kind) {
    case 'response':
      return outcome.status >= 500;
    case 'cancelled':
      return undefined;
    default:
      return true;
  }
}

export class OutlierDetector {
  readonly #config: PassiveConfig;
  readonly #now: Clock;
  /** Ejections made (a counter for metrics). */
  ejected = 0;
  /** Ejections skipped because of maxEjectionPercent or the last-target rule. */
  skipped = 0;

  constructor(config: PassiveConfig, now: Clock) {
    this.#config = config;
    this.#now = now;
  }

  /** Learns from one ended attempt; `pool` is the current target list (read only on the ejection path). */
  record(target: UpstreamTarget, outcome: AttemptOutcome, pool: readonly UpstreamTarget[]): void {
    const failed = isFailure(outcome);
    if (failed === undefined) return;
    if (!failed) {
      target.consecutiveFailures = 0;
      return;
    }
    const threshold = this.#config.consecutiveFailures;
    if (threshold === 0 || ++target.consecutiveFailures < threshold || target.isEjected()) return;
    if (!this.#mayEject(target, pool)) {
      this.skipped++;
      return;
    }
    const now = this.#now();
    // Ejections in a row grow; a target that stayed in long enough starts over.
    if (now - target.lastEjectionEnd > this.#config.maxEjectFor) target.ejections = 0;
    target.ejections++;
    target.ejectedUntil = now + Math.min(this.#config.ejectFor * target.ejections, this.#config.maxEjectFor);
    target.lastEjectionEnd = target.ejectedUntil;
    target.consecutiveFailures = 0;
    this.ejected++;
  }

  #mayEject(target: UpstreamTarget, pool: readonly UpstreamTarget[]): boolean {
    let ejected = 0;
    let othersAvailable = 0;
    for (const t of pool) {
      if (t.isEjected()) ejected++;
      else if (t !== target && t.available()) othersAvailable++;
    }
    const cap = Math.max(1, Math.floor((pool.length * this.#config.maxEjectionPercent) / 100));
    return ejected < cap && othersAvailable > 0;
  }
}
