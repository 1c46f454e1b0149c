/** @module Test helpers for gateway unit tests: a plain Exchange and PolicyDeps over real components. */
import type { IncomingHttpHeaders } from 'node:http';
import { createConsumerDirectory } from '../../../src/gateway/consumers.ts';
import { consumer as consumerSchema } from '../../../src/gateway/schema.ts';
import type { ClientInfo, Exchange, Policy, PolicyDeps, PolicyFactory, Verdict } from '../../../src/gateway/types.ts';
import type { Store } from '../../../src/state/types.ts';

export interface ExchangeInit {
  method?: string;
  path?: string;
  query?: string;
  headers?: IncomingHttpHeaders;
  client?: Partial<ClientInfo>;
  params?: Record<string, string>;
  now?: () => number;
}

export function exchangeForTest(init: ExchangeInit = {}): Exchange {
  return {
    id: 'req-1',
    routeName: 'test-route',
    params: init.params ?? {},
    client: { address: '127.0.0.1', port: 50000, tls: false, ...init.client },
    request: {
      method: init.method ?? 'GET',
      path: init.path ?? '/',
      query: init.query ?? '',
      headers: init.headers ?? {},
    },
    replyHeaders: {},
    state: new Map(),
    now: init.now ?? Date.now,
  };
}

export interface LogLine {
  level: string;
  obj: object;
  msg?: string;
}

/** Deps with a directory built from raw consumer configs (checked by the real schema). */
export function depsForTest(
  consumers: unknown[] = [],
  now: () => number = Date.now,
): PolicyDeps & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  return {
    consumers: createConsumerDirectory(consumers.map((c) => consumerSchema.parse(c))),
    store: undefined as unknown as Store,
    now,
    log: {
      warn: (obj, msg) => lines.push({ level: 'warn', obj, msg }),
      info: (obj, msg) => lines.push({ level: 'info', obj, msg }),
    },
    lines,
  };
}

/** parse + create, failing loudly on parse issues. */
export function createForTest<C>(factory: PolicyFactory<C>, raw: unknown, deps: PolicyDeps, name = 'p'): Policy {
  const parsed = factory.parse(raw);
  if (!parsed.ok) throw new Error(`parse failed: ${JSON.stringify(parsed.issues)}`);
  return factory.create(name, parsed.config, deps);
}

export async function run(policy: Policy, ex: Exchange): Promise<Verdict> {
  return policy.onRequest!(ex);
}

/** Status and code of a verdict ('continue' for continue). */
export function outcome(v: Verdict): string {
  if (v.kind === 'continue') return 'continue';
  if (v.kind === 'reply') return `${v.reply.status} ${v.reply.code} ${v.reply.details}`;
  return `respond ${v.status}`;
}
