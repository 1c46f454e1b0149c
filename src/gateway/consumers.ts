/**
 * @module The consumer directory: finds the consumer a verified credential belongs to.
 *
 * Built once per config generation from config `consumers`. API keys are kept only as SHA-256 digests, so
 * a lookup hashes the presented key, finds the candidate by digest and confirms it with timingSafeEqual;
 * nothing compares the secret itself byte by byte. Keys that verified are remembered (raw key → consumer, a
 * small bounded Map) so a client sending the same key on every request is not hashed every time: a Map
 * lookup compares hash codes (V8 seeds its string hash randomly per process) and only compares characters of
 * an entry whose hash code matches, so its timing does not tell an attacker how close a guess is to a real
 * key; a miss (unknown key) always takes the hashing path. Unknown keys are never remembered, so a flood of
 * guesses cannot grow or churn the cache. Basic-auth passwords are scrypt hashes; a successful
 * check is remembered (keyed by a digest of user and password) so scrypt runs once per credential, not per
 * request.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { parseStoredPassword, type StoredPassword, verifyPassword } from './basic-auth/password.ts';
import type { ConsumerConfig } from './schema.ts';
import type { Consumer, ConsumerDirectory } from './types.ts';

interface KeyEntry {
  readonly digest: Buffer;
  readonly consumer: Consumer;
}
interface BasicEntry {
  readonly stored: StoredPassword;
  readonly consumer: Consumer;
}

/** Verified basic credentials are remembered this long (a password change is a config reload anyway). */
const BASIC_CACHE_TTL_MS = 5 * 60_000;
const BASIC_CACHE_MAX = 10_000;
/** Verified raw API keys remembered; when full, the oldest entry goes (Map order is insertion order). */
const KEY_CACHE_MAX = 1024;
/** Longer presented keys are not remembered (bounded memory: at most KEY_CACHE_MAX × this). */
const KEY_CACHE_MAX_LENGTH = 256;
/** Checked against when the user is unknown, so timing does not reveal which usernames exist. */
const DUMMY_PASSWORD = parseStoredPassword(
  'scrypt:AAAAAAAAAAAAAAAAAAAAAA==:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
);

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function keyDigest(configured: string): Buffer {
  return configured.startsWith('sha256:') ? Buffer.from(configured.slice(7), 'hex') : sha256(configured);
}

class Directory implements ConsumerDirectory {
  readonly #byName = new Map<string, Consumer>();
  /** base64 of the key's SHA-256 → entry. */
  readonly #byKey = new Map<string, KeyEntry>();
  /** Raw keys that verified → consumer (see the module comment). */
  readonly #recentKeys = new Map<string, Consumer>();
  readonly #byUser = new Map<string, BasicEntry>();
  /** `claim \0 value` → consumer; #claimNames lists the claims worth looking at. */
  readonly #byClaim = new Map<string, Consumer>();
  readonly #claimNames: string[] = [];
  readonly #bySubject = new Map<string, Consumer>();
  readonly #verified = new LRUCache<string, Consumer>({ max: BASIC_CACHE_MAX, ttl: BASIC_CACHE_TTL_MS });

  constructor(consumers: readonly ConsumerConfig[]) {
    for (const c of consumers) {
      const consumer: Consumer = Object.freeze({
        name: c.name,
        groups: Object.freeze([...c.groups]),
        metadata: Object.freeze({ ...c.metadata }),
      });
      this.#byName.set(c.name, consumer);
      for (const key of c.apiKeys) {
        const digest = keyDigest(key);
        this.#byKey.set(digest.toString('base64'), { digest, consumer });
      }
      for (const u of c.basicAuth) this.#byUser.set(u.username, { stored: parseStoredPassword(u.password), consumer });
      for (const m of c.jwt) {
        this.#byClaim.set(`${m.claim}\0${m.value}`, consumer);
        if (!this.#claimNames.includes(m.claim)) this.#claimNames.push(m.claim);
      }
      for (const m of c.mtls) this.#bySubject.set(m.subject, consumer);
    }
  }

  byName(name: string): Consumer | undefined {
    return this.#byName.get(name);
  }

  byApiKey(key: string): Consumer | undefined {
    const recent = this.#recentKeys.get(key);
    if (recent !== undefined) return recent;
    const digest = sha256(key);
    const entry = this.#byKey.get(digest.toString('base64'));
    // The map lookup already matched the digest; timingSafeEqual makes the final check explicit and uniform.
    if (entry === undefined || !timingSafeEqual(entry.digest, digest)) return undefined;
    if (key.length <= KEY_CACHE_MAX_LENGTH) {
      const recentKeys = this.#recentKeys;
      if (recentKeys.size >= KEY_CACHE_MAX) recentKeys.delete(recentKeys.keys().next().value!);
      recentKeys.set(key, entry.consumer);
    }
    return entry.consumer;
  }

  async byBasic(user: string, password: string): Promise<Consumer | undefined> {
    const cacheKey = createHash('sha256').update(user).update('\0').update(password).digest('base64');
    const hit = this.#verified.get(cacheKey);
    if (hit !== undefined) return hit;
    const entry = this.#byUser.get(user);
    const ok = await verifyPassword(entry?.stored ?? DUMMY_PASSWORD, password);
    if (!ok || entry === undefined) return undefined;
    this.#verified.set(cacheKey, entry.consumer);
    return entry.consumer;
  }

  byClaims(claims: Readonly<Record<string, unknown>>): Consumer | undefined {
    for (const claim of this.#claimNames) {
      const value = claims[claim];
      if (value === undefined || value === null || typeof value === 'object') continue;
      const consumer = this.#byClaim.get(`${claim}\0${String(value)}`);
      if (consumer !== undefined) return consumer;
    }
    return undefined;
  }

  byCertificateSubject(subject: string): Consumer | undefined {
    return this.#bySubject.get(subject);
  }
}

export function createConsumerDirectory(consumers: readonly ConsumerConfig[]): ConsumerDirectory {
  return new Directory(consumers);
}

/** Duplicate names and credentials shared by two consumers, with their paths under `consumers`. */
export function validateConsumers(
  consumers: readonly ConsumerConfig[],
): Array<{ path: (string | number)[]; message: string }> {
  const issues: Array<{ path: (string | number)[]; message: string }> = [];
  const seen = new Map<string, string>();
  const claim = (kind: string, value: string, owner: string, path: (string | number)[]): void => {
    const prev = seen.get(`${kind}\0${value}`);
    if (prev !== undefined && prev !== owner) issues.push({ path, message: `${kind} already belongs to "${prev}"` });
    else if (prev !== undefined) issues.push({ path, message: `duplicate ${kind}` });
    else seen.set(`${kind}\0${value}`, owner);
  };
  const names = new Set<string>();
  consumers.forEach((c, i) => {
    if (names.has(c.name)) issues.push({ path: ['consumers', i, 'name'], message: `duplicate consumer "${c.name}"` });
    names.add(c.name);
    for (const [j, k] of c.apiKeys.entries()) {
      claim('API key', keyDigest(k).toString('hex'), c.name, ['consumers', i, 'apiKeys', j]);
    }
    for (const [j, u] of c.basicAuth.entries()) {
      claim('username', u.username, c.name, ['consumers', i, 'basicAuth', j, 'username']);
    }
    for (const [j, m] of c.jwt.entries()) {
      claim('JWT mapping', `${m.claim}=${m.value}`, c.name, ['consumers', i, 'jwt', j]);
    }
    for (const [j, m] of c.mtls.entries())
      claim('mTLS subject', m.subject, c.name, ['consumers', i, 'mtls', j, 'subject']);
  });
  return issues;
}
