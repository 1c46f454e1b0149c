/**
 * @module An origin whose answer to each path is scripted by the test, recording every request it received:
 * the upstream of the cache conformance tests (RFC 9111), where what the origin saw is the point.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { startUpstream, type TestServer } from './http.ts';

export interface Reply {
  readonly status?: number;
  readonly headers?: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly body?: string;
}

/** What the origin does for one request (`n` counts from 1 per path): a reply, a reset, or its own handling. */
export type Script = (req: IncomingMessage, n: number) => Reply | 'reset' | ((res: ServerResponse) => void);

/** A response as a client saw it. */
export interface Got {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export const HOUR = 3_600_000;
export const httpDate = (offsetMs = 0): string => new Date(Date.now() + offsetMs).toUTCString();
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ScriptedOrigin {
  readonly url: string;
  /** Scripts the answers for `path` (query included). */
  on(path: string, script: Script): void;
  /** How many requests for `path` the origin received. */
  count(path: string): number;
  /** The last request for `path`. */
  last(path: string): IncomingMessage | undefined;
  close(): Promise<void>;
}

/** Starts the origin; a path without a script gets a 404. */
export async function startScriptedOrigin(): Promise<ScriptedOrigin> {
  const scripts = new Map<string, Script>();
  const seen = new Map<string, IncomingMessage[]>();
  const server: TestServer = await startUpstream((req, res) => {
    const path = req.url!;
    const list = seen.get(path) ?? [];
    list.push(req);
    seen.set(path, list);
    const script = scripts.get(path);
    const out = script === undefined ? { status: 404, body: 'no script' } : script(req, list.length);
    if (out === 'reset') {
      req.socket.destroy();
      return;
    }
    if (typeof out === 'function') {
      out(res);
      return;
    }
    res.writeHead(out.status ?? 200, { 'content-type': 'text/plain', ...out.headers } as OutgoingHttpHeaders);
    res.end(out.body ?? '');
  });
  return {
    url: server.url,
    on: (path, script) => {
      scripts.set(path, script);
    },
    count: (path) => seen.get(path)?.length ?? 0,
    last: (path) => seen.get(path)?.at(-1),
    close: () => server.close(),
  };
}
