/**
 * @module The public shapes of the L4 listeners: their options (one object per config generation) and the
 * running listener handle the runtime keeps across reloads.
 */
import type { Pool } from '../upstream/types.ts';

/** The subset of a pino logger the L4 code uses (pino's Logger satisfies it). */
export interface L4Log {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ProxyProtocolOptions {
  /** Read a PROXY header (v1 or v2) from peers in these CIDRs; they must send one, others must not. */
  readonly accept?: { readonly trusted: readonly string[] };
  /** Send a PROXY header of this version to every target before the client's bytes. */
  readonly send?: 'v1' | 'v2';
}

/** What a reload may change. Read once per connection, so a swap affects only new connections. */
export interface L4CommonSettings {
  /** Per dial of one target; a failed or slow dial fails over to the next target. */
  readonly connectTimeoutMs: number;
  /** Longest silence in both directions before both sides are closed (0 disables). */
  readonly idleTimeoutMs: number;
  /** Open client connections above this are closed at once (0 = unlimited). */
  readonly maxConnections: number;
  /** Deadline to receive a PROXY header, a ClientHello or finish a TLS handshake. Default 10 s. */
  readonly handshakeTimeoutMs?: number;
  readonly proxyProtocol?: ProxyProtocolOptions;
  readonly log: L4Log;
}

export interface TcpSettings extends L4CommonSettings {
  /** The pool, read per connection (a reload can swap the function or the pool it returns). */
  readonly pool: () => Pool;
}

export interface TlsCertificate {
  /** PEM text (or Buffer) of the chain and its private key. */
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
}

export interface SniPoolRoute {
  /** Exact names and `*.example.com` wildcards. */
  readonly names: readonly string[];
  readonly pool: () => Pool;
}

export interface TlsSettings extends L4CommonSettings {
  /**
   * `passthrough`: read the ClientHello, route by SNI, forward the encrypted bytes untouched.
   * `terminate`: decrypt here (certificates chosen by SNI) and forward plain bytes to the pool.
   */
  readonly mode: 'passthrough' | 'terminate';
  /** Routes by server name; first listed wins on overlap. Used in both modes. */
  readonly sni: readonly SniPoolRoute[];
  /** Pool for names that match no route and for clients without SNI; without it they are closed. */
  readonly defaultPool?: () => Pool;
  /** Required for `terminate`: the first is the default; others are picked by their SAN/CN names. */
  readonly certificates?: readonly TlsCertificate[];
  /** Largest ClientHello buffered in passthrough mode. Default 16 KiB. */
  readonly maxClientHelloBytes?: number;
}

export interface ListenOptions {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  /** Let several workers bind the same port (SO_REUSEPORT, Linux). */
  readonly reusePort?: boolean;
}

export type TcpListenerOptions = ListenOptions & TcpSettings;
export type TlsListenerOptions = ListenOptions & TlsSettings;

/** A running L4 listener. The listening socket outlives reloads: `update` swaps the settings it reads. */
export interface L4Listener<S extends L4CommonSettings = L4CommonSettings> {
  readonly name: string;
  /** The bound address (the real port when 0 was asked for). */
  readonly address: { readonly host: string; readonly port: number };
  /** Client connections open right now. */
  readonly connections: number;
  /** Applies new settings to the connections accepted from now on. Throws (and keeps the old) if invalid. */
  update(settings: S): void;
  /** Stops accepting; resolves once the listening socket is closed. Open connections go on. */
  close(): Promise<void>;
  /** Stops accepting and waits for open connections; those left after `deadlineMs` are destroyed. */
  drain(deadlineMs: number): Promise<void>;
}

export interface TcpListener extends L4Listener<TcpSettings> {
  /** Shorthand for a reload that only swaps the pool. */
  setPool(pool: () => Pool): void;
}

export type TlsListener = L4Listener<TlsSettings>;
