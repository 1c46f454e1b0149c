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

export interface Pool {
  readonly name: string;
  readonly targets: readonly Target[];
  /** Picks a target, or undefined when none is available. Pure apart from the balancer's own cursor. */
  pick(hint: PickHint): Target | undefined;
  /** Call when an attempt starts on `target`; the returned function ends it with its outcome (call once). */
  begin(target: Target): (outcome: AttemptOutcome) => void;
}
