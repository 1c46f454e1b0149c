/**
 * @module The TLS front of an `https` listener: TLS 1.2+ termination, the certificate chosen by SNI from the
 * listener's CertStore, optional client certificates (mTLS), and ALPN: `h2` connections go to the HTTP/2
 * side, `http/1.1` (or no ALPN) to the same HTTP/1 server a plain listener uses, so both protocols share the
 * port and the request path. The TLS server is what listens; the HTTP servers never do.
 */
import type { Server as HttpServer } from 'node:http';
import type { Http2Server } from 'node:http2';
import { createServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import type { ListenerConfig } from '../config/schema.ts';
import type { CertStore } from './tls/cert-store.ts';

/** ALPN ids offered, best first. */
const ALPN_H2 = ['h2', 'http/1.1'];
const ALPN_H1 = ['http/1.1'];

export function createTlsFront(
  config: ListenerConfig,
  store: CertStore,
  http1: HttpServer,
  h2: Http2Server | undefined,
): TlsServer {
  const clientAuth = config.tls?.clientAuth;
  const server = createServer(
    {
      ...store.defaultOptions,
      SNICallback: store.sniCallback,
      ALPNProtocols: h2 === undefined ? ALPN_H1 : ALPN_H2,
      requestCert: clientAuth !== undefined,
      rejectUnauthorized: clientAuth?.required ?? false,
      // A client that never finishes its handshake holds a socket: give it the headers timeout.
      handshakeTimeout: config.limits.headersTimeout || 120_000,
      noDelay: true,
    } as Parameters<typeof createServer>[0],
    (socket: TLSSocket) => {
      if (h2 !== undefined && socket.alpnProtocol === 'h2') h2.emit('connection', socket);
      else http1.emit('connection', socket);
    },
  );
  // Failed handshakes (bad client certificate, no shared cipher, scanners) close the socket; Node does it.
  server.on('tlsClientError', () => {});
  store.attach(server);
  return server;
}

/** A reload changed `clientAuth`: new handshakes follow it (the CA itself lives in the CertStore's contexts). */
export function applyClientAuth(server: TlsServer, config: ListenerConfig): void {
  const clientAuth = config.tls?.clientAuth;
  const s = server as TlsServer & { requestCert: boolean; rejectUnauthorized: boolean };
  s.requestCert = clientAuth !== undefined;
  s.rejectUnauthorized = clientAuth?.required ?? false;
}
