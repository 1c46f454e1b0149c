/**
 * @module Dials a target of a pool for one client connection, failing over to the next target when a
 * dial fails or times out. Every attempt is reported to the pool (begin → outcome), so passive health
 * and connection counts see L4 traffic too.
 */
import { connect, type OnReadOpts, type Socket } from 'node:net';
import type { AttemptOutcome, PickHint, Pool, Target } from '../upstream/types.ts';
import type { L4Log } from './types.ts';

export interface Upstream {
  readonly socket: Socket;
  readonly target: Target;
  /** Ends the attempt begun on `target`; call exactly once, when the connection is over. */
  readonly done: (outcome: AttemptOutcome) => void;
}

const CONNECT_FAILURE: AttemptOutcome = { kind: 'connect-failure' };
const TIMEOUT: AttemptOutcome = { kind: 'timeout' };
const NO_HINT: PickHint = {};

/** Dials one target; resolves the connected socket (paused) or the outcome of the failure. */
function dial(target: Target, timeoutMs: number, onread: OnReadOpts): Promise<Socket | AttemptOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host: target.host, port: target.port, allowHalfOpen: true, noDelay: true, onread });
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            socket.destroy();
            resolve(TIMEOUT);
          }, timeoutMs)
        : undefined;
    const onError = (): void => {
      clearTimeout(timer);
      resolve(CONNECT_FAILURE);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      // No read until the pipe is set up (a server-first target may speak at once).
      socket.pause();
      resolve(socket);
    });
  });
}

/**
 * Picks and dials targets until one connects, trying each target at most once. Resolves undefined when
 * none is available or all failed, or when `client` went away meanwhile. `hashKey` is the client's address
 * when the pool hashes (else undefined); every dial gets `onread` (see pipe.ts).
 */
export async function connectWithFailover(
  pool: Pool,
  hashKey: string | undefined,
  timeoutMs: number,
  client: Socket,
  onread: OnReadOpts,
  log: L4Log,
  listener: string,
): Promise<Upstream | undefined> {
  // The set of tried targets is only needed once there is a second attempt.
  let tried: Set<Target> | undefined;
  let hint: PickHint = hashKey === undefined ? NO_HINT : { hashKey };
  const attempts = pool.targets.length;
  for (let i = 0; i < attempts; i++) {
    const target = pool.pick(hint);
    if (target === undefined) break;
    const done = pool.begin(target, i > 0);
    const result = await dial(target, timeoutMs, onread);
    if (!('kind' in result)) {
      if (client.destroyed) {
        result.destroy();
        done({ kind: 'cancelled' });
        return undefined;
      }
      return { socket: result, target, done };
    }
    done(result);
    if (tried === undefined) {
      tried = new Set<Target>();
      hint = { hashKey, exclude: tried };
    }
    tried.add(target);
    log.warn({ listener, upstream: pool.name, target: target.key, outcome: result.kind }, 'l4 connect failed');
    if (client.destroyed) return undefined;
  }
  return undefined;
}
