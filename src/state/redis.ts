/**
 * @module Redis store (ioredis): one URL, Sentinel (`sentinels` + `name`) or Cluster (`cluster` nodes).
 *
 * Built so a dead or slow Redis never makes a request wait long: commands time out after `timeouts.command`
 * (default 200 ms), nothing is queued while disconnected (`enableOfflineQueue: false`, so calls reject at once),
 * a command in flight when the connection drops is not retried, and the client reconnects in the background
 * with a capped backoff. Only calls made before the first connection wait for it (at most the command timeout),
 * so a freshly started instance does not count locally, or refuse, for its first milliseconds. Scripts run by
 * EVALSHA and fall back to EVAL when the server answers NOSCRIPT (after a restart or SCRIPT FLUSH).
 *
 * Per-request cost: the takes for one key, spec and cost (and the increments for one key) made in one
 * event-loop turn are coalesced into one script call (src/state/redis-batch.ts); auto-pipelining sends the
 * commands of a turn in one write; the script arguments that depend only on the limit are strings made once
 * per spec.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { INCREMENT, type Script, SLIDING_WINDOW, TOKEN_BUCKET } from './lua.ts';
import { Batches, isNoScript, type SpecArgs } from './redis-batch.ts';
import type { Decision, RateLimitSpec, Store } from './types.ts';

export interface RedisNode {
  readonly host: string;
  readonly port: number;
}

export interface RedisStoreOptions {
  /** `redis://[:password@]host:port[/db]` or `rediss://…`. */
  readonly url?: string;
  /** Sentinel: the sentinels to ask, and the master's `name`. */
  readonly sentinels?: readonly RedisNode[];
  readonly name?: string;
  /** Cluster: seed nodes. */
  readonly cluster?: readonly RedisNode[];
  /** Prepended to every key (default `portico:`). */
  readonly keyPrefix?: string;
  readonly timeouts?: { readonly command?: number; readonly connect?: number };
  /** Warns once when Redis goes away and informs when it is back (not on every reconnect attempt). */
  readonly log?: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
}

type Client = Redis | Cluster;

/** Reconnect after 50 ms, 100 ms, … at most 2 s apart, forever. */
function backoff(times: number): number {
  return Math.min(times * 50, 2000);
}

/**
 * `p`, or a rejection once `ms` have passed. The rejection waits for the I/O phase after the timer fired
 * (setImmediate), so a reply that arrived while the event loop was busy still wins over the timeout.
 */
function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (settled) return;
        settled = true;
        reject(new Error(`redis command timed out after ${ms}ms`));
      });
    }, ms);
    p.then(
      (v) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** The reply of TOKEN_BUCKET / SLIDING_WINDOW as a Decision. */
function toDecision(r: unknown): Decision {
  const a = r as [number, number, number, number];
  return { allowed: a[0] === 1, remaining: a[1], retryAfterMs: a[2], resetMs: a[3] };
}

class RedisStore implements Store {
  readonly kind = 'redis' as const;
  readonly #client: Client;
  readonly #commandTimeout: number;
  readonly #specArgs = new WeakMap<RateLimitSpec, SpecArgs>();
  readonly #batches: Batches;
  /** Settles on the first 'ready' or 'error', whichever comes first. */
  readonly #first: Promise<void>;
  #everReady = false;
  #down = false;

  constructor(opts: RedisStoreOptions) {
    const common: RedisOptions = {
      keyPrefix: opts.keyPrefix ?? 'portico:',
      connectTimeout: opts.timeouts?.connect ?? 1000,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: backoff,
      // Commands made in one event-loop turn (requests read from many sockets) leave in one write.
      enableAutoPipelining: true,
    };
    if (opts.cluster !== undefined) {
      const {
        keyPrefix,
        retryStrategy: _r,
        enableOfflineQueue: _e,
        enableAutoPipelining: _p,
        ...redisOptions
      } = common;
      this.#client = new Cluster(
        opts.cluster.map((n) => ({ host: n.host, port: n.port })),
        {
          keyPrefix,
          enableOfflineQueue: false,
          enableAutoPipelining: true,
          clusterRetryStrategy: backoff,
          slotsRefreshTimeout: common.connectTimeout,
          redisOptions,
        },
      );
    } else if (opts.sentinels !== undefined) {
      this.#client = new Redis({
        ...common,
        sentinels: opts.sentinels.map((n) => ({ host: n.host, port: n.port })),
        name: opts.name ?? 'mymaster',
        sentinelRetryStrategy: backoff,
      });
    } else {
      this.#client = new Redis(opts.url ?? 'redis://127.0.0.1:6379', common);
    }
    // Our own command timeout (see `bounded`), not ioredis's: its timer can fire before a reply already waiting
    // in the socket is read, when this process's event loop lagged (a burst, a GC pause).
    this.#commandTimeout = opts.timeouts?.command ?? 200;
    this.#batches = new Batches(this.#client, this.#commandTimeout);
    let settleFirst!: () => void;
    this.#first = new Promise<void>((resolve) => {
      settleFirst = resolve;
    });
    const log = opts.log;
    // Without an 'error' listener an unreachable Redis would crash the process.
    this.#client.on('error', (err: Error) => {
      settleFirst();
      if (this.#down) return;
      this.#down = true;
      log?.warn({ err: err.message }, 'redis store unavailable; reconnecting in the background');
    });
    this.#client.on('ready', () => {
      if (this.#down) log?.info({}, 'redis store available again');
      this.#down = false;
      this.#everReady = true;
      settleFirst();
    });
    this.#client.once('end', settleFirst);
  }

  /** Before the first connection only: a wait for it, bounded by the command timeout. */
  #firstWait(): Promise<unknown> | undefined {
    if (this.#everReady || this.#down) return undefined;
    return Promise.race([this.#first, sleep(this.#commandTimeout, undefined, { ref: false })]);
  }

  async #run(s: Script, key: string, args: (string | number)[]): Promise<unknown> {
    const first = this.#firstWait();
    if (first !== undefined) await first;
    try {
      return await bounded(this.#client.evalsha(s.sha, 1, key, ...args), this.#commandTimeout);
    } catch (err) {
      if (isNoScript(err)) return bounded(this.#client.eval(s.source, 1, key, ...args), this.#commandTimeout);
      throw err;
    }
  }

  #argsOf(spec: RateLimitSpec): SpecArgs {
    let a = this.#specArgs.get(spec);
    if (a === undefined) {
      a = { limit: String(spec.limit), windowMs: String(spec.windowMs), burst: String(spec.burst ?? spec.limit) };
      this.#specArgs.set(spec, a);
    }
    return a;
  }

  /**
   * While connected, coalesced with the other takes of this turn for the same key, spec and cost (one script
   * call decides them all, in call order). Otherwise sent alone: before the first connection it waits for it;
   * after a disconnection it is rejected at once by the client (no offline queue).
   */
  take(key: string, cost: number, spec: RateLimitSpec, nowMs: number): Promise<Decision> {
    const a = this.#argsOf(spec);
    if (this.#client.status === 'ready') return this.#batches.take(key, cost, spec, a, nowMs);
    const bucket = spec.algorithm === 'token-bucket';
    const script = bucket ? TOKEN_BUCKET : SLIDING_WINDOW;
    const args = bucket ? [a.limit, a.windowMs, a.burst, nowMs, cost] : [a.limit, a.windowMs, nowMs, cost];
    return this.#run(script, key, args).then(toDecision);
  }

  /** Like `take`: coalesced per key while connected (one INCRBY of the sum), else sent alone. */
  increment(key: string, by: number, ttlMs: number): Promise<number> {
    const ttl = Math.max(1, Math.ceil(ttlMs));
    if (this.#client.status === 'ready') return this.#batches.increment(key, by, ttl);
    return this.#run(INCREMENT, key, [by, ttl]) as Promise<number>;
  }

  /** Calls coalesced and commands sent so far; for tests and measurements. */
  batchStatsForTest(): { readonly calls: number; readonly commands: number } {
    return this.#batches.stats;
  }

  async get(key: string): Promise<Buffer | undefined> {
    const first = this.#firstWait();
    if (first !== undefined) await first;
    return (await bounded(this.#client.getBuffer(key), this.#commandTimeout)) ?? undefined;
  }

  async set(key: string, value: Buffer, ttlMs: number): Promise<void> {
    const first = this.#firstWait();
    if (first !== undefined) await first;
    await bounded(this.#client.set(key, value, 'PX', Math.max(1, Math.ceil(ttlMs))), this.#commandTimeout);
  }

  async delete(key: string): Promise<void> {
    const first = this.#firstWait();
    if (first !== undefined) await first;
    await bounded(this.#client.del(key), this.#commandTimeout);
  }

  ready(): boolean {
    return this.#client.status === 'ready';
  }

  connecting(): boolean {
    return !this.#everReady && !this.#down && this.#client.status !== 'end';
  }

  async close(): Promise<void> {
    // disconnect() rather than quit(): quit would wait for a reply from a Redis that may be gone.
    this.#client.disconnect();
  }
}

/**
 * A store backed by Redis. Connects in the background right away; calls made before the connection is ready
 * reject at once (callers fall back to local counting).
 */
export function createRedisStore(opts: RedisStoreOptions): Store & Pick<RedisStore, 'batchStatsForTest'> {
  return new RedisStore(opts);
}
