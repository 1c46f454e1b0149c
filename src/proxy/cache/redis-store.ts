/**
 * @module Redis cache store, shared by several Portico instances. Short timeouts; every failure (down,
 * slow, garbage) is a miss or a no-op, reported through `onError` and never thrown.
 */
import { Redis } from 'ioredis';
import { decodeEntry, encodeEntry } from './codec.ts';
import type { CacheEntry, CacheStore } from './types.ts';

export interface RedisStoreOptions {
  readonly url: string;
  /** Prefix of every Redis key. */
  readonly prefix: string;
  /** Per-command timeout in ms. */
  readonly timeout: number;
  /** Called for each failed command (log at warn and count it); the command itself counts as a miss. */
  readonly onError?: (err: Error) => void;
}

/** SCAN pages read by one purge at most (each holds up to 500 keys): keeps the loop bounded. */
const MAX_SCAN_PAGES = 100_000;

export class RedisStore implements CacheStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #onError: (err: Error) => void;

  constructor(options: RedisStoreOptions) {
    this.#prefix = options.prefix;
    this.#onError = options.onError ?? ignore;
    this.#redis = new Redis(options.url, {
      commandTimeout: options.timeout,
      connectTimeout: Math.max(options.timeout, 1000),
      maxRetriesPerRequest: 1,
      // Reconnect forever with a capped back-off: Redis coming back must heal the cache on its own.
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    // Without a listener ioredis would emit unhandled 'error' events on connection loss.
    this.#redis.on('error', this.#onError);
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    try {
      const data = await this.#redis.getBuffer(this.#prefix + key);
      return data === null ? undefined : decodeEntry(data);
    } catch (err) {
      this.#onError(err as Error);
      return undefined;
    }
  }

  async set(key: string, entry: CacheEntry, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) return;
    try {
      await this.#redis.set(this.#prefix + key, encodeEntry(entry), 'PX', Math.ceil(ttlMs));
    } catch (err) {
      this.#onError(err as Error);
    }
  }

  async delete(key: string): Promise<boolean> {
    try {
      return (await this.#redis.unlink(this.#prefix + key)) > 0;
    } catch (err) {
      this.#onError(err as Error);
      return false;
    }
  }

  async purgePrefix(prefix: string): Promise<number> {
    const pattern = `${escapeGlob(this.#prefix + prefix)}*`;
    let cursor = '0';
    let deleted = 0;
    try {
      for (let page = 0; page < MAX_SCAN_PAGES; page++) {
        const [next, keys] = await this.#redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
        if (keys.length > 0) deleted += await this.#redis.unlink(...keys);
        cursor = next;
        if (cursor === '0') break;
      }
    } catch (err) {
      this.#onError(err as Error);
    }
    return deleted;
  }

  async close(): Promise<void> {
    try {
      await this.#redis.quit();
    } catch {
      this.#redis.disconnect();
    }
  }
}

function ignore(): void {}

/** Escapes Redis glob metacharacters so a prefix matches literally. */
function escapeGlob(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '*' || c === '?' || c === '[' || c === ']' || c === '\\') out += '\\';
    out += c;
  }
  return out;
}
