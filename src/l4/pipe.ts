/**
 * @module Copies bytes both ways between a client and a target, as Traefik's tcp/proxy.go does: backpressure
 * both ways, a FIN from one side becomes end() on the other (half-close both ways; sockets are made with
 * allowHalfOpen), an error on either side destroys both, an idle timeout closes both. Reports how it ended
 * once both sockets are closed.
 *
 * Not stream.pipe(): it costs a dozen listeners per socket and a Readable round trip per chunk. The target
 * side is read through net's `onread` option into reused buffers (read-buffers.ts) and written straight to
 * the client; the client side uses plain 'data' events (net offers `onread` only to sockets it dials).
 * Create the Bridge before dialling, pass `bridge.onread` to the dial, then `start` it.
 */
import type { OnReadOpts, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { AttemptOutcome } from '../upstream/types.ts';
import { proxyHeaderStart } from './proxy-protocol.ts';
import { copyShared, releaseBig, SHARED, takeBig } from './read-buffers.ts';
import type { L4Log } from './types.ts';

/**
 * A connection that carried bytes and ended without a target error. AttemptOutcome has no L4 variant yet;
 * status 0 says "no HTTP status" and counts as a success for health. (Proposed: `{ kind: 'closed' }`.)
 */
export const L4_CLOSED: AttemptOutcome = { kind: 'response', status: 0 };
const RESET: AttemptOutcome = { kind: 'reset' };
const CANCELLED: AttemptOutcome = { kind: 'cancelled' };

/** Errors a peer causes by going away; normal on the Internet, so they are logged at debug. */
function isPeerGone(err: NodeJS.ErrnoException): boolean {
  return err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.code === 'ECONNABORTED';
}

/** A net.Socket or a TLSSocket. */
export type ClientStream = Duplex & { setTimeout: Socket['setTimeout'] };

export interface PipeOptions {
  readonly idleTimeoutMs: number;
  /** Close the connection if the client's first bytes look like a PROXY header (untrusted peer). */
  readonly rejectProxyHeader: boolean;
  readonly onDone: (outcome: AttemptOutcome) => void;
}

/** Log fields naming a connection; built only when something is logged. */
export type Describe = () => Record<string, unknown>;

/** One client connection's pipe. */
export class Bridge {
  /** For the target's net.connect: reads land in the bridge's buffers and go straight to the client. */
  readonly onread: OnReadOpts;
  readonly #client: ClientStream;
  readonly #log: L4Log;
  readonly #describe: Describe;
  #upstream: Socket | undefined;
  #onDone: PipeOptions['onDone'] = noop;
  /** The buffer the target's next read lands in: SHARED, or a private one during a bulk transfer. */
  #next: Buffer = SHARED;
  /** Target reading is stopped until the client's pending write completes. */
  #waiting = false;
  #checkProxyHeader = false;
  /** The client's first bytes, held while they may still begin a PROXY header (at most 4). */
  #held: Buffer | undefined;
  #outcome: AttemptOutcome = L4_CLOSED;
  #open = 2;
  readonly #afterClientWrite = (): void => {
    if (this.#waiting && this.#client.writableLength === 0) {
      this.#waiting = false;
      this.#upstream?.resume();
    }
  };

  constructor(client: ClientStream, log: L4Log, describe: Describe) {
    this.#client = client;
    this.#log = log;
    this.#describe = describe;
    this.onread = { buffer: () => this.#next, callback: (n, buf) => this.#fromUpstream(n, buf as Buffer) };
  }

  /** Pipes until both sockets are closed. `upstream` was dialled with `onread` and is paused. */
  start(upstream: Socket, o: PipeOptions): void {
    const client = this.#client;
    this.#upstream = upstream;
    this.#onDone = o.onDone;
    this.#checkProxyHeader = o.rejectProxyHeader;
    client.on('error', (err: NodeJS.ErrnoException) => this.#fail('client', err));
    upstream.on('error', (err: NodeJS.ErrnoException) => this.#fail('upstream', err));
    // A side that closes before the other finished sending was torn down (drain, TLS failure): tear the
    // other down too. After a graceful FIN both ways, the other side's readable has already ended.
    client.on('close', () => {
      if (!upstream.readableEnded) upstream.destroy();
      this.#closed();
    });
    upstream.on('close', () => {
      if (!client.readableEnded) client.destroy();
      this.#closed();
    });
    client.on('end', () => {
      // A short first write followed by FIN is not a header: pass it on.
      if (this.#held !== undefined) upstream.write(this.#held);
      this.#held = undefined;
      upstream.end();
    });
    upstream.on('end', () => client.end());
    client.on('data', (chunk: Buffer) => this.#fromClient(chunk));
    upstream.on('drain', () => client.resume());
    if (o.idleTimeoutMs > 0) {
      // Every byte either way is read from or written to the client socket, and both refresh its timer.
      client.setTimeout(o.idleTimeoutMs);
      client.on('timeout', () => {
        this.#log.debug(this.#describe(), 'l4 idle timeout');
        client.destroy();
        upstream.destroy();
      });
    }
    // Both were paused: the client by pauseOnConnect (or a preread, or the TLS handshake), the target on connect.
    client.resume();
    upstream.resume();
  }

  #fromClient(chunk: Buffer): void {
    const data = this.#checkProxyHeader ? this.#screen(chunk) : chunk;
    if (data !== undefined && this.#upstream?.write(data) === false) this.#client.pause();
  }

  /** Untrusted peer's first bytes: undefined while undecided or refused, else the bytes to forward. */
  #screen(chunk: Buffer): Buffer | undefined {
    const head = this.#held === undefined ? chunk : Buffer.concat([this.#held, chunk]);
    const verdict = proxyHeaderStart(head);
    if (verdict === 'maybe') {
      this.#held = head;
      return undefined;
    }
    this.#checkProxyHeader = false;
    this.#held = undefined;
    if (verdict === 'no') return head;
    this.#log.warn(this.#describe(), 'l4 PROXY header from an untrusted peer');
    this.#client.destroy();
    this.#upstream?.destroy();
    return undefined;
  }

  /** net's onread callback: returning false stops reading the target. */
  #fromUpstream(n: number, buf: Buffer): boolean {
    const client = this.#client;
    if (buf === SHARED) {
      // Other connections read into SHARED next: copy out. A full read starts a bulk transfer.
      client.write(copyShared(n), this.#afterClientWrite);
      if (n === SHARED.length) this.#next = takeBig();
    } else {
      // Zero copy: `buf` is read into again only after this write is complete (see #afterClientWrite).
      client.write(buf.subarray(0, n), this.#afterClientWrite);
      if (n < buf.length && client.writableLength === 0) {
        releaseBig(buf);
        this.#next = SHARED;
      }
    }
    if (client.writableLength === 0) return true;
    this.#waiting = true;
    return false;
  }

  #fail(side: 'client' | 'upstream', err: NodeJS.ErrnoException): void {
    if (this.#outcome === L4_CLOSED) this.#outcome = side === 'upstream' ? RESET : CANCELLED;
    if (isPeerGone(err)) this.#log.debug({ ...this.#describe(), side, code: err.code }, 'l4 peer reset');
    else this.#log.warn({ ...this.#describe(), side, code: err.code, err: err.message }, 'l4 socket error');
    this.#client.destroy();
    this.#upstream?.destroy();
  }

  #closed(): void {
    if (--this.#open !== 0) return;
    // Both sockets are closed: no read and no write uses the private buffer any more.
    if (this.#next !== SHARED) releaseBig(this.#next);
    this.#next = SHARED;
    this.#onDone(this.#outcome);
  }
}

function noop(): void {}
