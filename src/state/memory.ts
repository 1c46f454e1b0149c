/**
 * @module In-process store: the default (`state.store: memory`), and the local fallback of rate-limit and
 * quota when Redis is unreachable. Entries carry their own expiry; expired ones are dropped when read and by a
 * sweep that runs every `sweepEveryMs` on an unref'd timer. Past `maxKeys` the oldest entries are dropped first,
 * so memory stays bounded whatever keys clients make us create.
 */
import {
  type BucketState,
  bucketTtl,
  newBucket,
  newWindow,
  takeToken,
  takeWindow,
  type WindowState,
} from './algorithms.ts';
import type { Decision, RateLimitSpec, Store } from './types.ts';

export interface MemoryStoreOptions {
  /** Epoch ms; injectable for tests. Used for ttl-based entries (`increment`, `set`). Default Date.now. */
  readonly now?: () => number;
  /** Bound on live keys. Default 100 000. */
  readonly maxKeys?: number;
  /** Default 10 s; 0 disables the timer (entries still expire when read). */
  readonly sweepEveryMs?: number;
}

interface Entry {
  expiresAt: number;
  bucket?: BucketState;
  window?: WindowState;
  count?: number;
  value?: Buffer;
}

class MemoryStore implements Store {
  readonly kind = 'memory' as const;
  readonly #entries = new Map<string, Entry>();
  readonly #now: () => number;
  readonly #maxKeys: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: MemoryStoreOptions) {
    this.#now = opts.now ?? Date.now;
    this.#maxKeys = opts.maxKeys ?? 100_000;
    const every = opts.sweepEveryMs ?? 10_000;
    if (every > 0) {
      this.#timer = setInterval(() => this.#sweep(), every);
      this.#timer.unref();
    }
  }

  /** A live entry, or a new one replacing an expired or missing one. Re-inserting keeps Map order ≈ age. */
  #entry(key: string, now: number): Entry {
    const e = this.#entries.get(key);
    if (e !== undefined && e.expiresAt > now) return e;
    if (e !== undefined) this.#entries.delete(key);
    if (this.#entries.size >= this.#maxKeys) this.#evict();
    const fresh: Entry = { expiresAt: Number.POSITIVE_INFINITY };
    this.#entries.set(key, fresh);
    return fresh;
  }

  take(key: string, cost: number, spec: RateLimitSpec, nowMs: number): Promise<Decision> {
    return Promise.resolve(this.takeSync(key, cost, spec, nowMs));
  }

  takeSync(key: string, cost: number, spec: RateLimitSpec, nowMs: number): Decision {
    const e = this.#entry(key, nowMs);
    let d: Decision;
    if (spec.algorithm === 'token-bucket') {
      e.bucket ??= newBucket(spec, nowMs);
      d = takeToken(e.bucket, cost, spec, nowMs);
      e.expiresAt = nowMs + bucketTtl(spec);
    } else {
      e.window ??= newWindow();
      d = takeWindow(e.window, cost, spec, nowMs);
      e.expiresAt = nowMs + 2 * spec.windowMs;
    }
    return d;
  }

  increment(key: string, by: number, ttlMs: number): Promise<number> {
    const now = this.#now();
    const e = this.#entry(key, now);
    e.count = (e.count ?? 0) + by;
    e.expiresAt = now + ttlMs;
    return Promise.resolve(e.count);
  }

  get(key: string): Promise<Buffer | undefined> {
    const e = this.#entries.get(key);
    if (e === undefined) return Promise.resolve(undefined);
    if (e.expiresAt <= this.#now()) {
      this.#entries.delete(key);
      return Promise.resolve(undefined);
    }
    return Promise.resolve(e.value ?? (e.count !== undefined ? Buffer.from(String(e.count)) : undefined));
  }

  set(key: string, value: Buffer, ttlMs: number): Promise<void> {
    this.#entries.delete(key);
    const now = this.#now();
    if (this.#entries.size >= this.#maxKeys) this.#evict();
    this.#entries.set(key, { expiresAt: now + ttlMs, value });
    return Promise.resolve();
  }

  delete(key: string): Promise<void> {
    this.#entries.delete(key);
    return Promise.resolve();
  }

  ready(): boolean {
    return true;
  }

  close(): Promise<void> {
    clearInterval(this.#timer);
    this.#entries.clear();
    return Promise.resolve();
  }

  /** Number of live entries; for tests. */
  sizeForTest(): number {
    return this.#entries.size;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [key, e] of this.#entries) if (e.expiresAt <= now) this.#entries.delete(key);
  }

  /** Drop expired entries, then the oldest tenth if still full. */
  #evict(): void {
    this.#sweep();
    if (this.#entries.size < this.#maxKeys) return;
    let drop = Math.max(1, Math.floor(this.#maxKeys / 10));
    for (const key of this.#entries.keys()) {
      if (drop-- === 0) break;
      this.#entries.delete(key);
    }
  }
}

/** A store in this process's memory. No I/O; `close()` stops the sweep timer. */
export function createMemoryStore(
  opts: MemoryStoreOptions = {},
): Store & { takeSync: NonNullable<Store['takeSync']>; sizeForTest(): number } {
  return new MemoryStore(opts);
}
