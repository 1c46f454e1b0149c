/**
 * @module `jwt-auth`: verifies a JWT (jose) from `Authorization: Bearer` or a cookie, with keys given inline
 * (`secret`, `publicKey` PEM, `jwks`) or fetched from `jwksUrl` (./jwks.ts). Checks `exp`/`nbf` with a clock
 * skew, and `iss`/`aud` when configured. On success sets `ex.claims`, forwards chosen claims as headers, and
 * maps the token to a consumer through the consumers' `jwt` claim mappings.
 *
 * ```yaml
 * jwt:
 *   type: jwt-auth
 *   jwksUrl: https://issuer.example/.well-known/jwks.json
 *   issuer: https://issuer.example
 *   audience: orders
 *   forwardClaims: { sub: x-user-id }
 * ```
 * Failures: no token → 401 GW_AUTH_MISSING; bad token → 401 GW_AUTH_INVALID (`error="invalid_token"`);
 * a token whose key cannot be fetched because the JWKS endpoint fails → 503 GW_AUTH_UNAVAILABLE;
 * `consumer: required` and no consumer maps → 403 GW_FORBIDDEN.
 */
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import { decodeProtectedHeader, errors, type JWTVerifyOptions, jwtVerify } from 'jose';
import { z } from 'zod';
import { duration, headerName } from '../../config/primitives.ts';
import { quoted, replyVerdict } from '../replies.ts';
import { realm, zodParser } from '../schema.ts';
import { CONTINUE, type Exchange, type PolicyDeps, type PolicyFactory, type Verdict } from '../types.ts';
import { claimForwarder, forwardClaims } from './forward.ts';
import { RemoteJwks } from './jwks.ts';
import { ALL_ALGORITHMS, ASYMMETRIC_ALGORITHMS, algorithmsFor, type Jwk, KeySet, keyFits } from './keyset.ts';
import { createTokenReader, tokenSource } from './token.ts';

const stringOrList = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

const options = z
  .strictObject({
    /** HMAC secret (HS256/384/512), at least 32 bytes; use a `${ENV}` reference. */
    secret: z.string().min(32, 'HMAC secrets need at least 32 characters').optional(),
    /** PEM public key (SPKI) or certificate. */
    publicKey: z.string().optional(),
    /** Inline JWK set. */
    jwks: z.strictObject({ keys: z.array(z.looseObject({ kty: z.string() })).min(1) }).optional(),
    jwksUrl: z.url({ protocol: /^https?$/ }).optional(),
    // A zero period would refetch the key set in a tight loop (setInterval 0).
    jwksRefresh: duration.refine((ms) => ms >= 100, 'must be at least 100ms').default(600_000),
    jwksCooldown: duration.default(30_000),
    jwksTimeout: duration.refine((ms) => ms >= 1, 'must be at least 1ms').default(5_000),
    algorithms: z.array(z.enum(ALL_ALGORITHMS)).min(1).optional(),
    issuer: stringOrList.optional(),
    audience: stringOrList.optional(),
    clockSkew: duration.default(30_000),
    /** Reject tokens whose `iat` is older than this. */
    maxAge: duration.optional(),
    requiredClaims: z.array(z.string()).default([]),
    token: tokenSource,
    /** Claim → upstream header, e.g. `{ sub: x-user-id }`. */
    forwardClaims: z.record(z.string(), headerName).default({}),
    /** `required`: a valid token that maps to no consumer is refused (403). */
    consumer: z.enum(['optional', 'required']).default('optional'),
    /** Remove the token's Authorization header before forwarding. */
    stripToken: z.boolean().default(false),
    realm,
  })
  .superRefine((o, ctx) => {
    const sources = [o.secret, o.publicKey, o.jwks, o.jwksUrl].filter((s) => s !== undefined).length;
    if (sources !== 1) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of secret, publicKey, jwks, jwksUrl', path: [] });
    }
    let single: KeyObject | undefined;
    if (o.secret !== undefined) single = createSecretKey(Buffer.from(o.secret, 'utf8'));
    if (o.publicKey !== undefined) {
      try {
        single = createPublicKey(o.publicKey);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not a PEM public key or certificate', path: ['publicKey'] });
      }
    }
    // A single key with an algorithm it cannot verify (HS256 next to an RSA key) invites algorithm confusion,
    // and every such token would make the verifier throw.
    const unfit = single === undefined ? [] : (o.algorithms ?? []).filter((alg) => !keyFits(single, alg));
    if (unfit.length > 0) {
      ctx.addIssue({ code: 'custom', message: `the key cannot verify ${unfit.join(', ')}`, path: ['algorithms'] });
    }
    if (o.jwks !== undefined && new KeySet(o.jwks.keys as Jwk[]).size === 0) {
      ctx.addIssue({ code: 'custom', message: 'no usable verification key', path: ['jwks'] });
    }
  });
export type JwtAuthOptions = z.output<typeof options>;

type KeySource =
  | { kind: 'static'; key: KeyObject }
  | { kind: 'local'; keys: KeySet }
  | { kind: 'remote'; jwks: RemoteJwks };

function keySource(c: JwtAuthOptions, deps: PolicyDeps): KeySource {
  if (c.secret !== undefined) return { kind: 'static', key: createSecretKey(Buffer.from(c.secret, 'utf8')) };
  if (c.publicKey !== undefined) return { kind: 'static', key: createPublicKey(c.publicKey) };
  if (c.jwks !== undefined) return { kind: 'local', keys: new KeySet(c.jwks.keys as Jwk[]) };
  return {
    kind: 'remote',
    jwks: new RemoteJwks({
      url: c.jwksUrl!,
      refreshMs: c.jwksRefresh,
      cooldownMs: c.jwksCooldown,
      timeoutMs: c.jwksTimeout,
      now: deps.now,
      log: deps.log,
    }),
  };
}

/** details for a jose failure (access log only). */
function failureDetails(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'jwt_expired';
  if (err instanceof errors.JWTClaimValidationFailed) return `jwt_claim_${err.claim}`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'jwt_bad_signature';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'jwt_alg_not_allowed';
  if (err instanceof errors.JWTInvalid || err instanceof errors.JWSInvalid) return 'jwt_malformed';
  if (err instanceof errors.JOSEError) return 'jwt_invalid';
  throw err;
}

export const factory: PolicyFactory<JwtAuthOptions> = {
  type: 'jwt-auth',
  parse: zodParser(options),
  create(name, c, deps) {
    const source = keySource(c, deps);
    const algorithms =
      c.algorithms ?? (source.kind === 'static' ? algorithmsFor(source.key) : ASYMMETRIC_ALGORITHMS.slice());
    const allowed = new Set<string>(algorithms);
    const verifyOptions: JWTVerifyOptions = {
      algorithms,
      clockTolerance: Math.ceil(c.clockSkew / 1000),
      ...(c.issuer !== undefined && { issuer: c.issuer }),
      ...(c.audience !== undefined && { audience: c.audience }),
      ...(c.maxAge !== undefined && { maxTokenAge: Math.floor(c.maxAge / 1000) }),
      ...(c.requiredClaims.length > 0 && { requiredClaims: c.requiredClaims }),
    };
    const readToken = createTokenReader(c.token);
    const forward = claimForwarder(c.forwardClaims);
    const bearer = `Bearer realm=${quoted(c.realm)}`;
    const missing = replyVerdict('GW_AUTH_MISSING', 'jwt_missing', { 'www-authenticate': bearer });
    const invalidHeaders = { 'www-authenticate': `${bearer}, error="invalid_token"` };
    const invalid = (details: string) => replyVerdict('GW_AUTH_INVALID', details, invalidHeaders);
    const malformed = invalid('jwt_malformed');
    const algRefused = invalid('jwt_alg_not_allowed');
    const unknownKid = invalid('jwt_unknown_kid');
    const unavailable = replyVerdict('GW_AUTH_UNAVAILABLE', 'jwks_unavailable');
    const noConsumer = replyVerdict('GW_FORBIDDEN', 'jwt_no_consumer');
    const consumerRequired = c.consumer === 'required';
    const stripToken = c.stripToken;
    const consumers = deps.consumers;

    async function verify(ex: Exchange, token: string, key: KeyObject): Promise<Verdict> {
      let payload: Record<string, unknown>;
      try {
        const opts = { ...verifyOptions, currentDate: new Date(deps.now()) };
        payload = (await jwtVerify(token, key, opts)).payload;
      } catch (err) {
        return invalid(failureDetails(err));
      }
      const consumer = consumers.byClaims?.(payload);
      if (consumer === undefined && consumerRequired) return noConsumer;
      if (consumer !== undefined) ex.consumer = consumer;
      ex.claims = payload;
      if (forward !== undefined) forwardClaims(ex.request.headers, payload, forward);
      if (stripToken) delete ex.request.headers.authorization;
      return CONTINUE;
    }

    async function viaRemote(ex: Exchange, token: string, jwks: RemoteJwks, kid: string | undefined, alg: string) {
      const found = await jwks.lookup(kid, alg);
      if (found.kind === 'unknown') return unknownKid;
      if (found.kind === 'unavailable') return unavailable;
      return verify(ex, token, found.key);
    }

    return {
      name,
      type: 'jwt-auth',
      authenticates: true,
      forwardsHeaders: Object.values(c.forwardClaims),
      onRequest(ex: Exchange): Verdict | Promise<Verdict> {
        const token = readToken(ex.request.headers);
        if (token === undefined) return missing;
        let kid: string | undefined;
        let alg: string;
        try {
          const header = decodeProtectedHeader(token);
          kid = header.kid;
          alg = header.alg ?? '';
        } catch {
          return malformed;
        }
        if (!allowed.has(alg)) return algRefused;
        if (source.kind === 'static') return verify(ex, token, source.key);
        if (source.kind === 'local') {
          const key = source.keys.find(kid, alg);
          return key === undefined ? unknownKid : verify(ex, token, key);
        }
        const key = source.jwks.find(kid, alg);
        return key !== undefined ? verify(ex, token, key) : viaRemote(ex, token, source.jwks, kid, alg);
      },
      async close() {
        if (source.kind === 'remote') source.jwks.close();
      },
    };
  },
};
