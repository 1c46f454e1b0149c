/** @module Helpers for pool tests: parsed upstream configs, a hand-driven clock, bounded waiting. */
import type { UpstreamConfig } from '../../../src/config/schema.ts';
import { upstream } from '../../../src/upstream/schema.ts';

/** Parses an upstream config the way the loader does (defaults filled, units in ms). */
export function upstreamConfig(raw: Record<string, unknown>): UpstreamConfig {
  return upstream.parse({ name: 'up', ...raw }) as UpstreamConfig;
}

export class ManualClock {
  ms = 1_000_000;
  readonly now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** Waits (bounded: 400 turns of 10 ms) until `cond` holds; fails the test otherwise. */
export async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}
