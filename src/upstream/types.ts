/**
 * @module Contracts shared by the L4 and L7 data paths and the balancer (src/upstream/).
 *
 * A Target is one replica; its state (health, in-flight counts) outlives config reloads. A Pool is one
 * upstream's set of targets plus the balancer that picks among them. The proxy and l4 code only use
 * these interfaces; everything else in src/upstream/ is private to the balancer.
 */

/** How one attempt against a target ended, reported by the data path so health and outliers can learn. */
export type AttemptOutcome =
  | { readonly kind: 'response'; readonly status: number }
  | { readonly kind: 'connect-failure' }
  | { readonly kind: 'reset' }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'cancelled' };

export interface Target {
  /** Stable identity across reloads: the URL origin (`http://host:port`) or `host:port`. */
  readonly key: string;
  /** For HTTP targets: origin such as `http://127.0.0.1:9001`. */
  readonly origin: string;
  /** Host and port to dial. */
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  /**
   * The configured host name when this target is one address found by DNS discovery (`host` is then the
   * address). Send it as Host / TLS servername; undefined for targets taken as written.
   */
  readonly hostname?: string;
  /** Healthy, not ejected, not draining, not over its circuit limits. Balancers skip targets where false. */
  available(): boolean;
  /** Requests (L7) or connections (L4) in flight right now. */
  readonly active: number;
}

/** What the data path knows that a balancer may use to pick. */
export interface PickHint {
  /** Key for consistent hashing (client IP, header, cookie or path, chosen by config). */
  readonly hashKey?: string;
  /** Targets already tried for this request (retries go elsewhere). */
  readonly exclude?: ReadonlySet<Target>;
}

/** Where the data path takes `PickHint.hashKey` from (only set for `balance: consistent-hash`). */
export type HashOn = 'client-ip' | 'path' | { readonly header: string } | { readonly cookie: string };

/** Why `pick` found nothing: `overloaded` → 503 GW_UPSTREAM_OVERLOADED, `unavailable` → 503 GW_UPSTREAM_UNAVAILABLE. */
export type NoTargetReason = 'overloaded' | 'unavailable';

/** Retry decisions for one upstream, built once per config generation. */
export interface RetryPolicy {
  /** Most tries of one request, the first included (1 = never retry). */
  readonly attempts: number;
  /** Deadline of one try in ms; 0 = only the route's own timeouts apply. */
  readonly perTryTimeout: number;
  /**
   * May a request that has made `attempt` tries (1 after the first) and ended with `outcome` be tried again?
   * False when out of attempts, when the outcome is not retried, when the method is not idempotent (a
   * connect failure is always retryable: nothing was sent), or when the retry budget is spent.
   * The caller must also make sure no response byte reached the client.
   */
  canRetry(method: string, outcome: AttemptOutcome, attempt: number): boolean;
}

/** Cookie-based session affinity; only present when the upstream configures `sticky`. */
export interface StickySessions {
  /** Cookie name. */
  readonly cookie: string;
  /** Value of the cookie that pins a client to `target` (precomputed; no address in it). */
  cookieFor(target: Target): string;
  /** Full `Set-Cookie` header value for `target` (precomputed). */
  setCookieFor(target: Target): string;
  /**
   * The pinned target for a cookie value, or undefined when the value is forged, stale (target gone), the
   * target is not available now, or the upstream is at a circuit limit: then pick normally (which refuses
   * with `overloaded` in the last case) and set a new cookie (the client moves).
   */
  targetFromCookie(value: string): Target | undefined;
}

export interface Pool {
  readonly name: string;
  /** The current targets; the array is replaced (never mutated) when discovery changes it. */
  readonly targets: readonly Target[];
  /** Picks a target, or undefined when none is available. Pure apart from the balancer's own cursor. */
  pick(hint: PickHint): Target | undefined;
  /**
   * Call when an attempt starts on `target`; the returned function ends it with its outcome (call once).
   * Pass `retry: true` for every attempt after the first so the retry budget counts it.
   */
  begin(target: Target, retry?: boolean): (outcome: AttemptOutcome) => void;
  /** After `pick` returned undefined: which 503 to send. */
  noTargetReason(hint: PickHint): NoTargetReason;
  /**
   * After `pick` returned undefined: milliseconds until an ejected target may take traffic again, or undefined
   * when that is unknown (a target is available but excluded, or the rest are down by active checks).
   */
  retryAfterMs(): number | undefined;
  readonly retry: RetryPolicy;
  /** Undefined unless `balance: consistent-hash`; says which request part the data path hashes. */
  readonly hashOn: HashOn | undefined;
  readonly sticky: StickySessions | undefined;
  /** Stops health checks and discovery and releases the targets (ones no other pool keeps start draining). */
  close(): void;
}
