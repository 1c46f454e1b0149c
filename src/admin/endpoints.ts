/**
 * @module The admin API's endpoints: one small function each, looked up by path then method. Bodies are
 * JSON (at most 64 KiB); errors are problem+json with a code from src/errors.ts and, since only operators
 * reach this API, a `detail` when it helps.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config/schema.ts';
import { ConfigError, ERROR_CODES, type ErrorCode } from '../errors.ts';
import type { MetricSources, Metrics } from '../observe/metrics.ts';
import { targetState } from '../observe/metrics.ts';
import type { Cache } from '../proxy/cache/cache.ts';
import { redactConfig } from './redact.ts';

/** What the admin API reads from and asks of the running server (Runtime.adminView()). */
export interface AdminView extends MetricSources {
  readonly metrics: Metrics;
  /** The running config (undefined before the first generation is live). */
  config(): Config | undefined;
  /** The response cache of the running config. */
  cache(): Cache | undefined;
  /** Listeners are open and the server is not draining. */
  ready(): boolean;
  /** Shutting down: in-flight work finishes, nothing new is accepted. */
  draining(): boolean;
  /** Re-reads the config source and applies it (as SIGHUP does); throws ConfigError when it is invalid. */
  readonly reload: (() => Promise<void>) | undefined;
}

type Handler = (view: AdminView, req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

const MAX_BODY = 64 * 1024;

export const ENDPOINTS: Readonly<Record<string, Readonly<Record<string, Handler>>>> = {
  '/metrics': { GET: metrics },
  '/healthz': { GET: healthz },
  '/ready': { GET: ready },
  '/config': { GET: config },
  '/upstreams': { GET: upstreams },
  '/cache/purge': { POST: purge },
  '/reload': { POST: reload },
};

async function metrics(view: AdminView, _req: IncomingMessage, res: ServerResponse): Promise<void> {
  const text = await view.metrics.text();
  send(res, 200, view.metrics.contentType, text);
}

function healthz(view: AdminView, _req: IncomingMessage, res: ServerResponse): void {
  if (view.draining()) send(res, 503, 'text/plain; charset=utf-8', 'draining\n');
  else send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
}

function ready(view: AdminView, _req: IncomingMessage, res: ServerResponse): void {
  if (view.ready()) send(res, 200, 'text/plain; charset=utf-8', 'ready\n');
  else send(res, 503, 'text/plain; charset=utf-8', view.draining() ? 'draining\n' : 'not ready\n');
}

function config(view: AdminView, _req: IncomingMessage, res: ServerResponse): void {
  sendJson(res, 200, redactConfig(view.config() ?? null));
}

function upstreams(view: AdminView, _req: IncomingMessage, res: ServerResponse): void {
  const balance = new Map(view.config()?.upstreams.map((u) => [u.name, u.balance]));
  const list = [];
  for (const [name, pool] of view.pools() ?? []) {
    list.push({
      name,
      balance: balance.get(name),
      active: pool.load.active,
      overloaded: pool.load.overloaded,
      ejections: pool.outliers.ejected,
      targets: pool.targets.map((t) => ({
        key: t.key,
        state: targetState(t),
        weight: t.weight,
        active: t.active,
        ejections: t.ejections,
        consecutiveFailures: t.consecutiveFailures,
      })),
    });
  }
  sendJson(res, 200, { upstreams: list });
}

async function purge(view: AdminView, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readJson(req, res);
  if (body === undefined) return;
  const { key, prefix } = body as { key?: unknown; prefix?: unknown };
  const validKey = typeof key === 'string' && key !== '';
  const validPrefix = typeof prefix === 'string' && prefix !== '';
  if (validKey === validPrefix || (key !== undefined && !validKey) || (prefix !== undefined && !validPrefix)) {
    problem(res, 400, 'GW_BAD_REQUEST', 'give exactly one of "key" or "prefix", a non-empty string');
    return;
  }
  const cache = view.cache();
  if (cache === undefined) {
    problem(res, 503, 'GW_SHUTTING_DOWN', 'no running config');
    return;
  }
  const purged = validKey ? await cache.purge(key as string) : await cache.purgePrefix(prefix as string);
  sendJson(res, 200, { purged });
}

async function reload(view: AdminView, _req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (view.draining()) {
    problem(res, 503, 'GW_SHUTTING_DOWN', 'shutting down');
    return;
  }
  if (view.reload === undefined) {
    problem(res, 501, 'GW_INTERNAL', 'this server was started without a config source to reload from');
    return;
  }
  try {
    await view.reload();
  } catch (err) {
    if (err instanceof ConfigError) {
      const errors = err.issues.map((i) => ({ path: i.path, line: i.line, column: i.column, message: i.message }));
      problem(res, 400, 'GW_BAD_REQUEST', 'the config has errors; the running config is unchanged', { errors });
    } else {
      problem(res, 500, 'GW_INTERNAL', `reload failed: ${(err as Error).message ?? String(err)}`);
    }
    return;
  }
  sendJson(res, 200, { reloaded: true });
}

/** Reads a JSON object body; answers the error itself and returns undefined when it is not one. */
async function readJson(req: IncomingMessage, res: ServerResponse): Promise<object | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) {
      res.shouldKeepAlive = false;
      problem(res, 413, 'GW_BODY_TOO_LARGE', `bodies are limited to ${MAX_BODY} bytes`);
      return undefined;
    }
    chunks.push(chunk);
  }
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value;
  } catch {
    // reported below
  }
  problem(res, 400, 'GW_BAD_REQUEST', 'expected a JSON object');
  return undefined;
}

export function problem(
  res: ServerResponse,
  status: number,
  code: ErrorCode,
  detail: string,
  extra: Record<string, unknown> = {},
): void {
  const body = { status, title: ERROR_CODES[code].title, code, detail, requestId: randomUUID(), ...extra };
  send(res, status, 'application/problem+json', JSON.stringify(body));
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json', `${JSON.stringify(value, null, 2)}\n`);
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  res.end(body);
}
