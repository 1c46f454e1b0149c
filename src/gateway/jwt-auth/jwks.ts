/**
 * @module A remote JWKS (`jwksUrl`) kept in memory: loaded on first use, refreshed in the background, and
 * refetched early when a token names an unknown `kid`, at most once per cooldown. When the endpoint fails
 * the last good keys stay in use; only tokens that no known key can verify are then answered "unavailable"
 * (503) rather than "unknown key" (401), since the key may well exist.
 */

import type { KeyObject } from 'node:crypto';
import { request } from 'undici';
import { MAX_IDP_DOCUMENT_BYTES, readLimitedJson } from '../limited-json.ts';
import { type Jwk, KeySet } from './keyset.ts';

export interface RemoteJwksOptions {
  readonly url: string;
  /** Background refresh period. */
  readonly refreshMs: number;
  /** Least time between two fetches caused by unknown kids or failures. */
  readonly cooldownMs: number;
  readonly timeoutMs: number;
  /** Largest JWKS document accepted. */
  readonly maxBytes?: number;
  now(): number;
  readonly log: { warn(obj: object, msg?: string): void };
}

export type KeyLookup =
  | { readonly kind: 'key'; readonly key: KeyObject }
  | { readonly kind: 'unknown' }
  | { readonly kind: 'unavailable' };

const UNKNOWN: KeyLookup = Object.freeze({ kind: 'unknown' });
const UNAVAILABLE: KeyLookup = Object.freeze({ kind: 'unavailable' });

export class RemoteJwks {
  readonly #o: RemoteJwksOptions;
  #keys: KeySet | undefined;
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  #lastFailed = false;
  #inflight: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Fetches made, for tests and metrics. */
  fetches = 0;

  constructor(options: RemoteJwksOptions) {
    this.#o = options;
  }

  /** The cached key, without I/O; undefined when not (yet) known. */
  find(kid: string | undefined, alg: string): KeyObject | undefined {
    return this.#keys?.find(kid, alg);
  }

  /** The key, refetching the set first when it is unknown and the cooldown allows. */
  async lookup(kid: string | undefined, alg: string): Promise<KeyLookup> {
    const cached = this.find(kid, alg);
    if (cached !== undefined) return { kind: 'key', key: cached };
    const due = this.#o.now() - this.#lastAttemptAt >= this.#o.cooldownMs;
    if (this.#inflight !== undefined || due) await this.refresh();
    const key = this.find(kid, alg);
    if (key !== undefined) return { kind: 'key', key };
    return this.#keys === undefined || this.#lastFailed ? UNAVAILABLE : UNKNOWN;
  }

  /** Fetches now (deduplicated); never rejects. */
  refresh(): Promise<void> {
    this.#inflight ??= this.#fetch().finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #fetch(): Promise<void> {
    this.#lastAttemptAt = this.#o.now();
    this.fetches++;
    this.#startTimer();
    try {
      const keys = await this.#download();
      this.#keys = new KeySet(keys);
      this.#lastFailed = false;
      if (this.#keys.skipped > 0) {
        this.#o.log.warn({ url: this.#o.url, skipped: this.#keys.skipped }, 'jwks: unusable keys skipped');
      }
    } catch (err) {
      this.#lastFailed = true;
      this.#o.log.warn(
        { url: this.#o.url, err: (err as Error).message, stale: this.#keys !== undefined },
        'jwks: fetch failed; keeping the last keys',
      );
    }
  }

  async #download(): Promise<Jwk[]> {
    const max = this.#o.maxBytes ?? MAX_IDP_DOCUMENT_BYTES;
    const res = await request(this.#o.url, {
      method: 'GET',
      headers: { accept: 'application/jwk-set+json, application/json' },
      headersTimeout: this.#o.timeoutMs,
      bodyTimeout: this.#o.timeoutMs,
      signal: AbortSignal.timeout(this.#o.timeoutMs),
    });
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`status ${res.statusCode}`);
    }
    const doc = (await readLimitedJson(res.body, max, 'JWKS')) as { keys?: unknown };
    if (!Array.isArray(doc.keys)) throw new Error('not a JWK set');
    return doc.keys.filter((k): k is Jwk => k !== null && typeof k === 'object');
  }

  #startTimer(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setInterval(() => void this.refresh(), this.#o.refreshMs);
    this.#timer.unref();
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
