/**
 * @module A `tls` listener: routes TLS connections by server name (SNI) to pools.
 *
 * `passthrough` reads only the ClientHello (never decrypts) and replays it to the target, so the target
 * holds the certificate. `terminate` runs the TLS handshake here (certificate picked by SNI) and sends
 * the decrypted bytes to a plain TCP pool. Both accept a PROXY header first when configured.
 */
import { compileTls } from './plan.ts';
import { bindListener } from './server.ts';
import type { TlsListener, TlsListenerOptions, TlsSettings } from './types.ts';

/** Binds the listener and starts accepting. Rejects if the settings are invalid or the port is taken. */
export async function startTlsListener(options: TlsListenerOptions): Promise<TlsListener> {
  return bindListener(options, compileTls(options.name, options), (server) => ({
    update(next: TlsSettings): void {
      server.current = compileTls(options.name, next);
    },
  }));
}
