/**
 * @module Retry policy of one upstream: which outcomes are retried, for which methods, how many times, and
 * a retry budget (Envoy's retry_budget): retries in flight may be at most `percent` of the attempts in flight
 * on the upstream, or `minConcurrency`, whichever is more, so a sick pool is not hit by a retry storm.
 */
import type { UpstreamConfig } from '../config/schema.ts';
import type { UpstreamLoad } from './circuit-breaker.ts';
import type { AttemptOutcome, RetryPolicy } from './types.ts';

export type RetriesConfig = UpstreamConfig['retries'];

/** RFC 9110 §9.2.2. */
export function isIdempotent(method: string): boolean {
  switch (method) {
    case 'GET':
    case 'HEAD':
    case 'OPTIONS':
    case 'TRACE':
    case 'PUT':
    case 'DELETE':
      return true;
    default:
      return false;
  }
}

export class UpstreamRetryPolicy implements RetryPolicy {
  readonly attempts: number;
  readonly perTryTimeout: number;
  /** Retries refused because the budget was spent (a counter for metrics). */
  budgetExhausted = 0;
  readonly #statuses = new Uint8Array(600);
  readonly #onConnect: boolean;
  readonly #onReset: boolean;
  readonly #onTimeout: boolean;
  readonly #anyMethod: boolean;
  readonly #percent: number;
  readonly #minConcurrency: number;
  readonly #load: UpstreamLoad;

  constructor(config: RetriesConfig, load: UpstreamLoad) {
    this.attempts = config.attempts;
    this.perTryTimeout = config.perTryTimeout;
    let connect = false;
    let reset = false;
    let timeout = false;
    for (const on of config.on) {
      if (on === 'connect-failure') connect = true;
      else if (on === 'reset') reset = true;
      else if (on === 'timeout') timeout = true;
      else this.#statuses[on] = 1;
    }
    this.#onConnect = connect;
    this.#onReset = reset;
    this.#onTimeout = timeout;
    this.#anyMethod = config.nonIdempotent;
    this.#percent = config.budget.percent / 100;
    this.#minConcurrency = config.budget.minConcurrency;
    this.#load = load;
  }

  canRetry(method: string, outcome: AttemptOutcome, attempt: number): boolean {
    if (attempt >= this.attempts) return false;
    let wanted: boolean;
    switch (outcome.kind) {
      case 'connect-failure':
        // Nothing reached the target, so any method is safe to send elsewhere.
        wanted = this.#onConnect;
        break;
      case 'reset':
        wanted = this.#onReset && (this.#anyMethod || isIdempotent(method));
        break;
      case 'timeout':
        wanted = this.#onTimeout && (this.#anyMethod || isIdempotent(method));
        break;
      case 'response':
        wanted = this.#statuses[outcome.status] === 1 && (this.#anyMethod || isIdempotent(method));
        break;
      default:
        wanted = false;
    }
    if (!wanted) return false;
    const load = this.#load;
    if (load.retries >= Math.max(this.#minConcurrency, load.active * this.#percent)) {
      this.budgetExhausted++;
      return false;
    }
    return true;
  }
}
