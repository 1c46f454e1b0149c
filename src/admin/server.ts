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
    // HEAD is GET without the body (node:http drops it), as RFC 9110 §9.3.2 asks of every GET resource.
    const method = req.method === 'HEAD' && Object.hasOwn(methods, 'GET') ? 'GET' : req.method!;
    const handler = Object.hasOwn(methods, method) ? methods[method]! : undefined;
    if (handler === undefined) {
      const allow = Object.hasOwn(methods, 'GET') ? [...Object.keys(methods), 'HEAD'] : Object.keys(methods);
      res.setHeader('allow', allow.join(', '));
      problem(res, 405, 'GW_METHOD_NOT_ALLOWED', `${path} takes ${allow.join(', ')}`);
      return;
    }
    if (method !== 'GET' && fromBrowser(req)) {
      problem(res, 403, 'GW_FORBIDDEN', 'the admin API does not take state-changing requests from web pages');
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

/**
 * A request a web page made (Origin, or Fetch metadata other than a user-typed URL). The API has no
 * credentials, so without this any page open in a browser on the same host could POST a "simple request"
 * (text/plain or form body, no preflight) to reload or purge; DNS rebinding gets past same-origin, not Origin.
 * curl, scripts and Prometheus send neither header.
 */
function fromBrowser(req: IncomingMessage): boolean {
  if (req.headers.origin !== undefined) return true;
  const site = req.headers['sec-fetch-site'];
  return site !== undefined && site !== 'none';
}

async function closeServer(server: Server): Promise<void> {
  const closed = once(server, 'close');
  server.close();
  server.closeAllConnections();
  await closed;
}
