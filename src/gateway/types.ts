/**
 * @module Contracts of the API-gateway layer: the exchange a policy sees, the policy itself, and its factory.
 *
 * A policy is built once per config generation (parse → create) and its hooks run per request. Hooks answer
 * with a Verdict instead of throwing: `continue` lets the chain go on, `reply` ends the exchange with a local
 * reply (Envoy's StopIteration + sendLocalReply, as data). A hook that throws anyway becomes a 500
 * `GW_INTERNAL` reply, counted and logged by the chain runner.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { LocalReply } from '../errors.ts';

/**
 * `continue`: the chain goes on. `reply`: end the exchange with an error local reply (problem+json).
 * `respond`: end the exchange with a non-error response made by the policy (a CORS preflight's 204); the
 * upstream is not contacted, the response phase of earlier policies still runs, and `replyHeaders` are added.
 */
export type Verdict =
  | { readonly kind: 'continue' }
  | { readonly kind: 'reply'; readonly reply: LocalReply }
  | {
      readonly kind: 'respond';
      readonly status: number;
      readonly headers: Readonly<Record<string, string>>;
      readonly body?: string;
    };
export const CONTINUE: Verdict = Object.freeze({ kind: 'continue' });

/** A caller known to the gateway (config `consumers`). */
export interface Consumer {
  readonly name: string;
  readonly groups: readonly string[];
  readonly metadata: Readonly<Record<string, string>>;
}

/** The request as policies see and may change it before it is forwarded. */
export interface RequestHead {
  readonly method: string;
  /** Normalised path, without the query. Policies may rewrite it. */
  path: string;
  /** Raw query string without the leading `?` ('' when none). Policies may rewrite it. */
  query: string;
  /** Lower-case names. Policies may add, change and delete entries. */
  readonly headers: IncomingHttpHeaders;
}

/** The upstream response head as the response phase sees it; mutable. */
export interface ResponseHead {
  status: number;
  readonly headers: OutgoingHttpHeaders;
}

export interface ClientInfo {
  readonly address: string;
  readonly port: number;
  readonly tls: boolean;
  /** Subject of a verified client certificate (mTLS), when there is one. */
  readonly certificateSubject?: string;
}

export interface Exchange {
  /** Request id; also sent to the client and in the access log. */
  readonly id: string;
  readonly routeName: string;
  /** Path parameters captured by the route (`/users/:id`). */
  readonly params: Readonly<Record<string, string>>;
  readonly client: ClientInfo;
  readonly request: RequestHead;
  /** Set once the upstream answered (response phase only). */
  response?: ResponseHead;
  /** Request body, present only when some policy of the route asked for it (`body.maxBytes`). */
  body?: Buffer;
  /** Response body, present only in the response phase of policies that asked for it. */
  responseBody?: Buffer;
  /** Set by an authentication policy. */
  consumer?: Consumer;
  /** Verified JWT claims, set by jwt-auth. */
  claims?: Readonly<Record<string, unknown>>;
  /** Headers to add to the client response (e.g. RateLimit), whatever the outcome. */
  readonly replyHeaders: Record<string, string>;
  /** Per-request data passed between phases (Envoy filter state). */
  readonly state: Map<symbol, unknown>;
  /** Milliseconds since the epoch; injectable for tests. */
  now(): number;
}

/** Built once per config generation; hooks run per request. */
export interface Policy {
  /** Instance name from YAML (`policies.<name>`). */
  readonly name: string;
  readonly type: string;
  /** Opt in to a buffered request body (over the limit: 413). */
  readonly requestBody?: { readonly maxBytes: number };
  /** Opt in to a buffered response body (over the limit: 502). */
  readonly responseBody?: { readonly maxBytes: number };
  /** Authentication policies: on a route that lists several, any one succeeding suffices. */
  readonly authenticates?: boolean;
  /**
   * Identity headers this policy sets upstream (e.g. jwt-auth `forwardClaims`). The proxy strips them from
   * every client request on the route before the chain runs (src/gateway/identity.ts), so none can be spoofed.
   */
  readonly forwardsHeaders?: readonly string[];
  onRequest?(ex: Exchange): Verdict | Promise<Verdict>;
  /** Runs in reverse order after the upstream answered; may change `ex.response` and `ex.responseBody`. */
  onResponse?(ex: Exchange): void | Promise<void>;
  /** Timers, connections. Called when the generation that built it is retired. */
  close?(): Promise<void>;
}

export interface PolicyDeps {
  readonly consumers: ConsumerDirectory;
  readonly store: import('../state/types.ts').Store;
  /** Milliseconds since the epoch (injectable clock). */
  now(): number;
  readonly log: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
}

/** Lookup of consumers by credential, built once per generation from config `consumers`. */
export interface ConsumerDirectory {
  byApiKey(key: string): Consumer | undefined;
  byBasic(user: string, password: string): Promise<Consumer | undefined>;
  byName(name: string): Consumer | undefined;
  /** The consumer whose `jwt` mapping matches one of these verified claims. */
  byClaims?(claims: Readonly<Record<string, unknown>>): Consumer | undefined;
  /** The consumer whose `mtls.subject` equals this verified certificate subject. */
  byCertificateSubject?(subject: string): Consumer | undefined;
}

export interface PolicyFactory<C> {
  /** YAML `type:`; equals the policy's folder name. */
  readonly type: string;
  /**
   * zod-style parse of the policy's options, i.e. its YAML object WITHOUT the `type` key (the registry removes
   * it). Returns the checked config or issues, each with a path relative to the options joined with "."
   * (`keys.0.kid`); `zodParser` in ./schema.ts builds this from a zod schema.
   */
  parse(raw: unknown): { ok: true; config: C } | { ok: false; issues: { path: string; message: string }[] };
  /** No network I/O here (start background work lazily or with unref'd timers). */
  create(name: string, config: Readonly<C>, deps: PolicyDeps): Policy;
}
