/**
 * @module A `tcp` listener: a pure L4 load balancer. Each client connection goes to one target of one
 * pool, bytes piped both ways with half-close; see session.ts for the steps.
 *
 * ```ts
 * const l = await startTcpListener({ name: 'pg', host: '0.0.0.0', port: 6432, pool: () => pools.get('pg')!,
 *   connectTimeoutMs: 5000, idleTimeoutMs: 60000, maxConnections: 0, log });
 * l.setPool(() => next.get('pg')!);   // reload: the listening socket stays
 * await l.drain(30_000);
 * ```
 */
import type { Pool } from '../upstream/types.ts';
import { compileTcp } from './plan.ts';
import { bindListener } from './server.ts';
import type { TcpListener, TcpListenerOptions, TcpSettings } from './types.ts';

/** Binds the listener and starts accepting. Rejects if the settings are invalid or the port is taken. */
export async function startTcpListener(options: TcpListenerOptions): Promise<TcpListener> {
  let settings: TcpSettings = options;
  return bindListener(options, compileTcp(options.name, options), (server) => ({
    update(next: TcpSettings): void {
      server.current = compileTcp(options.name, next);
      settings = next;
    },
    setPool(pool: () => Pool): void {
      settings = { ...settings, pool };
      server.current = compileTcp(options.name, settings);
    },
  }));
}
