/**
 * @module Forwarding the identified consumer upstream, and stripping what the client claims about it.
 *
 * On a route with policies, the proxy calls `strip` on every request before the chain runs, so a client
 * can never send `x-consumer`, `x-consumer-groups` or a header a policy forwards claims in (`forwardsHeaders`,
 * e.g. jwt-auth `forwardClaims`); only the policies may set them. After a `continue` from the request
 * phase, `forward` sets the consumer headers from `ex.consumer`.
 */
import type { Exchange, Policy, RequestHead } from './types.ts';

export interface IdentityOptions {
  readonly consumerHeader?: string;
  readonly groupsHeader?: string;
}

export interface Identity {
  /** Every header name `strip` removes (lower case). */
  readonly headers: readonly string[];
  strip(request: RequestHead): void;
  forward(ex: Exchange): void;
}

/** Built once per route (and generation) from the route's policies. */
export function createIdentity(policies: readonly Policy[], options: IdentityOptions = {}): Identity {
  const consumerHeader = (options.consumerHeader ?? 'x-consumer').toLowerCase();
  const groupsHeader = (options.groupsHeader ?? 'x-consumer-groups').toLowerCase();
  const headers = [consumerHeader, groupsHeader];
  for (const p of policies) {
    for (const h of p.forwardsHeaders ?? []) {
      const lower = h.toLowerCase();
      if (!headers.includes(lower)) headers.push(lower);
    }
  }
  const n = headers.length;
  return Object.freeze({
    headers: Object.freeze(headers),
    strip(request: RequestHead): void {
      const h = request.headers;
      for (let i = 0; i < n; i++) {
        const name = headers[i]!;
        if (h[name] !== undefined) delete h[name];
      }
    },
    forward(ex: Exchange): void {
      const c = ex.consumer;
      if (c === undefined) return;
      ex.request.headers[consumerHeader] = c.name;
      if (c.groups.length > 0) ex.request.headers[groupsHeader] = c.groups.join(',');
    },
  });
}
