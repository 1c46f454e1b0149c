/**
 * @module `api-key`: identifies the consumer by an API key sent in a header (default `x-api-key`) or a query
 * parameter. The key is removed from the request before it is forwarded. Lookup is by SHA-256 digest and
 * confirmed with timingSafeEqual (src/gateway/consumers.ts).
 *
 * ```yaml
 * key: { type: api-key, header: x-api-key, query: api_key }
 * ```
 */
import { z } from 'zod';
import { headerName } from '../../config/primitives.ts';
import { quoted, replyVerdict } from '../replies.ts';
import { realm, zodParser } from '../schema.ts';
import { CONTINUE, type Exchange, type PolicyFactory, type Verdict } from '../types.ts';

const options = z
  .strictObject({
    /** Header carrying the key. Default `x-api-key` when `query` is not given. */
    header: headerName.optional(),
    /** Query parameter carrying the key. */
    query: z.string().min(1).optional(),
    /** Forward the key upstream instead of removing it. */
    keep: z.boolean().default(false),
    realm,
  })
  .transform((o) => ({ ...o, header: o.header ?? (o.query === undefined ? 'x-api-key' : undefined) }));
export type ApiKeyOptions = z.output<typeof options>;

function formDecode(raw: string): string {
  try {
    return decodeURIComponent(raw.replaceAll('+', ' '));
  } catch {
    return raw;
  }
}

/**
 * Finds the parameter `prefix` (`name=`, encoded) in a raw query string; returns the decoded value and the
 * query without it. A name spelled with percent-escapes (`api%5Fkey=`) is the same parameter to the
 * upstream's query parser, so it matches too.
 */
export function takeQueryParam(query: string, prefix: string): { value: string; rest: string } | undefined {
  const encoded = query.indexOf('%') !== -1;
  if (!encoded && query.indexOf(prefix) === -1) return undefined;
  const name = formDecode(prefix.slice(0, -1));
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end === -1) end = query.length;
    const eq = query.indexOf('=', start);
    const matches =
      query.startsWith(prefix, start) ||
      (encoded && eq !== -1 && eq < end && formDecode(query.slice(start, eq)) === name);
    if (matches) {
      const value = formDecode(query.slice(eq + 1, end));
      const rest = query.slice(0, end === query.length ? Math.max(0, start - 1) : start) + query.slice(end + 1);
      return { value, rest };
    }
    start = end + 1;
  }
  return undefined;
}

export const factory: PolicyFactory<ApiKeyOptions> = {
  type: 'api-key',
  parse: zodParser(options),
  create(name, config, deps) {
    const header = config.header?.toLowerCase();
    const queryPrefix = config.query === undefined ? undefined : `${encodeURIComponent(config.query)}=`;
    const challenge = { 'www-authenticate': `ApiKey realm=${quoted(config.realm)}` };
    const missing = replyVerdict('GW_AUTH_MISSING', 'api_key_missing', challenge);
    const invalid = replyVerdict('GW_AUTH_INVALID', 'api_key_invalid', challenge);
    const ambiguous = replyVerdict('GW_AUTH_INVALID', 'api_key_ambiguous', challenge);
    const keep = config.keep;
    const consumers = deps.consumers;
    return {
      name,
      type: 'api-key',
      authenticates: true,
      onRequest(ex: Exchange): Verdict {
        let key: string | undefined;
        const headers = ex.request.headers;
        if (header !== undefined) {
          const v = headers[header];
          if (v !== undefined) {
            // Several values are ambiguous: picking one would authenticate a key the upstream may not see.
            if (typeof v !== 'string') return ambiguous;
            key = v;
            if (!keep) delete headers[header];
          }
        }
        if (queryPrefix !== undefined) {
          const found = takeQueryParam(ex.request.query, queryPrefix);
          if (found !== undefined) {
            // A second occurrence would reach the upstream after the first one was checked and removed.
            if (takeQueryParam(found.rest, queryPrefix) !== undefined) return ambiguous;
            key ??= found.value;
            if (!keep) ex.request.query = found.rest;
          }
        }
        if (key === undefined || key === '') return missing;
        const consumer = consumers.byApiKey(key);
        if (consumer === undefined) return invalid;
        ex.consumer = consumer;
        return CONTINUE;
      },
    };
  },
};
