/**
 * @module One client connection through an L4 listener, start to end:
 * PROXY header in (if configured) → front (plain, ClientHello peek, or TLS termination) → pool →
 * connect with failover → PROXY header out (if configured) → replay of peeked bytes → pipe both ways.
 *
 * The `Plan` is compiled once per config generation by tcp-listener.ts / tls-listener.ts; this file only
 * does per-connection work. Any failure before the pipe closes the client socket; nothing throws.
 */
import type { BlockList, Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import type { Pool } from '../upstream/types.ts';
import { connectWithFailover } from './connect.ts';
import { unmapIPv4 } from './ip.ts';
import { Bridge } from './pipe.ts';
import { preread } from './preread.ts';
import {
  type Endpoint,
  encodeProxyV1,
  encodeProxyV2,
  MAX_HEADER_LENGTH,
  type ProxyParseResult,
  parseProxyHeader,
} from './proxy-protocol.ts';
import { parseClientHello, type SniResult } from './sni.ts';
import type { SniRouter } from './sni-router.ts';
import type { L4Log } from './types.ts';

/** How the listener finds the pool for a connection. */
export type Front =
  | { readonly kind: 'tcp'; readonly pool: () => Pool }
  | { readonly kind: 'passthrough'; readonly router: SniRouter<() => Pool>; readonly maxHelloBytes: number }
  | {
      readonly kind: 'terminate';
      readonly router: SniRouter<() => Pool>;
      readonly defaultContext: SecureContext;
      /** Built once per generation: picks the certificate by server name. */
      readonly sniCallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void;
    };

/** Everything a connection needs, compiled once per config generation. */
export interface Plan {
  readonly listener: string;
  readonly log: L4Log;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
  /** Set when PROXY headers are accepted: peers in the list must send one, others must not. */
  readonly trusted: BlockList | undefined;
  readonly send: 'v1' | 'v2' | undefined;
  readonly front: Front;
}

function proxyParser(buf: Buffer): ProxyParseResult | undefined {
  const r = parseProxyHeader(buf);
  if (r.kind === 'need-more')
    return buf.length >= MAX_HEADER_LENGTH ? { kind: 'invalid', reason: 'too long' } : undefined;
  return r;
}

/** The client's address as a PROXY header or a log line names it (IPv4-mapped IPv6 unmapped). */
function peerOf(socket: Socket): Endpoint {
  return { address: unmapIPv4(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
}

function localOf(socket: Socket): Endpoint {
  return { address: unmapIPv4(socket.localAddress ?? ''), port: socket.localPort ?? 0 };
}

/**
 * Per-connection facts that only logs, hashing and PROXY headers need. Addresses cost a system call each,
 * so they are read on first use; a plain connection that logs nothing never reads them.
 */
class Conn {
  readonly socket: Socket;
  readonly listener: string;
  /** Set from a PROXY header received from a trusted peer. */
  client: Endpoint | undefined;
  local: Endpoint | undefined;
  upstream: string | undefined;
  target: string | undefined;
  readonly describe = (): Record<string, unknown> => {
    const c = this.clientEndpoint();
    const f: Record<string, unknown> = { listener: this.listener, client: `${c.address}:${c.port}` };
    if (this.upstream !== undefined) f.upstream = this.upstream;
    if (this.target !== undefined) f.target = this.target;
    return f;
  };

  constructor(socket: Socket, listener: string) {
    this.socket = socket;
    this.listener = listener;
  }

  clientEndpoint(): Endpoint {
    this.client ??= peerOf(this.socket);
    return this.client;
  }

  localEndpoint(): Endpoint {
    this.local ??= localOf(this.socket);
    return this.local;
  }
}

/** Runs one connection. Never rejects. */
export async function runSession(socket: Socket, plan: Plan): Promise<void> {
  const log = plan.log;
  // Errors before the pipe owns the socket: just let it close.
  socket.on('error', noop);
  const conn = new Conn(socket, plan.listener);
  let pending: Buffer | undefined;
  let rejectProxyHeader = false;

  if (plan.trusted !== undefined) {
    const family = socket.remoteFamily === 'IPv6' ? 'ipv6' : 'ipv4';
    if (plan.trusted.check(socket.remoteAddress ?? '', family)) {
      const r = await preread(socket, undefined, proxyParser, plan.handshakeTimeoutMs);
      if (r.kind !== 'parsed' || r.result.kind !== 'header') {
        const why = r.kind === 'parsed' && r.result.kind === 'invalid' ? r.result.reason : r.kind;
        log.warn({ ...conn.describe(), reason: why }, 'l4 missing or bad PROXY header from trusted peer');
        socket.destroy();
        return;
      }
      const { header, length } = r.result;
      if (header.command === 'proxy' && header.source !== undefined && header.destination !== undefined) {
        conn.client = header.source;
        conn.local = header.destination;
      }
      if (r.buffered.length > length) pending = r.buffered.subarray(length);
    } else rejectProxyHeader = true;
  }

  let stream: Socket = socket;
  let poolRef: (() => Pool) | undefined;
  let serverName: string | undefined;
  const front = plan.front;
  if (front.kind === 'tcp') poolRef = front.pool;
  else if (front.kind === 'passthrough') {
    const max = front.maxHelloBytes;
    const parse = (buf: Buffer): SniResult | undefined => {
      const h = parseClientHello(buf, max);
      return h.kind === 'need-more' ? undefined : h;
    };
    const r = await preread(socket, pending, parse, plan.handshakeTimeoutMs);
    if (r.kind !== 'parsed' || r.result.kind !== 'client-hello') {
      const why = r.kind === 'parsed' && r.result.kind === 'invalid' ? r.result.reason : r.kind;
      log.debug({ ...conn.describe(), reason: why }, 'l4 no ClientHello');
      socket.destroy();
      return;
    }
    serverName = r.result.serverName;
    pending = r.buffered;
    poolRef = front.router.match(serverName);
  } else {
    const tls = await terminate(socket, pending, front, plan.handshakeTimeoutMs);
    pending = undefined;
    if (tls === undefined) {
      log.debug(conn.describe(), 'l4 TLS handshake failed');
      socket.destroy();
      return;
    }
    stream = tls;
    serverName = typeof tls.servername === 'string' ? tls.servername : undefined;
    poolRef = front.router.match(serverName);
  }
  if (poolRef === undefined) {
    log.debug({ ...conn.describe(), sni: serverName }, 'l4 no route for server name');
    stream.destroy();
    return;
  }
  if (stream.destroyed) return;

  const pool = poolRef();
  conn.upstream = pool.name;
  const bridge = new Bridge(stream, log, conn.describe);
  const hashKey = pool.hashOn === undefined ? undefined : conn.clientEndpoint().address;
  const up = await connectWithFailover(pool, hashKey, plan.connectTimeoutMs, stream, bridge.onread, log, plan.listener);
  if (up === undefined) {
    if (!stream.destroyed) log.warn(conn.describe(), 'l4 no target reachable');
    stream.destroy();
    return;
  }
  conn.target = up.target.key;
  if (plan.send === 'v1') up.socket.write(encodeProxyV1(conn.clientEndpoint(), conn.localEndpoint()));
  else if (plan.send === 'v2') up.socket.write(encodeProxyV2(conn.clientEndpoint(), conn.localEndpoint()));
  if (pending !== undefined) up.socket.write(pending);
  // With TLS the raw socket keeps its no-op listener: the TLS socket reports the same failures.
  if (stream === socket) socket.off('error', noop);
  bridge.start(up.socket, { idleTimeoutMs: plan.idleTimeoutMs, rejectProxyHeader, onDone: up.done });
}

function noop(): void {}

/** TLS server handshake over the raw socket; bytes already read (after a PROXY header) are put back first. */
function terminate(
  socket: Socket,
  pending: Buffer | undefined,
  front: Extract<Front, { kind: 'terminate' }>,
  timeoutMs: number,
): Promise<TLSSocket | undefined> {
  // TLSSocket drains what is buffered in the parent socket's readable state before reading the handle.
  if (pending !== undefined) socket.unshift(pending);
  const tls = new TLSSocket(socket, {
    isServer: true,
    secureContext: front.defaultContext,
    SNICallback: front.sniCallback,
  });
  return new Promise((resolve) => {
    const timer = setTimeout(() => tls.destroy(), timeoutMs);
    const onFail = (): void => {
      clearTimeout(timer);
      tls.destroy();
      resolve(undefined);
    };
    tls.once('error', onFail);
    tls.once('close', onFail);
    tls.once('secure', () => {
      clearTimeout(timer);
      tls.off('error', onFail);
      tls.off('close', onFail);
      tls.pause();
      resolve(tls);
    });
  });
}
