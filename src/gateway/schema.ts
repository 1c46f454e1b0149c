/** @module Config schema of the gateway layer: consumers, named policy instances, identity headers. */
import { z } from 'zod';
import { headerName, name } from '../config/primitives.ts';

const SHA256_RE = /^sha256:[0-9a-fA-F]{64}$/;
const SCRYPT_RE = /^scrypt:[A-Za-z0-9+/]+={0,2}:[A-Za-z0-9+/]+={0,2}$/;

const apiKey = z
  .string()
  .min(1)
  .refine((k) => !k.startsWith('sha256:') || SHA256_RE.test(k), 'sha256 keys are "sha256:" + 64 hex digits')
  .meta({ description: 'A plain API key (use ENV references) or "sha256:<hex>" of the key' });

const basicUser = z.strictObject({
  username: z
    .string()
    .min(1)
    .refine((u) => !u.includes(':'), 'usernames cannot contain ":"'),
  password: z
    .string()
    .min(1)
    .refine((p) => !p.startsWith('scrypt:') || SCRYPT_RE.test(p), 'scrypt hashes are "scrypt:<saltB64>:<hashB64>"')
    .meta({
      description:
        'A "scrypt:<saltB64>:<hashB64>" hash (portico hash-password) or a plain password from an ENV reference',
    }),
});

const jwtMapping = z
  .strictObject({
    claim: z.string().min(1).default('sub'),
    value: z.union([z.string(), z.number(), z.boolean()]).transform(String),
  })
  .meta({ description: 'Tokens whose claim equals this value belong to this consumer' });

const oneOrMany = <T extends z.ZodType>(item: T) =>
  z.union([item, z.array(item)]).transform((v) => (Array.isArray(v) ? v : [v]) as z.output<T>[]);

export const consumer = z.strictObject({
  name,
  groups: z.array(z.string()).default([]),
  metadata: z.record(z.string(), z.string()).default({}),
  /** Plain API keys (use `${ENV}` references) or `sha256:<hex>` hashes. */
  apiKeys: z.array(apiKey).default([]),
  /** Basic-auth users; passwords as scrypt hashes (or plain `${ENV}` references). */
  basicAuth: z.array(basicUser).default([]),
  /** JWT claim mapping (`{ claim: sub, value: "1234" }`); a list matches any. */
  jwt: oneOrMany(jwtMapping).default([]),
  /** mTLS: exact subject of a verified client certificate, e.g. `CN=billing,O=Acme`. */
  mtls: oneOrMany(z.strictObject({ subject: z.string().min(1) })).default([]),
});
export type ConsumerConfig = z.output<typeof consumer>;

/**
 * A named policy: `type` picks the factory; the other keys are that factory's options, checked by its own
 * `parse` (src/gateway/registry.ts), so they are loose here.
 */
export const policyEntry = z.looseObject({ type: z.string() });

/** Headers that carry the identified consumer upstream (src/gateway/identity.ts). */
export const identitySettings = z.strictObject({
  consumerHeader: headerName.default('x-consumer'),
  groupsHeader: headerName.default('x-consumer-groups'),
});
export type IdentitySettings = z.output<typeof identitySettings>;

type ParseResult<C> = { ok: true; config: C } | { ok: false; issues: { path: string; message: string }[] };

/**
 * Turns a zod schema into a `PolicyFactory.parse`. Issue paths are joined with "." (`keys.0.kid`); the
 * registry splits them back into YAML path segments.
 */
export function zodParser<S extends z.ZodType>(schema: S): (raw: unknown) => ParseResult<z.output<S>> {
  return (raw) => {
    const r = schema.safeParse(raw);
    if (r.success) return { ok: true, config: r.data };
    return {
      ok: false,
      issues: r.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message })),
    };
  };
}

/** Options every authenticating policy shares: the realm of its WWW-Authenticate challenge. */
export const realm = z
  .string()
  .regex(/^[\x20-\x7e]*$/, 'printable ASCII only')
  .default('portico');
