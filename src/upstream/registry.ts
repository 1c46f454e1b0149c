/**
 * @module Ref-counted shared values keyed by string (Caddy's UsagePool): targets and per-upstream counters
 * live here so a reload that keeps them keeps their state. The runtime owns one registry per process and
 * passes it to every createPool; the old generation's pool releases after the new one acquired.
 */

interface Entry {
  value: unknown;
  refs: number;
}

export class Registry {
  readonly #entries = new Map<string, Entry>();

  /** The value under `key`, made by `create` if absent; each call must be matched by one `release`. */
  acquire<T>(key: string, create: () => T): T {
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      entry = { value: create(), refs: 0 };
      this.#entries.set(key, entry);
    }
    entry.refs++;
    return entry.value as T;
  }

  /** Drops one reference; when it was the last one, forgets the value and hands it to `onLast`. */
  release<T>(key: string, onLast?: (value: T) => void): void {
    const entry = this.#entries.get(key);
    if (entry === undefined) return;
    if (--entry.refs > 0) return;
    this.#entries.delete(key);
    onLast?.(entry.value as T);
  }

  /** References held under `key` (0 when absent). */
  refsForTest(key: string): number {
    return this.#entries.get(key)?.refs ?? 0;
  }
}
