/**
 * @module `oauth2-introspection`: asks the authorization server whether a bearer token is active (RFC 7662),
 * POSTing `token=…` with the gateway's client credentials (undici). Answers are cached by the token's SHA-256
 * until the token's `exp` or `cacheTtl`, whichever is sooner; concurrent requests with one token share one
 * call. Active → `ex.claims` = the introspection response, consumer mapped by the consumers' `jwt` claim
 * mappings; inactive → 401; server unreachable or erroring → 503.
 *
 * ```yaml
 * introspect:
 *   type: oauth2-introspection
 *   url: https://auth.example/oauth2/introspect
 *   clientId: portico
 *   clientSecret: ${INTROSPECTION_SECRET}
 *   forwardClaims: { sub: x-user-id }
 * ```
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { Agent, request } from 'undici';
import { z } from 'zod';
import { duration, headerName } from '../../config/primitives.ts';
import { claimForwarder, forwardClaims } from '../jwt-auth/forward.ts';
import { createTokenReader, tokenSource } from '../jwt-auth/token.ts';
import { MAX_IDP_DOCUMENT_BYTES, readLimitedJson } from '../limited-json.ts';
import { quoted, replyVerdict } from '../replies.ts';
import { realm, zodParser } from '../schema.ts';
import { CONTINUE, type Exchange, type PolicyFactory, type Verdict } from '../types.ts';

const options = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  clientId: z.string().min(1),
  clientSecret: z.string().min(1),
  /** `basic`: HTTP Basic client authentication (RFC 6749 §2.3.1); `body`: client_id/client_secret form fields. */
  clientAuth: z.enum(['basic', 'body']).default('basic'),
  tokenTypeHint: z.string().optional(),
  /** Longest time an active answer is reused (never past the token's `exp`). */
  cacheTtl: duration.default(60_000),
  /** How long an inactive answer is reused (0: not cached). */
  inactiveTtl: duration.default(5_000),
  cacheSize: z.number().int().positive().default(10_000),
  timeout: duration.default(2_000),
  token: tokenSource,
  forwardClaims: z.record(z.string(), headerName).default({}),
  consumer: z.enum(['optional', 'required']).default('optional'),
  realm,
});
export type IntrospectionOptions = z.output<typeof options>;

type Answer =
  | { readonly active: true; readonly claims: Readonly<Record<string, unknown>> }
  | { readonly active: false };
const INACTIVE: Answer = Object.freeze({ active: false });

const formEscape = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');

export const factory: PolicyFactory<IntrospectionOptions> = {
  type: 'oauth2-introspection',
  parse: zodParser(options),
  create(name, c, deps) {
    const readToken = createTokenReader(c.token);
    const forward = claimForwarder(c.forwardClaims);
    const cache = new LRUCache<string, Answer>({ max: c.cacheSize, ttl: c.cacheTtl, ttlAutopurge: false });
    const inflight = new Map<string, Promise<Answer | undefined>>();
    const dispatcher = new Agent({ connect: { timeout: c.timeout } });
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    };
    let bodyPrefix = c.tokenTypeHint === undefined ? '' : `token_type_hint=${formEscape(c.tokenTypeHint)}&`;
    if (c.clientAuth === 'basic') {
      const id = `${formEscape(c.clientId)}:${formEscape(c.clientSecret)}`;
      headers.authorization = `Basic ${Buffer.from(id).toString('base64')}`;
    } else {
      bodyPrefix += `client_id=${formEscape(c.clientId)}&client_secret=${formEscape(c.clientSecret)}&`;
    }
    const bearer = `Bearer realm=${quoted(c.realm)}`;
    const missing = replyVerdict('GW_AUTH_MISSING', 'token_missing', { 'www-authenticate': bearer });
    const inactive = replyVerdict('GW_AUTH_INVALID', 'token_inactive', {
      'www-authenticate': `${bearer}, error="invalid_token"`,
    });
    const unavailable = replyVerdict('GW_AUTH_UNAVAILABLE', 'introspection_unavailable');
    const noConsumer = replyVerdict('GW_FORBIDDEN', 'token_no_consumer');

    /** undefined: the server could not answer. */
    async function introspect(token: string): Promise<Answer | undefined> {
      try {
        const res = await request(c.url, {
          method: 'POST',
          dispatcher,
          headers,
          body: `${bodyPrefix}token=${formEscape(token)}`,
          headersTimeout: c.timeout,
          bodyTimeout: c.timeout,
          signal: AbortSignal.timeout(c.timeout),
        });
        if (res.statusCode !== 200) {
          await res.body.dump();
          deps.log.warn({ policy: name, status: res.statusCode }, 'introspection: unexpected status');
          return undefined;
        }
        const doc = (await readLimitedJson(res.body, MAX_IDP_DOCUMENT_BYTES, 'introspection answer')) as Record<
          string,
          unknown
        >;
        if (doc === null || typeof doc !== 'object' || doc.active !== true) return INACTIVE;
        return { active: true, claims: Object.freeze(doc) };
      } catch (err) {
        deps.log.warn({ policy: name, err: (err as Error).message }, 'introspection: request failed');
        return undefined;
      }
    }

    function remember(key: string, answer: Answer): void {
      if (!answer.active) {
        if (c.inactiveTtl > 0) cache.set(key, answer, { ttl: c.inactiveTtl });
        return;
      }
      const exp = answer.claims.exp;
      const untilExp = typeof exp === 'number' ? exp * 1000 - deps.now() : c.cacheTtl;
      const ttl = Math.min(c.cacheTtl, untilExp);
      if (ttl > 0) cache.set(key, answer, { ttl });
    }

    function accept(ex: Exchange, answer: Answer): Verdict {
      if (!answer.active) return inactive;
      const claims = answer.claims;
      // A cached answer may outlive the token by less than the cache's clock granularity.
      if (typeof claims.exp === 'number' && claims.exp * 1000 <= deps.now()) return inactive;
      const consumer = deps.consumers.byClaims?.(claims);
      if (consumer === undefined && c.consumer === 'required') return noConsumer;
      if (consumer !== undefined) ex.consumer = consumer;
      ex.claims = claims;
      if (forward !== undefined) forwardClaims(ex.request.headers, claims, forward);
      return CONTINUE;
    }

    async function lookup(ex: Exchange, key: string, token: string): Promise<Verdict> {
      let pending = inflight.get(key);
      if (pending === undefined) {
        pending = introspect(token).finally(() => inflight.delete(key));
        inflight.set(key, pending);
        const answer = await pending;
        if (answer !== undefined) remember(key, answer);
        return answer === undefined ? unavailable : accept(ex, answer);
      }
      const answer = await pending;
      return answer === undefined ? unavailable : accept(ex, answer);
    }

    return {
      name,
      type: 'oauth2-introspection',
      authenticates: true,
      forwardsHeaders: Object.values(c.forwardClaims),
      onRequest(ex: Exchange): Verdict | Promise<Verdict> {
        const token = readToken(ex.request.headers);
        if (token === undefined) return missing;
        const key = createHash('sha256').update(token).digest('base64');
        const cached = cache.get(key);
        if (cached !== undefined) return accept(ex, cached);
        return lookup(ex, key, token);
      },
      async close() {
        await dispatcher.close();
      },
    };
  },
};
