/** @module A pool of targets for one upstream (minimal round-robin; the balancer issue grows this). */
import type { UpstreamConfig } from '../config/schema.ts';
import type { AttemptOutcome, PickHint, Pool, Target } from './types.ts';

class SimpleTarget implements Target {
  readonly key: string;
  readonly origin: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  active = 0;
  constructor(key: string, origin: string, host: string, port: number, weight: number) {
    this.key = key;
    this.origin = origin;
    this.host = host;
    this.port = port;
    this.weight = weight;
  }
  available(): boolean {
    return true;
  }
}

export function createPool(config: UpstreamConfig): Pool {
  const targets = config.targets.map((t) => {
    if (t.url !== undefined) {
      const u = new URL(t.url);
      const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
      return new SimpleTarget(u.origin, u.origin, u.hostname.replace(/^\[|\]$/g, ''), port, t.weight);
    }
    const i = t.address!.lastIndexOf(':');
    const host = t.address!.slice(0, i).replace(/^\[|\]$/g, '');
    return new SimpleTarget(t.address!, '', host, Number(t.address!.slice(i + 1)), t.weight);
  });
  let cursor = 0;
  return {
    name: config.name,
    targets,
    pick(hint: PickHint): Target | undefined {
      for (let n = 0; n < targets.length; n++) {
        const t = targets[cursor++ % targets.length]!;
        if (t.available() && !hint.exclude?.has(t)) return t;
      }
      return undefined;
    },
    begin(target: Target) {
      const t = target as SimpleTarget;
      t.active++;
      return (_outcome: AttemptOutcome) => {
        t.active--;
      };
    },
  };
}
