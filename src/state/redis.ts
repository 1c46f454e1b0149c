/**
 * @module Redis store (ioredis): one URL, Sentinel (`sentinels` + `name`) or Cluster (`cluster` nodes).
 *
 * Built so a dead or slow Redis never makes a request wait long: commands time out after `timeouts.command`
 * (default 200 ms), nothing is queued while disconnected (`enableOfflineQueue: false`, so calls reject at once),
 * a command in flight when the connection drops is not retried, and the client reconnects in the background
 * with a capped backoff. Only calls made before the first connection wait for it (at most the command timeout),
 * so a freshly started instance does not count locally, or refuse, for its first milliseconds. Scripts run by
 * EVALSHA and fall back to EVAL when the server answers NOSCRIPT (after a restart or SCRIPT FLUSH).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { INCREMENT, type Script, SLIDING_WINDOW, TOKEN_BUCKET } from './lua.ts';
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

const AUTO_PIPELINING = process.env.PORTICO_EXP_NOPIPE === undefined;

/** Reconnect after 50 ms, 100 ms, … at most 2 s apart, forever. */
function backoff(times: number): number {
  return Math.min(times * 50, 2000);
}

/**
 * Command deadlines without a timer per command. Every call gets the same timeout, so deadlines come in the
 * order calls are made: a FIFO of (deadline, reject) pairs and one timer armed for the oldest. A call settled
 * by its reply stays queued until its deadline and is then rejected as a no-op (a settled promise ignores it),
 * so the reply path does no bookkeeping at all. An expiry waits for the I/O phase after the timer fired
 * (setImmediate), so a reply that arrived while the event loop was busy still wins over the timeout.
 */
class Deadlines {
  readonly #ms: number;
  readonly #error: Error;
  #at: number[] = [];
  #reject: ((err: Error) => void)[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | undefined = undefined;
  readonly #fire = (): void => {
    setImmediate(this.#expire);
  };
  readonly #expire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    const at = this.#at;
    const reject = this.#reject;
    let i = this.#head;
    for (; i < at.length && at[i]! <= now; i++) {
      const r = reject[i]!;
      reject[i] = noop;
      r(this.#error);
    }
    if (i === at.length) {
      this.#at = [];
      this.#reject = [];
      this.#head = 0;
      return;
    }
    if (i > 1024 && i * 2 > at.length) {
      this.#at = at.slice(i);
      this.#reject = reject.slice(i);
      i = 0;
    }
    this.#head = i;
    this.#arm(this.#at[i]! - now);
  };

  constructor(ms: number) {
    this.#ms = ms;
    // One shared error: the stack says nothing useful, and building one per timeout would cost more.
    this.#error = new Error(`redis command timed out after ${ms}ms`);
  }

  #arm(inMs: number): void {
    this.#timer = setTimeout(this.#fire, Math.max(1, Math.ceil(inMs)));
    this.#timer.unref();
  }

  /** `p`, or a rejection once the timeout passed. */
  bound<T>(p: Promise<T>): Promise<T> {
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    p.then(resolve, reject);
    this.#at.push(performance.now() + this.#ms);
    this.#reject.push(reject);
    if (this.#timer === undefined) this.#arm(this.#ms);
    return promise;
  }

  clear(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

function noop(): void {}

/** The reply of TOKEN_BUCKET / SLIDING_WINDOW as a Decision. */
function toDecision(r: unknown): Decision {
  const a = r as [number, number, number, number];
  return { allowed: a[0] === 1, remaining: a[1], retryAfterMs: a[2], resetMs: a[3] };
}

/** Script arguments that depend only on the spec, as the strings Redis receives. */
interface SpecArgs {
  readonly limit: string;
  readonly windowMs: string;
  readonly burst: string;
}

class RedisStore implements Store {
  readonly kind = 'redis' as const;
  readonly #client: Client;
  readonly #commandTimeout: number;
  readonly #deadlines: Deadlines;
  readonly #specArgs = new WeakMap<RateLimitSpec, SpecArgs>();
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
      enableAutoPipelining: AUTO_PIPELINING,
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
          enableAutoPipelining: AUTO_PIPELINING,
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
    // Our own command timeout (see Deadlines), not ioredis's: its timer can fire before a reply already waiting
    // in the socket is read, when this process's event loop lagged (a burst, a GC pause).
    this.#commandTimeout = opts.timeouts?.command ?? 200;
    this.#deadlines = new Deadlines(this.#commandTimeout);
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
    return this.#evalsha(s, key, args);
  }

  /** EVALSHA bounded by the command timeout; EVAL when the server does not know the script (NOSCRIPT). */
  #evalsha(s: Script, key: string, args: (string | number)[]): Promise<unknown> {
    return this.#deadlines.bound(this.#client.evalsha(s.sha, 1, key, ...args)).catch((err: unknown) => {
      if (err instanceof Error && err.message.startsWith('NOSCRIPT'))
        return this.#deadlines.bound(this.#client.eval(s.source, 1, key, ...args));
      throw err;
    });
  }

  #argsOf(spec: RateLimitSpec): SpecArgs {
    let a = this.#specArgs.get(spec);
    if (a === undefined) {
      a = { limit: String(spec.limit), windowMs: String(spec.windowMs), burst: String(spec.burst ?? spec.limit) };
      this.#specArgs.set(spec, a);
    }
    return a;
  }

  take(key: string, cost: number, spec: RateLimitSpec, nowMs: number): Promise<Decision> {
    const a = this.#argsOf(spec);
    const args =
      spec.algorithm === 'token-bucket'
        ? [a.limit, a.windowMs, a.burst, nowMs, cost]
        : [a.limit, a.windowMs, nowMs, cost];
    const script = spec.algorithm === 'token-bucket' ? TOKEN_BUCKET : SLIDING_WINDOW;
    const r = this.#everReady || this.#down ? this.#evalsha(script, key, args) : this.#run(script, key, args);
    return r.then(toDecision);
  }

  async increment(key: string, by: number, ttlMs: number): Promise<number> {
    return (await this.#run(INCREMENT, key, [by, Math.max(1, Math.ceil(ttlMs))])) as number;
  }

  async get(key: string): Promise<Buffer | undefined> {
    const first = this.#firstWait();
    if (first !== undefined) await first;
    return (await this.#deadlines.bound(this.#client.getBuffer(key))) ?? undefined;
  }

  async set(key: string, value: Buffer, ttlMs: number): Promise<void> {
    const first = this.#firstWait();
    if (first !== undefined) await first;
    await this.#deadlines.bound(this.#client.set(key, value, 'PX', Math.max(1, Math.ceil(ttlMs))));
  }

  async delete(key: string): Promise<void> {
    const first = this.#firstWait();
    if (first !== undefined) await first;
    await this.#deadlines.bound(this.#client.del(key));
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
    this.#deadlines.clear();
  }
}

/**
 * A store backed by Redis. Connects in the background right away; calls made before the connection is ready
 * reject at once (callers fall back to local counting).
 */
export function createRedisStore(opts: RedisStoreOptions): Store {
  return new RedisStore(opts);
}
