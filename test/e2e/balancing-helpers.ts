/**
 * @module Helpers for the load-balancing end-to-end tests: named replicas (real node:http servers on
 * 127.0.0.1:0) that can answer, hold requests, fail, be killed and come back on the same port; a client that
 * says which replica served it; and bounded polling and worker loops.
 */
import { once } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { type PorticoProcess, startPortico } from '../helpers/portico.ts';

/** What a replica does with a proxied (non-health-check) request. */
export type Mode = 'ok' | 'hold' | number;

export interface Replica {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  /** Proxied requests seen (health checks excluded), in order, with the health checks seen before each. */
  readonly hits: { method: string; path: string; host: string; checksBefore: number }[];
  /** Health checks (`GET /healthz`) seen. */
  checks: number;
  /** `ok` answers 200 with the name; `hold` keeps the request until `release`; a number answers that status. */
  mode: Mode;
  /** Requests kept by `hold`. */
  readonly held: ServerResponse[];
  /** Answers every held request with `status` (the replica's name as body). */
  release(status?: number): void;
  /** Stops listening and drops every connection, so in-flight requests are reset. */
  kill(): Promise<void>;
  /** Listens again on the same port (after `kill`). */
  restart(): Promise<void>;
  readonly alive: boolean;
  close(): Promise<void>;
}

function answer(res: ServerResponse, status: number, name: string): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(name), 'x-replica': name });
  res.end(name);
}

/**
 * A replica named `name`. `hosts` are the loopback addresses it listens on (all on one port; the first
 * picks the port); a host that cannot be bound (no IPv6) is skipped.
 */
export async function startReplica(name: string, hosts: readonly string[] = ['127.0.0.1']): Promise<Replica> {
  const hits: Replica['hits'] = [];
  const held: ServerResponse[] = [];
  const sockets = new Set<Socket>();
  let servers: http.Server[] = [];
  let port = 0;

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/healthz') {
      replica.checks++;
      answer(res, 200, name);
      return;
    }
    hits.push({
      method: req.method ?? '',
      path: req.url ?? '',
      host: req.headers.host ?? '',
      checksBefore: replica.checks,
    });
    req.resume();
    const mode = replica.mode;
    if (mode === 'hold') held.push(res);
    else answer(res, mode === 'ok' ? 200 : mode, name);
  };

  const listen = async () => {
    const started: http.Server[] = [];
    for (const host of hosts) {
      const server = http.createServer(handler);
      server.keepAliveTimeout = 30_000;
      server.on('connection', (s: Socket) => {
        sockets.add(s);
        s.once('close', () => sockets.delete(s));
      });
      try {
        server.listen(port, host);
        await once(server, 'listening');
      } catch (err) {
        if (started.length === 0) throw err;
        continue; // e.g. no ::1 on this machine
      }
      port = (server.address() as AddressInfo).port;
      started.push(server);
    }
    servers = started;
  };

  const stop = async () => {
    const closing = servers;
    servers = [];
    for (const res of held.splice(0)) res.destroy();
    for (const s of closing) s.closeAllConnections();
    for (const s of sockets) s.destroy();
    await Promise.all(
      closing.map((s) => {
        s.close();
        return once(s, 'close').catch(() => {});
      }),
    );
  };

  await listen();
  const replica: Replica = {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    hits,
    checks: 0,
    mode: 'ok',
    held,
    release(status = 200) {
      for (const res of held.splice(0)) answer(res, status, name);
    },
    kill: stop,
    restart: listen,
    get alive() {
      return servers.length > 0;
    },
    close: stop,
  };
  return replica;
}

/**
 * What one test started: registered in `t.after` before anything starts, so replicas are closed even when
 * Portico fails to start (a listening replica would keep the test process alive).
 */
export class Stage {
  readonly replicas: Replica[] = [];
  #portico: PorticoProcess | undefined;

  constructor(t: TestContext) {
    t.after(() => this.close());
  }

  async replica(name: string, hosts?: readonly string[]): Promise<Replica> {
    const r = await startReplica(name, hosts);
    this.replicas.push(r);
    return r;
  }

  async portico(yaml: string): Promise<PorticoProcess> {
    this.#portico = await startPortico(yaml);
    return this.#portico;
  }

  async close(): Promise<void> {
    const p = this.#portico;
    if (p !== undefined) {
      await p.stop();
      if (p.stderr !== '') console.error(`portico stderr:\n${p.stderr}`);
    }
    for (const r of this.replicas) await r.close();
  }
}

export interface Reply {
  readonly status: number;
  readonly body: string;
  /** Name of the replica that answered (`x-replica`), undefined for local replies. */
  readonly servedBy: string | undefined;
  readonly requestId: string;
  readonly contentType: string;
  readonly setCookie: string | undefined;
}

/** One request through Portico (keep-alive fetch). Never throws for an HTTP status. */
export async function send(
  url: string,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<Reply> {
  let res: Response;
  let body: string;
  try {
    res = await fetch(url, { method: init.method ?? 'GET', headers: init.headers });
    body = await res.text();
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    throw new Error(`${init.method ?? 'GET'} ${url} failed: ${String(cause ?? err)}`, { cause: err });
  }
  return {
    status: res.status,
    body,
    servedBy: res.headers.get('x-replica') ?? undefined,
    requestId: res.headers.get('x-request-id') ?? '',
    contentType: res.headers.get('content-type') ?? '',
    setCookie: res.headers.get('set-cookie') ?? undefined,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `everyMs` until it returns true; false after `tries` polls. */
export async function until(check: () => boolean | Promise<boolean>, tries = 200, everyMs = 25): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await sleep(everyMs);
  }
  return false;
}

/** Runs `perWorker` calls of `job(worker, i)` on each of `workers` concurrent workers. */
export async function workers(
  count: number,
  perWorker: number,
  job: (worker: number, i: number) => Promise<void>,
): Promise<void> {
  await Promise.all(
    Array.from({ length: count }, async (_, w) => {
      for (let i = 0; i < perWorker; i++) await job(w, i);
    }),
  );
}

/** How many times each value occurs. */
export function tally(values: readonly (string | undefined)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const v of values) out[String(v)] = (out[String(v)] ?? 0) + 1;
  return out;
}
