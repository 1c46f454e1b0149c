/**
 * @module `basic-auth`: identifies the consumer by HTTP Basic credentials (RFC 7617) checked against the
 * consumers' `basicAuth` users (scrypt hashes, see ./password.ts). The Authorization header is removed
 * before forwarding unless `keep` is set.
 *
 * ```yaml
 * basic: { type: basic-auth, realm: admin }
 * ```
 */
import { z } from 'zod';
import { quoted, replyVerdict } from '../replies.ts';
import { realm, zodParser } from '../schema.ts';
import { CONTINUE, type Exchange, type PolicyFactory, type Verdict } from '../types.ts';

const BASIC_RE = /^basic /i;

const options = z.strictObject({ realm, keep: z.boolean().default(false) });
export type BasicAuthOptions = z.output<typeof options>;

const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Splits a Basic Authorization value into user and password; undefined when it is not one. Only canonical
 * base64 (RFC 7617 token68; padding optional) of valid UTF-8 is accepted: Buffer's decoder skips characters
 * outside the alphabet and stops at the padding, so a lenient parse would let many spellings, junk included,
 * stand for one credential.
 */
export function parseBasic(value: string): { user: string; password: string } | undefined {
  if (value.length < 7 || value.slice(0, 6).toLowerCase() !== 'basic ') return undefined;
  const token = value.slice(6).trim();
  if (!BASE64_RE.test(token)) return undefined;
  const bytes = Buffer.from(token, 'base64');
  if (bytes.toString('base64').replace(/=+$/, '') !== token.replace(/=+$/, '')) return undefined;
  if (token.includes('=') && token.length % 4 !== 0) return undefined;
  let decoded: string;
  try {
    decoded = UTF8.decode(bytes);
  } catch {
    return undefined;
  }
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export const factory: PolicyFactory<BasicAuthOptions> = {
  type: 'basic-auth',
  parse: zodParser(options),
  create(name, config, deps) {
    const challenge = { 'www-authenticate': `Basic realm=${quoted(config.realm)}, charset="UTF-8"` };
    const missing = replyVerdict('GW_AUTH_MISSING', 'basic_missing', challenge);
    const malformed = replyVerdict('GW_AUTH_INVALID', 'basic_malformed', challenge);
    const invalid = replyVerdict('GW_AUTH_INVALID', 'basic_invalid', challenge);
    const consumers = deps.consumers;
    const keep = config.keep;
    return {
      name,
      type: 'basic-auth',
      authenticates: true,
      onRequest(ex: Exchange): Verdict | Promise<Verdict> {
        const value = ex.request.headers.authorization;
        if (value === undefined || !BASIC_RE.test(value)) return missing;
        const creds = parseBasic(value);
        if (creds === undefined) return malformed;
        return consumers.byBasic(creds.user, creds.password).then((consumer) => {
          if (consumer === undefined) return invalid;
          ex.consumer = consumer;
          if (!keep) delete ex.request.headers.authorization;
          return CONTINUE;
        });
      },
    };
  },
};
