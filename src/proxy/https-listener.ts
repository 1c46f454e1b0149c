/**
 * @module The TLS front of an `https` listener: TLS 1.2+ termination, the certificate chosen by SNI from the
 * listener's CertStore, optional client certificates (mTLS), and ALPN: `h2` connections go to the HTTP/2
 * side, `http/1.1` (or no ALPN) to the same HTTP/1 server a plain listener uses, so both protocols share the
 * port and the request path. The TLS server is what listens; the HTTP servers never do.
 *
 * Plain HTTP sent to the TLS port is not TLS: OpenSSL fails the handshake at the first record and the
 * connection is closed at once, without an answer (nginx and Caddy answer a plain-text 400 instead).
 */
import type { Server as HttpServer } from 'node:http';
import type { Http2Server } from 'node:http2';
import type { Socket } from 'node:net';
import { createServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import type { ListenerConfig } from '../config/schema.ts';
import type { CertStore } from './tls/cert-store.ts';

/** ALPN ids offered, best first. */
const ALPN_H2 = ['h2', 'http/1.1'];
const ALPN_H1 = ['http/1.1'];

/** What the front reports: a handshake that timed out. */
export type TlsFrontEvent = (code: string, socket: Socket) => void;

export function createTlsFront(
  config: ListenerConfig,
  store: CertStore,
  http1: HttpServer,
  h2: Http2Server | undefined,
  onClientError: TlsFrontEvent = () => {},
): TlsServer {
  const clientAuth = config.tls?.clientAuth;
  // A client that never finishes its handshake holds a socket: it gets the headers timeout.
  const handshakeMs = config.limits.headersTimeout || 120_000;
  const server = createServer(
    {
      ...store.defaultOptions,
      SNICallback: store.sniCallback,
      ALPNProtocols: h2 === undefined ? ALPN_H1 : ALPN_H2,
      requestCert: clientAuth !== undefined,
      rejectUnauthorized: clientAuth?.required ?? false,
      handshakeTimeout: handshakeMs,
      noDelay: true,
    } as Parameters<typeof createServer>[0],
    (socket: TLSSocket) => {
      if (h2 !== undefined && socket.alpnProtocol === 'h2') h2.emit('connection', socket);
      else http1.emit('connection', socket);
    },
  );
  // Node ends a handshake that fails in OpenSSL (bad record, no shared cipher or protocol, a missing client
  // certificate) itself, but only reports one that timed out (a client that stalls mid-handshake, or sends
  // part of a record): the socket must be destroyed here, or it stays open for good.
  server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
    if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') onClientError('tls_handshake_timeout', socket);
    socket.destroy();
  });
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
