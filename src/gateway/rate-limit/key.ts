/**
 * @module Key selectors: which requests share one limit. A closed set compiled once per generation:
 * `consumer`, `client-ip`, `route`, `header:<name>`, `claim:<name>`, or a list of them (combined).
 *
 * A part with no value (no consumer identified, header absent, claim missing) falls back to the client IP,
 * never to a shared empty key: otherwise every anonymous caller would share, and exhaust, one bucket.
 * Each part carries a tag (`c:`, `ip:`, `h:`, …) so a consumer named like an IP never collides with that IP.
 */
import type { Exchange } from '../types.ts';

export const KEY_PART = /^(consumer|client-ip|route|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|claim:[^\s]+)$/;

type Part = (ex: Exchange) => string | undefined;

const consumerPart: Part = (ex) => (ex.consumer === undefined ? undefined : 'c:' + ex.consumer.name);
const ipPart: Part = (ex) => 'ip:' + ex.client.address;
const routePart: Part = (ex) => 'r:' + ex.routeName;

function headerPart(name: string): Part {
  const lower = name.toLowerCase();
  return (ex) => {
    const v = ex.request.headers[lower];
    if (v === undefined) return undefined;
    // Repeated lines arrive joined (`a, b`): the first value decides, so a client cannot open a fresh bucket
    // by sending the header again.
    const joined = typeof v === 'string' ? v : v[0]!;
    const comma = joined.indexOf(',');
    const first = (comma === -1 ? joined : joined.slice(0, comma)).trim();
    return first === '' ? undefined : 'h:' + first;
  };
}

function claimPart(name: string): Part {
  return (ex) => {
    const v = ex.claims?.[name];
    return typeof v === 'string' || typeof v === 'number' ? 'j:' + v : undefined;
  };
}

function compilePart(spec: string): Part {
  if (spec === 'consumer') return consumerPart;
  if (spec === 'client-ip') return ipPart;
  if (spec === 'route') return routePart;
  if (spec.startsWith('header:')) return headerPart(spec.slice(7));
  return claimPart(spec.slice(6));
}

/** Compiles `key` config into a function from the exchange to a key string. */
export function compileKey(spec: string | readonly string[]): (ex: Exchange) => string {
  const parts = (typeof spec === 'string' ? [spec] : spec).map(compilePart);
  if (parts.length === 1) {
    const only = parts[0]!;
    return (ex) => only(ex) ?? ipPart(ex)!;
  }
  return (ex) => {
    let key = '';
    for (let i = 0; i < parts.length; i++) {
      // U+001F cannot appear in header values, names or IPs; it separates parts unambiguously.
      key += (i === 0 ? '' : '\u001f') + (parts[i]!(ex) ?? ipPart(ex)!);
    }
    return key;
  };
}
