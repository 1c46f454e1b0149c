/**
 * @module The listening socket shared by tcp and tls listeners: accepts, counts and limits connections,
 * hands each one to the current plan, and drains on shutdown. The plan is a field that a reload replaces;
 * the listening socket itself is never re-bound (Traefik's SwitchRouter).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { type Plan, runSession } from './session.ts';
import type { L4Listener, L4Log, ListenOptions } from './types.ts';

export interface CurrentPlan {
  readonly plan: Plan;
  readonly maxConnections: number;
  readonly log: L4Log;
}

/** Owns the net.Server. `current` is read once per accepted connection. */
export class L4Server {
  readonly name: string;
  current: CurrentPlan;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #idle: (() => void) | undefined;
  /** One 'close' listener shared by every connection (`this` is the socket): no closure per connection. */
  readonly #forget: (this: Socket) => void;

  constructor(name: string, current: CurrentPlan) {
    this.name = name;
    this.current = current;
    // pauseOnConnect: nothing is read until the session knows where bytes go (they stay in the kernel).
    this.#server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, (socket) =>
      this.#accept(socket),
    );
    const server = this;
    this.#forget = function (this: Socket): void {
      server.#sockets.delete(this);
      if (server.#sockets.size === 0) server.#idle?.();
    };
    this.#server.on('error', (err) =>
      this.current.log.error({ listener: name, err: err.message }, 'l4 listener error'),
    );
  }

  get connections(): number {
    return this.#sockets.size;
  }

  listen(host: string, port: number, reusePort: boolean): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#server.once('error', onError);
      this.#server.listen({ host, port, reusePort }, () => {
        this.#server.off('error', onError);
        const a = this.#server.address();
        resolve(typeof a === 'object' && a !== null ? { host: a.address, port: a.port } : { host, port });
      });
    });
  }

  #accept(socket: Socket): void {
    const current = this.current;
    if (current.maxConnections > 0 && this.#sockets.size >= current.maxConnections) {
      current.log.warn({ listener: this.name, limit: current.maxConnections }, 'l4 connection limit reached');
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.on('close', this.#forget);
    void runSession(socket, current.plan);
  }

  close(): Promise<void> {
    if (!this.#server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      // server.close's callback waits for every connection; "stopped accepting" is known at once.
      this.#server.close();
      setImmediate(resolve);
    });
  }

  async drain(deadlineMs: number): Promise<void> {
    await this.close();
    if (this.#sockets.size === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        for (const s of this.#sockets) s.destroy();
      }, deadlineMs);
      this.#idle = () => {
        clearTimeout(timer);
        this.#idle = undefined;
        resolve();
      };
    });
  }
}

/**
 * Binds a server for a tcp or tls listener and returns its handle: the parts every kind shares, plus the
 * kind's own methods (`update`, ...) made by `own` over the bound server.
 */
export async function bindListener<T extends object>(
  options: ListenOptions,
  current: CurrentPlan,
  own: (server: L4Server) => T,
): Promise<Omit<L4Listener, 'update'> & T> {
  const server = new L4Server(options.name, current);
  const address = await server.listen(options.host, options.port, options.reusePort ?? false);
  return {
    ...own(server),
    name: options.name,
    address,
    get connections() {
      return server.connections;
    },
    close: () => server.close(),
    drain: (deadlineMs: number) => server.drain(deadlineMs),
  };
}
