/**
 * @module A real node:http upstream that answers from a script: each request takes the next step (a status,
 * a connection reset, or a delay before either); when the script runs out, the `then` step repeats.
 * Used by health, retry and outlier tests (Traefik healthcheck/mock_test.go).
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Step =
  | { readonly status: number; readonly body?: string; readonly delayMs?: number }
  | { readonly reset: true; readonly delayMs?: number };

export interface ScriptedUpstream {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `127.0.0.1:<port>` */
  readonly address: string;
  /** Requests seen, in order: method and path. */
  readonly requests: { method: string; path: string; host: string }[];
  /** Replaces the remaining script (and optionally the fallback step). */
  script(steps: readonly Step[], then?: Step): void;
  close(): Promise<void>;
}

export async function startScriptedUpstream(
  steps: readonly Step[] = [],
  then: Step = { status: 200 },
): Promise<ScriptedUpstream> {
  let queue = [...steps];
  let fallback = then;
  const requests: ScriptedUpstream['requests'] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', host: req.headers.host ?? '' });
    const step = queue.shift() ?? fallback;
    const act = () => {
      if ('reset' in step) {
        req.socket.resetAndDestroy();
        return;
      }
      const body = step.body ?? `status ${step.status}\n`;
      res.writeHead(step.status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (step.delayMs === undefined) act();
    else {
      const timer = setTimeout(() => {
        timers.delete(timer);
        act();
      }, step.delayMs);
      timers.add(timer);
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    address: `127.0.0.1:${port}`,
    requests,
    script(next, nextThen) {
      queue = [...next];
      if (nextThen !== undefined) fallback = nextThen;
    },
    async close() {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      if (!server.listening) return;
      server.close();
      await once(server, 'close');
    },
  };
}
