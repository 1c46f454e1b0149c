/** @module Builders for rate-limit and quota tests: an Exchange, PolicyDeps with a settable clock and a log. */

import type { Consumer, Exchange, Policy, PolicyDeps, PolicyFactory, Verdict } from '../../../../src/gateway/types.ts';
import type { Store } from '../../../../src/state/types.ts';

export interface TestDeps extends PolicyDeps {
  clock: { now: number };
  logs: { level: 'warn' | 'info'; obj: object; msg?: string }[];
}

/** `clock` may be shared with the store (createMemoryStore({ now: () => clock.now })). */
export function testDeps(store: Store, now = Date.UTC(2030, 0, 15, 12, 0, 0), clock = { now }): TestDeps {
  const logs: TestDeps['logs'] = [];
  return {
    clock,
    logs,
    store,
    now: () => clock.now,
    consumers: {
      byApiKey: () => undefined,
      byBasic: async () => undefined,
      byName: () => undefined,
    },
    log: {
      warn: (obj, msg) => logs.push({ level: 'warn', obj, msg }),
      info: (obj, msg) => logs.push({ level: 'info', obj, msg }),
    },
  };
}

export function consumer(name: string, groups: string[] = []): Consumer {
  return { name, groups, metadata: {} };
}

export interface ExchangeInit {
  consumer?: Consumer;
  ip?: string;
  route?: string;
  headers?: Record<string, string>;
  claims?: Record<string, unknown>;
}

export function exchange(init: ExchangeInit = {}): Exchange {
  return {
    id: 'req-1',
    routeName: init.route ?? 'r1',
    params: {},
    client: { address: init.ip ?? '127.0.0.1', port: 5000, tls: false },
    request: { method: 'GET', path: '/', query: '', headers: { ...init.headers } },
    consumer: init.consumer,
    claims: init.claims,
    replyHeaders: {},
    state: new Map(),
    now: () => Date.now(),
  };
}

/** Parses (asserting success) and creates a policy. */
export function build<C>(factory: PolicyFactory<C>, raw: unknown, deps: PolicyDeps, name = 'rl'): Policy {
  const parsed = factory.parse(raw);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return factory.create(name, parsed.config, deps);
}

export async function run(policy: Policy, ex: Exchange): Promise<Verdict> {
  return policy.onRequest!(ex);
}

/** Status of the verdict: 200 for continue. */
export async function statusOf(policy: Policy, ex: Exchange = exchange()): Promise<number> {
  const v = await run(policy, ex);
  return v.kind === 'continue' ? 200 : v.kind === 'reply' ? v.reply.status : v.status;
}
