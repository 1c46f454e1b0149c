/**
 * @module The running config as the admin API shows it: a deep copy with every secret replaced by
 * "[redacted]". Secrets are found by where they sit (consumers' apiKeys and passwords, policy and sticky
 * secrets, TLS private keys, private JWK members, credential-bearing headers) and by what they look like
 * (PEM private keys, passwords in URLs), so a policy type added later is covered when it uses those names.
 */

export const REDACTED = '[redacted]';

/** Keys whose value is a secret wherever they appear. */
const SECRET_KEYS: ReadonlySet<string> = new Set([
  'apiKeys',
  'password',
  'secret',
  'clientSecret',
  'token',
  'privateKey',
  'passphrase',
]);

/** Header names whose values are credentials (in header rules and transforms). */
const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'x-api-key',
]);

/** Members of a JWK that hold private or symmetric key material (RFC 7518 §6). */
const PRIVATE_JWK_MEMBERS: ReadonlySet<string> = new Set(['d', 'k', 'p', 'q', 'dp', 'dq', 'qi', 'oth']);

const URL_CREDENTIALS = /^([a-z][a-z0-9+.-]*:\/\/)[^@/?#]*@/i;

/** A redacted deep copy of `value` (the config is frozen; it is never changed). */
export function redactConfig(value: unknown): unknown {
  return redact(value);
}

function redact(value: unknown): unknown {
  if (typeof value === 'string') return redactString(value);
  if (Array.isArray(value)) return value.map(redact);
  if (value === null || typeof value !== 'object') return value;
  const obj = value as Record<string, unknown>;
  const isJwk = typeof obj.kty === 'string';
  // A `key` beside a `cert` is a TLS private key (listener certificates, upstream client certificates).
  const isKeyPair = 'cert' in obj;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    if (
      SECRET_KEYS.has(k) ||
      (isKeyPair && k === 'key') ||
      (isJwk && PRIVATE_JWK_MEMBERS.has(k)) ||
      (CREDENTIAL_HEADERS.has(k.toLowerCase()) && typeof v === 'string')
    ) {
      out[k] = Array.isArray(v) ? v.map(() => REDACTED) : REDACTED;
    } else {
      out[k] = redact(v);
    }
  }
  return out;
}

function redactString(s: string): string {
  if (s.includes('PRIVATE KEY-----')) return REDACTED;
  return URL_CREDENTIALS.test(s) ? s.replace(URL_CREDENTIALS, `$1${REDACTED}@`) : s;
}
