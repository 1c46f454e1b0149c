/**
 * @module Sticky sessions: a cookie pins a client to a target. The value is `id.signature`, where id is a
 * keyed hash of the target key (no address leaks to the client) and signature an HMAC of the id, so a client cannot
 * steer itself to a target it was not given. Values are computed once per target; a request costs a map
 * lookup and a constant-time compare.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { UpstreamConfig } from '../config/schema.ts';
import type { StickySessions, Target } from './types.ts';

export type StickyConfig = NonNullable<UpstreamConfig['sticky']>;

interface Pin {
  readonly target: Target;
  readonly value: string;
  readonly setCookie: string;
  readonly signature: Buffer;
}

let processSecret: Buffer | undefined;

const always = (): boolean => true;

/** A random key made once per process: cookies then stop working across a restart or between workers. */
function defaultSecret(): Buffer {
  processSecret ??= randomBytes(32);
  return processSecret;
}

export class CookieSticky implements StickySessions {
  readonly cookie: string;
  readonly #secret: Buffer;
  readonly #attributes: string;
  readonly #targets: () => readonly Target[];
  readonly #admits: () => boolean;
  #list: readonly Target[] | undefined;
  #byId = new Map<string, Pin>();
  #byTarget = new Map<Target, Pin>();

  /**
   * `targets` returns the pool's current list (read again when its identity changes). `admits` says whether
   * the upstream takes one more request now (its circuit limits); a pinned client is refused like any other.
   */
  constructor(config: StickyConfig, targets: () => readonly Target[], admits: () => boolean = always) {
    this.cookie = config.cookie;
    this.#secret = config.secret === undefined ? defaultSecret() : Buffer.from(config.secret);
    const maxAge = config.ttl === undefined ? '' : `; Max-Age=${Math.ceil(config.ttl / 1000)}`;
    this.#attributes = `; Path=/; HttpOnly; SameSite=Lax${maxAge}`;
    this.#targets = targets;
    this.#admits = admits;
  }

  cookieFor(target: Target): string {
    return this.#pin(target).value;
  }

  setCookieFor(target: Target): string {
    return this.#pin(target).setCookie;
  }

  targetFromCookie(value: string): Target | undefined {
    // Over an upstream-wide limit: no pin, so the caller's pick refuses with `overloaded`.
    if (!this.#admits()) return undefined;
    this.#refresh();
    const dot = value.indexOf('.');
    if (dot < 0) return undefined;
    const pin = this.#byId.get(value.slice(0, dot));
    if (pin === undefined) return undefined;
    const given = Buffer.from(value.slice(dot + 1));
    if (given.length !== pin.signature.length || !timingSafeEqual(given, pin.signature)) return undefined;
    return pin.target.available() ? pin.target : undefined;
  }

  #pin(target: Target): Pin {
    this.#refresh();
    let pin = this.#byTarget.get(target);
    if (pin === undefined) {
      pin = this.#makePin(target);
      this.#byTarget.set(target, pin);
    }
    return pin;
  }

  #refresh(): void {
    const list = this.#targets();
    if (list === this.#list) return;
    this.#list = list;
    this.#byId = new Map();
    this.#byTarget = new Map();
    for (const t of list) {
      const pin = this.#makePin(t);
      this.#byId.set(pin.value.slice(0, pin.value.indexOf('.')), pin);
      this.#byTarget.set(t, pin);
    }
  }

  #makePin(target: Target): Pin {
    // Keyed hash, not a bare sha256: the address space is small enough to reverse an unkeyed hash.
    const id = createHmac('sha256', this.#secret).update(`target:${target.key}`).digest();
    const idText = id.subarray(0, 12).toString('base64url');
    const sig = createHmac('sha256', this.#secret)
      .update(`sig:${idText}`)
      .digest()
      .subarray(0, 16)
      .toString('base64url');
    const value = `${idText}.${sig}`;
    return { target, value, setCookie: `${this.cookie}=${value}${this.#attributes}`, signature: Buffer.from(sig) };
  }
}
