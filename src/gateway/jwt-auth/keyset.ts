/**
 * @module A set of verification keys imported once from JWKs, found per token by `kid` and `alg`.
 * Keys marked `use: enc`, or whose own `alg` differs from the token's, are never used to verify.
 */
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';

interface Entry {
  readonly kid: string | undefined;
  readonly alg: string | undefined;
  readonly key: KeyObject;
}

const CURVES: Readonly<Record<string, string>> = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' };

/** Whether `key` can verify a signature made with `alg`. */
export function keyFits(key: KeyObject, alg: string): boolean {
  const kind = key.asymmetricKeyType;
  if (alg.startsWith('HS')) return key.type === 'secret';
  if (alg.startsWith('RS')) return kind === 'rsa';
  if (alg.startsWith('PS')) return kind === 'rsa' || kind === 'rsa-pss';
  if (alg.startsWith('ES')) return kind === 'ec' && key.asymmetricKeyDetails?.namedCurve === CURVES[alg];
  if (alg === 'Ed25519') return kind === 'ed25519';
  if (alg === 'EdDSA') return kind === 'ed25519' || kind === 'ed448';
  return false;
}

/** Algorithms a single key can verify (defaults for `publicKey` / `secret`). */
export function algorithmsFor(key: KeyObject): string[] {
  return ALL_ALGORITHMS.filter((alg) => keyFits(key, alg));
}

export const ALL_ALGORITHMS = [
  'HS256',
  'HS384',
  'HS512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
export const ASYMMETRIC_ALGORITHMS: readonly string[] = ALL_ALGORITHMS.filter((a) => !a.startsWith('HS'));

export interface Jwk {
  readonly kty?: unknown;
  readonly kid?: unknown;
  readonly alg?: unknown;
  readonly use?: unknown;
  readonly k?: unknown;
  readonly [key: string]: unknown;
}

/** Imports one JWK; undefined when it is not a usable verification key. */
export function importJwk(jwk: Jwk): KeyObject | undefined {
  if (jwk.use === 'enc') return undefined;
  try {
    if (jwk.kty === 'oct')
      return typeof jwk.k === 'string' ? createSecretKey(Buffer.from(jwk.k, 'base64url')) : undefined;
    const key = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    return key.type === 'public' ? key : undefined;
  } catch {
    return undefined;
  }
}

export class KeySet {
  readonly #entries: Entry[] = [];
  readonly #byKid = new Map<string, Entry[]>();

  /** Keys that fail to import are skipped; `skipped` counts them. */
  readonly skipped: number;

  constructor(jwks: readonly Jwk[]) {
    let skipped = 0;
    for (const jwk of jwks) {
      const key = importJwk(jwk);
      if (key === undefined) {
        skipped++;
        continue;
      }
      const entry: Entry = {
        kid: typeof jwk.kid === 'string' ? jwk.kid : undefined,
        alg: typeof jwk.alg === 'string' ? jwk.alg : undefined,
        key,
      };
      this.#entries.push(entry);
      if (entry.kid !== undefined) {
        const list = this.#byKid.get(entry.kid);
        if (list === undefined) this.#byKid.set(entry.kid, [entry]);
        else list.push(entry);
      }
    }
    this.skipped = skipped;
  }

  get size(): number {
    return this.#entries.length;
  }

  /** The key for a token's `kid` (or, without a kid, the first key that fits `alg`). */
  find(kid: string | undefined, alg: string): KeyObject | undefined {
    const candidates = kid === undefined ? this.#entries : this.#byKid.get(kid);
    if (candidates === undefined) return undefined;
    for (const e of candidates) {
      if ((e.alg === undefined || e.alg === alg) && keyFits(e.key, alg)) return e.key;
    }
    return undefined;
  }
}
