/**
 * @module Test helper shared by the cors, transform and validate unit tests: builds an Exchange and
 * PolicyDeps directly (these policies do no network I/O).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Consumer, Exchange, PolicyDeps } from '../../../../src/gateway/types.ts';

export interface ExchangeInit {
  method?: string;
  path?: string;
  query?: string;
  headers?: IncomingHttpHeaders;
  params?: Record<string, string>;
  body?: string | Buffer;
  consumer?: Consumer;
  claims?: Record<string, unknown>;
}

export function makeExchange(init: ExchangeInit = {}): Exchange {
  const ex: Exchange = {
    id: 'req-1',
    routeName: 'test-route',
    params: init.params ?? {},
    client: { address: '127.0.0.1', port: 50000, tls: false },
    request: {
      method: init.method ?? 'GET',
      path: init.path ?? '/',
      query: init.query ?? '',
      headers: { ...init.headers },
    },
    replyHeaders: {},
    state: new Map(),
    now: () => 1_700_000_000_000,
  };
  if (init.body !== undefined) ex.body = Buffer.isBuffer(init.body) ? init.body : Buffer.from(init.body);
  if (init.consumer !== undefined) ex.consumer = init.consumer;
  if (init.claims !== undefined) ex.claims = init.claims;
  return ex;
}

/** Puts the exchange in the response phase with this upstream answer. */
export function respond(ex: Exchange, status: number, headers: OutgoingHttpHeaders = {}, body?: string): Exchange {
  ex.response = { status, headers: { ...headers } };
  if (body !== undefined) ex.responseBody = Buffer.from(body);
  return ex;
}

export interface TestDeps extends PolicyDeps {
  readonly warnings: object[];
}

export function makeDeps(): TestDeps {
  const warnings: object[] = [];
  return {
    warnings,
    consumers: {
      byApiKey: () => undefined,
      byBasic: async () => undefined,
      byName: () => undefined,
    },
    store: undefined as unknown as PolicyDeps['store'],
    now: () => 1_700_000_000_000,
    log: { warn: (obj) => warnings.push(obj), info: () => {} },
  };
}

/** Parses with the factory and fails the test with the issues when the options are rejected. */
export function parseOk<C>(
  factory: { parse(raw: unknown): { ok: true; config: C } | { ok: false; issues: unknown } },
  raw: unknown,
): C {
  const result = factory.parse(raw);
  if (!result.ok) throw new Error(`unexpected issues: ${JSON.stringify(result.issues)}`);
  return result.config;
}
