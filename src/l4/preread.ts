/**
 * @module Reads the first bytes of a connection (a PROXY header, a ClientHello) before any target is chosen.
 *
 * The bytes read are kept, so the caller can replay them (to a target, or back into the socket). The read
 * is bounded in size (by the parser) and in time; the socket is left paused afterwards.
 */
import type { Socket } from 'node:net';

/** An incremental parser: `undefined` means "need more bytes"; anything else ends the read. */
export type PrereadParser<R> = (buffered: Buffer) => R | undefined;

export type PrereadResult<R> =
  | { readonly kind: 'parsed'; readonly result: R; readonly buffered: Buffer }
  | { readonly kind: 'timeout' | 'closed' };

/** Reads until `parse` returns a value, the socket ends or errors, or `timeoutMs` passes. */
export function preread<R>(
  socket: Socket,
  initial: Buffer | undefined,
  parse: PrereadParser<R>,
  timeoutMs: number,
): Promise<PrereadResult<R>> {
  if (initial !== undefined && initial.length > 0) {
    const result = parse(initial);
    if (result !== undefined) return Promise.resolve({ kind: 'parsed', result, buffered: initial });
  }
  return new Promise((resolve) => {
    let buffered = initial ?? Buffer.alloc(0);
    const finish = (value: PrereadResult<R>): void => {
      clearTimeout(timer);
      socket.pause();
      socket.off('data', onData);
      socket.off('end', onGone);
      socket.off('close', onGone);
      resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const result = parse(buffered);
      if (result !== undefined) finish({ kind: 'parsed', result, buffered });
    };
    const onGone = (): void => finish({ kind: 'closed' });
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    socket.on('data', onData);
    socket.on('end', onGone);
    socket.on('close', onGone);
    socket.resume(); // explicitly paused sockets (pauseOnConnect, or a previous preread) do not resume on 'data'
  });
}
