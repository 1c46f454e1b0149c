/**
 * @module Password hashes for basic-auth consumers: `scrypt:<saltB64>:<hashB64>` (N=16384, r=8, p=1, 32 bytes).
 *
 * Make one with `hashPassword('s3cret')` (the CLI's `portico hash-password` wraps it), or in a shell:
 * node -e "const c=require('crypto');const s=c.randomBytes(16);
 *   console.log('scrypt:'+s.toString('base64')+':'+c.scryptSync(process.argv[1],s,32).toString('base64'))" 's3cret'
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const KEY_LENGTH = 32;
const PARAMS = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

function scryptAsync(password: string, salt: Buffer, keyLength: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, keyLength, PARAMS, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** A new `scrypt:<saltB64>:<hashB64>` string for `password`, with a random 16-byte salt. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, KEY_LENGTH);
  return `scrypt:${salt.toString('base64')}:${key.toString('base64')}`;
}

/** A stored password, prepared once per generation. */
export type StoredPassword =
  | { readonly kind: 'scrypt'; readonly salt: Buffer; readonly hash: Buffer }
  | { readonly kind: 'plain'; readonly digest: Buffer };

export function parseStoredPassword(text: string): StoredPassword {
  if (text.startsWith('scrypt:')) {
    const [, salt, hash] = text.split(':');
    return { kind: 'scrypt', salt: Buffer.from(salt!, 'base64'), hash: Buffer.from(hash!, 'base64') };
  }
  return { kind: 'plain', digest: createHash('sha256').update(text).digest() };
}

/** Constant-time with respect to the stored secret. */
export async function verifyPassword(stored: StoredPassword, password: string): Promise<boolean> {
  if (stored.kind === 'plain') {
    return timingSafeEqual(createHash('sha256').update(password).digest(), stored.digest);
  }
  const key = await scryptAsync(password, stored.salt, stored.hash.length);
  return timingSafeEqual(key, stored.hash);
}
