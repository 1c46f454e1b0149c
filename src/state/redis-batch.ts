/**
 * @module Coalescing for the Redis store: the rate-limit takes for one key, spec and cost (and the increments
 * for one key) made in one event-loop turn become one script call.
 *
 * Requests read from many sockets in one poll phase each call `take`; ioredis's auto-pipelining already puts
 * their commands in one write, but each command still costs its own arguments, Command object, promise and
 * reply parsing, here and in Redis. A `Batches` collects the calls of the turn and sends one command per
 * batch from a `setImmediate` (the check phase, after the whole poll phase). The script decides the batch as
 * if its calls had been made one after another (lua.ts, algorithms.ts `takeTokens`/`takeWindows`), atomically,
 * so several instances sharing one Redis still admit exactly the limit. A batch of one sends exactly the
 * command an uncoalesced call would.
 *
 * Failures: one timer per batch, started by its first call, rejects every caller once the command timeout has
 * passed (the same `setImmediate` grace as `bounded` in redis.ts, so a reply already read wins); an error
 * rejects every caller; NOSCRIPT is answered by one EVAL of the same arguments.
 */
import { decisionOf, type Taken } from './algorithms.ts';
import { INCREMENT, type Script, SLIDING_WINDOW, TOKEN_BUCKET } from './lua.ts';
import type { Decision, RateLimitSpec } from './types.ts';

/** The two ioredis calls a batch makes (Redis and Cluster both have them). */
export interface ScriptClient {
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  eval(source: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

/** Script arguments that depend only on the spec, as the strings Redis receives. */
export interface SpecArgs {
  readonly limit: string;
  readonly windowMs: string;
  readonly burst: string;
}

/** Largest batch: past it a new batch starts (sent after it, so call order is kept). Bounds the script's loop. */
const MAX_BATCH = 512;

/** The server forgot the script (restart, SCRIPT FLUSH): send it again with EVAL. */
export function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}

/** A batch as the turn's queue sees it. */
interface Pending {
  send(client: ScriptClient): void;
  fail(err: unknown): void;
}

/** The calls of one turn that share one command, and that command's life: send, retry, timeout, answer. */
abstract class Batch<T> implements Pending {
  readonly key: string;
  protected readonly resolves: ((v: T) => void)[] = [];
  readonly #rejects: ((err: unknown) => void)[] = [];
  #settled = false;
  #retried = false;
  readonly #timer: NodeJS.Timeout;

  constructor(key: string, timeoutMs: number) {
    this.key = key;
    this.#timer = setTimeout(onTimeout, timeoutMs, this, timeoutMs);
  }

  get size(): number {
    return this.resolves.length;
  }

  add(): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.resolves.push(resolve);
      this.#rejects.push(reject);
    });
  }

  protected abstract command(): { script: Script; args: (string | number)[] };
  /** Resolves every caller from the script's reply. */
  protected abstract answer(reply: unknown): void;

  send(client: ScriptClient): void {
    const { script, args } = this.command();
    const ok = (r: unknown): void => {
      if (this.#settled) return;
      this.#settled = true;
      clearTimeout(this.#timer);
      this.answer(r);
    };
    const fail = (err: unknown): void => {
      if (this.#settled) return;
      if (!this.#retried && isNoScript(err)) {
        this.#retried = true;
        client.eval(script.source, 1, this.key, ...args).then(ok, fail);
        return;
      }
      this.fail(err);
    };
    client.evalsha(script.sha, 1, this.key, ...args).then(ok, fail);
  }

  fail(err: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#timer);
    for (const reject of this.#rejects) reject(err);
  }
}

function onTimeout(b: Pending, ms: number): void {
  setImmediate(() => b.fail(new Error(`redis command timed out after ${ms}ms`)));
}

/** Takes of one key, spec and cost. */
class TakeBatch extends Batch<Decision> {
  readonly spec: RateLimitSpec;
  readonly cost: number;
  readonly #args: SpecArgs;
  /** The latest clock of the batch's callers: the batch is decided at that instant. */
  now: number;

  constructor(key: string, spec: RateLimitSpec, args: SpecArgs, cost: number, now: number, timeoutMs: number) {
    super(key, timeoutMs);
    this.spec = spec;
    this.#args = args;
    this.cost = cost;
    this.now = now;
  }

  protected command(): { script: Script; args: (string | number)[] } {
    const a = this.#args;
    const n = this.size;
    if (this.spec.algorithm === 'token-bucket') {
      const args = [a.limit, a.windowMs, a.burst, this.now, this.cost];
      if (n > 1) args.push(n);
      return { script: TOKEN_BUCKET, args };
    }
    const args = [a.limit, a.windowMs, this.now, this.cost];
    if (n > 1) args.push(n);
    return { script: SLIDING_WINDOW, args };
  }

  protected answer(reply: unknown): void {
    const r = reply as [number, number, number, number, string?];
    const t: Taken = {
      taken: r[0],
      remaining: r[1],
      retryAfterMs: r[2],
      resetMs: r[3],
      tokens: r[4] === undefined ? undefined : Number(r[4]),
    };
    const n = this.size;
    const admitted = Math.min(t.taken, n);
    for (let i = 0; i < admitted; i++) this.resolves[i]!(decisionOf(t, i, this.cost, this.spec));
    if (admitted === n) return;
    // Denied callers all see the same state: one object for all of them.
    const denied = decisionOf(t, n, this.cost, this.spec);
    for (let i = admitted; i < n; i++) this.resolves[i]!(denied);
  }
}

/** Increments of one key: one INCRBY of the sum; caller i gets the value after its own share. */
class IncrementBatch extends Batch<number> {
  readonly #by: number[] = [];
  /** The last caller's ttl: one after another, its PEXPIRE would have been the last. */
  ttlMs = 0;

  addBy(by: number, ttlMs: number): Promise<number> {
    this.#by.push(by);
    this.ttlMs = ttlMs;
    return this.add();
  }

  protected command(): { script: Script; args: (string | number)[] } {
    let sum = 0;
    for (const by of this.#by) sum += by;
    return { script: INCREMENT, args: [sum, this.ttlMs] };
  }

  protected answer(reply: unknown): void {
    let v = reply as number;
    for (const by of this.#by) v -= by;
    for (let i = 0; i < this.#by.length; i++) {
      v += this.#by[i]!;
      this.resolves[i]!(v);
    }
  }
}

/** The batches of the current turn; sent together from one `setImmediate`. */
export class Batches {
  readonly #client: ScriptClient;
  readonly #timeoutMs: number;
  #takes = new Map<string, TakeBatch>();
  #increments = new Map<string, IncrementBatch>();
  /** Every batch of the turn in creation order (a key can have several: other spec or cost, or full). */
  #order: Pending[] = [];
  #scheduled = false;
  /** Calls and commands so far; read by tests and measurements. */
  readonly stats = { calls: 0, commands: 0 };

  constructor(client: ScriptClient, timeoutMs: number) {
    this.#client = client;
    this.#timeoutMs = timeoutMs;
  }

  take(key: string, cost: number, spec: RateLimitSpec, args: SpecArgs, now: number): Promise<Decision> {
    let b = this.#takes.get(key);
    if (b === undefined || b.spec !== spec || b.cost !== cost || b.size >= MAX_BATCH) {
      b = new TakeBatch(key, spec, args, cost, now, this.#timeoutMs);
      this.#takes.set(key, b);
      this.#queue(b);
    } else if (now > b.now) {
      b.now = now;
    }
    this.stats.calls++;
    return b.add();
  }

  increment(key: string, by: number, ttlMs: number): Promise<number> {
    let b = this.#increments.get(key);
    if (b === undefined || b.size >= MAX_BATCH) {
      b = new IncrementBatch(key, this.#timeoutMs);
      this.#increments.set(key, b);
      this.#queue(b);
    }
    this.stats.calls++;
    return b.addBy(by, ttlMs);
  }

  #queue(b: Pending): void {
    this.#order.push(b);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    const order = this.#order;
    this.#order = [];
    this.#takes.clear();
    this.#increments.clear();
    this.#scheduled = false;
    this.stats.commands += order.length;
    for (const b of order) b.send(this.#client);
  };
}
