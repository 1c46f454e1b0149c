/**
 * @module A prom-client metric whose samples are computed at scrape time from plain counters.
 *
 * prom-client's own labelled `inc()` hashes and validates its label object on every call; Portico's data
 * path instead bumps numbers in preallocated arrays, and this object turns them into samples when
 * Prometheus asks. It has the shape prom-client's Registry reads (`name`, `help`, `type`, `get()`).
 */
import type { Metric, Registry } from 'prom-client';
import type { MetricSpec } from './metric-list.ts';

export interface Sample {
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
  /** For histograms: `<name>_bucket`, `<name>_sum` or `<name>_count`. */
  readonly metricName?: string;
}

export class ScrapeMetric {
  readonly name: string;
  readonly help: string;
  readonly type: MetricSpec['type'];
  readonly aggregator = 'sum';
  readonly #collect: () => Sample[];

  constructor(spec: MetricSpec, collect: () => Sample[]) {
    this.name = spec.name;
    this.help = spec.help;
    this.type = spec.type;
    this.#collect = collect;
  }

  get(): Promise<{ name: string; help: string; type: string; values: Sample[]; aggregator: string }> {
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.#collect(),
      aggregator: this.aggregator,
    });
  }

  /** Counters here only grow; the registry's resetMetrics() leaves them alone. */
  reset(): void {}

  register(registry: Registry): void {
    registry.registerMetric(this as unknown as Metric);
  }
}

/** Samples of one histogram series from non-cumulative bucket counts (the last slot is +Inf). */
export function histogramSamples(
  name: string,
  labels: Readonly<Record<string, string>>,
  bounds: readonly number[],
  counts: ArrayLike<number>,
  sum: number,
  out: Sample[],
): void {
  let cumulative = 0;
  for (let i = 0; i < bounds.length; i++) {
    cumulative += counts[i]!;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: bounds[i]! }, value: cumulative });
  }
  cumulative += counts[bounds.length]!;
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative });
  out.push({ metricName: `${name}_sum`, labels, value: sum });
  out.push({ metricName: `${name}_count`, labels, value: cumulative });
}
