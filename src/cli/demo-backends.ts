/**
 * @module Small demo services for `portico demo`: three replicas of a users service and an orders service,
 * each on a free loopback port. They answer JSON that says which replica served the request.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DemoBackend {
  readonly name: string;
  readonly port: number;
  readonly server: Server;
}

function json(status: number, body: unknown): { status: number; text: string } {
  return { status, text: JSON.stringify(body) };
}

async function start(name: string, answer: (path: string) => { status: number; text: string }): Promise<DemoBackend> {
  const server = createServer((req, res) => {
    const { status, text } = answer(req.url ?? '/');
    res.writeHead(status, { 'content-type': 'application/json', 'x-powered-by': 'demo', server: name });
    res.end(text);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { name, port: (server.address() as AddressInfo).port, server };
}

export async function startDemoBackends(): Promise<DemoBackend[]> {
  const users = await Promise.all(
    [1, 2, 3].map((n) =>
      start(`users-${n}`, (path) => {
        if (path === '/healthz') return json(200, { ok: true });
        const id = /^\/v1\/users\/([^/?]+)/.exec(path)?.[1];
        return json(200, { service: 'users', replica: n, path, user: id ? { id, name: `user ${id}` } : undefined });
      }),
    ),
  );
  const orders = await start('orders', (path) =>
    json(200, {
      service: 'orders',
      path,
      orders: [
        { id: 1, item: 'book' },
        { id: 2, item: 'lamp' },
      ],
    }),
  );
  return [...users, orders];
}
