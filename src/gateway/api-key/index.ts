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

/** Finds `name` in a raw query string; returns the decoded value and the query without it. */
export function takeQueryParam(query: string, prefix: string): { value: string; rest: string } | undefined {
  if (query.indexOf(prefix) === -1) return undefined;
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end === -1) end = query.length;
    if (query.startsWith(prefix, start)) {
      const raw = query.slice(start + prefix.length, end);
      let value: string;
      try {
        value = decodeURIComponent(raw.replaceAll('+', ' '));
      } catch {
        value = raw;
      }
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
            key = typeof v === 'string' ? v : v[0];
            if (!keep) delete headers[header];
          }
        }
        if (queryPrefix !== undefined) {
          const found = takeQueryParam(ex.request.query, queryPrefix);
          if (found !== undefined) {
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
