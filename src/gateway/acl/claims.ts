/**
 * @module `claims`: authorization rules on the verified claims (jwt-auth or oauth2-introspection): required
 * scopes and claim values. Every rule must hold; otherwise 403. No claims at all → 403.
 *
 * ```yaml
 * orders-write:
 *   type: claims
 *   scopes: [orders:write]                 # all of these (or { any: [a, b] })
 *   claims:
 *     tenant: acme                         # equals
 *     role: { oneOf: [admin, editor] }     # one of
 *     groups: { contains: ops }            # array (or space-separated string) contains
 * ```
 * Scopes are read from `scope` (space-separated, RFC 8693) or `scp` (array), or from `scopeClaim`.
 */
import { z } from 'zod';
import { replyVerdict } from '../replies.ts';
import { zodParser } from '../schema.ts';
import { CONTINUE, type Exchange, type PolicyFactory, type Verdict } from '../types.ts';

const scalar = z.union([z.string(), z.number(), z.boolean()]);
const rule = z.union([
  scalar.transform((equals) => ({ kind: 'equals' as const, values: [equals] })),
  z.strictObject({ equals: scalar }).transform((r) => ({ kind: 'equals' as const, values: [r.equals] })),
  z.strictObject({ oneOf: z.array(scalar).min(1) }).transform((r) => ({ kind: 'equals' as const, values: r.oneOf })),
  z.strictObject({ contains: scalar }).transform((r) => ({ kind: 'contains' as const, values: [r.contains] })),
]);

const options = z
  .strictObject({
    scopes: z
      .union([
        z.array(z.string().min(1)).transform((all) => ({ all, any: [] as string[] })),
        z.strictObject({ all: z.array(z.string().min(1)).default([]), any: z.array(z.string().min(1)).default([]) }),
      ])
      .default({ all: [], any: [] }),
    scopeClaim: z.string().min(1).optional(),
    claims: z.record(z.string().min(1), rule).default({}),
  })
  .refine((o) => o.scopes.all.length + o.scopes.any.length + Object.keys(o.claims).length > 0, {
    message: 'give scopes or claims',
  });
export type ClaimsOptions = z.output<typeof options>;

/** Scopes of a token: a space-separated string or an array of strings. */
export function scopesOf(value: unknown): readonly string[] {
  if (typeof value === 'string') return value.split(' ').filter((s) => s !== '');
  if (Array.isArray(value)) return value.filter((s): s is string => typeof s === 'string');
  return [];
}

function matches(kind: 'equals' | 'contains', values: readonly (string | number | boolean)[], claim: unknown) {
  if (claim === undefined || claim === null) return false;
  if (kind === 'equals')
    return values.some((v) => v === claim || (typeof claim !== 'object' && String(v) === String(claim)));
  const items = typeof claim === 'string' ? claim.split(' ') : Array.isArray(claim) ? claim : [];
  return items.some((item) => item === values[0] || String(item) === String(values[0]));
}

export const factory: PolicyFactory<ClaimsOptions> = {
  type: 'claims',
  parse: zodParser(options),
  create(name, c) {
    const all = c.scopes.all;
    const any = c.scopes.any;
    const checkScopes = all.length + any.length > 0;
    const rules = Object.entries(c.claims);
    const noClaims = replyVerdict('GW_FORBIDDEN', 'claims_missing');
    const scopeDenied = replyVerdict('GW_FORBIDDEN', 'scope_insufficient', {
      'www-authenticate': `Bearer error="insufficient_scope", scope="${[...all, ...any].join(' ')}"`,
    });
    const claimDenied = new Map(rules.map(([claim]) => [claim, replyVerdict('GW_FORBIDDEN', `claim_${claim}`)]));
    return {
      name,
      type: 'claims',
      onRequest(ex: Exchange): Verdict {
        const claims = ex.claims;
        if (claims === undefined) return noClaims;
        if (checkScopes) {
          const granted = scopesOf(c.scopeClaim !== undefined ? claims[c.scopeClaim] : (claims.scope ?? claims.scp));
          for (const s of all) if (!granted.includes(s)) return scopeDenied;
          if (any.length > 0 && !any.some((s) => granted.includes(s))) return scopeDenied;
        }
        for (const [claim, r] of rules) if (!matches(r.kind, r.values, claims[claim])) return claimDenied.get(claim)!;
        return CONTINUE;
      },
    };
  },
};
