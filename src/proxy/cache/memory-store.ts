/**
 * @module In-process cache store: an LRU bounded in bytes (lru-cache `maxSize` + `sizeCalculation`), with a
 * TTL per entry. The default store; each process (worker) has its own.
 */
import { LRUCache } from 'lru-cache';
import type { CacheEntry, CacheStore } from './types.ts';

/** Rough fixed cost of an entry beyond its body and headers (object, key, bookkeeping). */
const ENTRY_OVERHEAD = 256;

export interface MemoryStoreOptions {
  /** Bytes the store may hold (bodies + headers + overhead). */
  readonly maxSize: number;
}

export class MemoryStore implements CacheStore {
  readonly #lru: LRUCache<string, CacheEntry>;

  constructor(options: MemoryStoreOptions) {
    this.#lru = new LRUCache<string, CacheEntry>({
      maxSize: Math.max(1, options.maxSize),
      sizeCalculation: (entry, key) => entrySize(entry) + key.length,
      // An entry bigger than the whole store is refused rather than evicting everything.
      maxEntrySize: Math.max(1, options.maxSize),
    });
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    return this.#lru.get(key);
  }

  async set(key: string, entry: CacheEntry, ttlMs: number): Promise<void> {
    if (ttlMs <= 0) return;
    this.#lru.set(key, entry, { ttl: ttlMs });
  }

  async delete(key: string): Promise<boolean> {
    return this.#lru.delete(key);
  }

  async purgePrefix(prefix: string): Promise<number> {
    const doomed: string[] = [];
    for (const key of this.#lru.keys()) if (key.startsWith(prefix)) doomed.push(key);
    for (const key of doomed) this.#lru.delete(key);
    return doomed.length;
  }

  async close(): Promise<void> {
    this.#lru.clear();
  }

  /** Bytes currently accounted for (tests and metrics). */
  get size(): number {
    return this.#lru.calculatedSize;
  }
}

function entrySize(entry: CacheEntry): number {
  let size = ENTRY_OVERHEAD + entry.body.length;
  for (const name in entry.headers) {
    const value = entry.headers[name]!;
    size += name.length + (typeof value === 'string' ? value.length : value.join('').length);
  }
  return size;
}
