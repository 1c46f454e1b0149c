/**
 * @module The admin API's HTTP server on `admin.address` (node:http).
 *
 * It has no authentication: anyone who reaches it can read the config (secrets redacted), purge the cache
 * and reload. Keep it on loopback (an address with no host, `:9901`, binds 127.0.0.1 here) or behind a
 * firewall; never expose it. It outlives config generations: a reload that changes the address moves it.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../observe/logger.ts';
import { type AdminView, ENDPOINTS, problem } from './endpoints.ts';

export type { AdminView } from './endpoints.ts';

export class AdminServer {
  readonly #view: AdminView;
  readonly #log: Logger;
  #server: Server | undefined = undefined;
  /** The configured address the server listens on (as written in the config). */
  #address: string | undefined = undefined;

  constructor(view: AdminView, log: Logger) {
    this.#view = view;
    this.#log = log;
  }

  /** `host:port` actually bound (the real port when 0 was asked for), or undefined when closed. */
  get address(): string | undefined {
    const a = this.#server?.address() as AddressInfo | null | undefined;
    if (a === undefined || a === null) return undefined;
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }

  /**
   * Listens on `address`, moves there from the current one, or closes when it is undefined. The new
   * socket is opened before the old one closes; if it cannot be opened, the old one stays and this throws.
   */
  async apply(address: string | undefined): Promise<void> {
    if (address === this.#address) return;
    const previous = this.#server;
    if (address !== undefined) {
      this.#server = await this.#listen(address);
    } else {
      this.#server = undefined;
    }
    this.#address = address;
    if (previous !== undefined) await closeServer(previous);
  }

  /** `apply` for reloads: the new config is already live, so a failure is logged, not thrown. */
  async reapply(address: string | undefined): Promise<void> {
    try {
      await this.apply(address);
    } catch (err) {
      this.#log.error({ msg: 'admin API cannot move; it stays where it was', address, error: String(err) });
    }
  }

  async close(): Promise<void> {
    await this.apply(undefined);
  }

  async #listen(address: string): Promise<Server> {
    const i = address.lastIndexOf(':');
    const host = address.slice(0, i).replace(/^\[|\]$/g, '') || '127.0.0.1';
    const port = Number(address.slice(i + 1));
    const server = createServer((req, res) => this.#handle(req, res));
    server.keepAliveTimeout = 5000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 30_000;
    server.listen({ host, port });
    await Promise.race([
      once(server, 'listening'),
      once(server, 'error').then(([err]) => {
        throw err;
      }),
    ]);
    server.on('error', (err) => this.#log.error({ msg: 'admin API error', error: String(err) }));
    return server;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const methods = Object.hasOwn(ENDPOINTS, path) ? ENDPOINTS[path]! : undefined;
    if (methods === undefined) {
      problem(res, 404, 'GW_ROUTE_NOT_FOUND', `no admin endpoint ${path}`);
      return;
    }
    const handler = Object.hasOwn(methods, req.method!) ? methods[req.method!]! : undefined;
    if (handler === undefined) {
      res.setHeader('allow', Object.keys(methods).join(', '));
      problem(res, 405, 'GW_METHOD_NOT_ALLOWED', `${path} takes ${Object.keys(methods).join(', ')}`);
      return;
    }
    Promise.resolve()
      .then(() => handler(this.#view, req, res))
      .catch((err: unknown) => {
        this.#log.error({ msg: 'admin request failed', path, error: String(err) });
        if (!res.headersSent) problem(res, 500, 'GW_INTERNAL', String(err));
        else res.destroy();
      });
  }
}

async function closeServer(server: Server): Promise<void> {
  const closed = once(server, 'close');
  server.close();
  server.closeAllConnections();
  await closed;
}
