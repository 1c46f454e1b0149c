/**
 * @module Cache keys: the target URI (`scheme://host` + path + query, as configured) + configured request
 * headers and cookies, then, for responses with `Vary`, a second step that appends the normalised values of
 * the named request headers.
 *
 * The scheme is the one the upstream is told (X-Forwarded-Proto): RFC 9111 §2 keys on the target URI, and an
 * upstream that redirects plain-HTTP requests to HTTPS would otherwise have its redirect served to HTTPS
 * clients (nginx's default key has `$scheme` for the same reason).
 * Key text starts with `scheme://host/path`, so `purgePrefix('https://example.com/assets/')` removes a
 * subtree (the cache's purge functions take a key or prefix without a scheme for both). The method is not part
 * of the key: only GET responses are stored and HEAD is served from them.
 *
 * Variant keys carry the *generation* of their base key's Vary index: deleting the index (a purge, an
 * invalidation after POST) makes every variant stored under it unreachable at once, without a scan.
 */
import { type HeaderValue, joinHeader } from './directives.ts';

export interface KeyConfig {
  readonly headers: readonly string[];
  readonly query: 'keep' | 'ignore' | 'sorted';
  readonly cookies: readonly string[];
}

type RequestHeaders = Readonly<Record<string, HeaderValue>>;

export type CacheScheme = 'http' | 'https';

/** Keys without a scheme (as an operator may write them to purge) stand for both. */
export const SCHEMES: readonly CacheScheme[] = ['https', 'http'];

/** Whether a key or prefix given to a purge starts with a scheme. */
export function hasScheme(keyOrPrefix: string): boolean {
  return keyOrPrefix.startsWith('https://') || keyOrPrefix.startsWith('http://');
}

/** Builds keys for one route; compiled once per config generation. */
export class KeyBuilder {
  readonly #headers: readonly string[];
  readonly #cookies: readonly string[];
  readonly #query: KeyConfig['query'];

  constructor(cfg: KeyConfig) {
    this.#headers = cfg.headers.map((h) => h.toLowerCase());
    this.#cookies = [...cfg.cookies];
    this.#query = cfg.query;
  }

  /** Whether keys have parts beyond host, path and query (configured headers or cookies). */
  get hasExtras(): boolean {
    return this.#headers.length > 0 || this.#cookies.length > 0;
  }

  /** The part of the key that names the target URI: scheme, host, path and query as configured. */
  uri(scheme: CacheScheme, host: string, url: string): string {
    const key = `${scheme}://${host.toLowerCase()}`;
    const q = url.indexOf('?');
    if (q === -1 || this.#query === 'keep') return key + url;
    if (this.#query === 'ignore') return key + url.slice(0, q);
    return key + url.slice(0, q) + sortQuery(url.slice(q + 1));
  }

  /** The base key for a request target (`url` is the path with its query, as received). */
  base(scheme: CacheScheme, host: string, url: string, headers: RequestHeaders): string {
    let key = this.uri(scheme, host, url);
    const names = this.#headers;
    for (let i = 0; i < names.length; i++) {
      const name = names[i]!;
      key += headerPart(name, headers[name]);
    }
    if (this.#cookies.length > 0) key += cookiePart(this.#cookies, joinHeader(headers.cookie));
    return key;
  }
}

/**
 * The key of one variant of `base`, selected by the request headers that the stored response's Vary names
 * (sorted, lower-case), under the index generation `generation`.
 */
export function variantKey(base: string, vary: readonly string[], headers: RequestHeaders, generation = ''): string {
  let key = `${base}\n#vary${generation}`;
  for (let i = 0; i < vary.length; i++) {
    const name = vary[i]!;
    key += headerPart(name, headers[name]);
  }
  return key;
}

/** One header in a key: `\nname:value`, or `\nname` alone when absent (an absent field matches only absence). */
function headerPart(name: string, value: HeaderValue): string {
  return value === undefined ? `\n${name}` : `\n${name}:${normalise(value, CASE_INSENSITIVE.has(name))}`;
}

/** Request fields whose values are case-insensitive (RFC 9110 §12.5: tokens, media types, language tags). */
const CASE_INSENSITIVE: ReadonlySet<string> = new Set([
  'accept',
  'accept-charset',
  'accept-encoding',
  'accept-language',
]);

/**
 * Normalises a header value for comparison (RFC 9111 §4.1): lines combined, whitespace around commas and at
 * the ends removed, runs of whitespace made one space; lower-cased only for fields whose values are
 * case-insensitive (other values, tokens or cookies say, must match exactly).
 */
export function normalise(value: HeaderValue, lowerCase = true): string {
  const text = joinHeader(value);
  if (text === undefined) return '';
  let out = '';
  let pendingSpace = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === ' ' || c === '\t') {
      pendingSpace = out.length > 0;
      continue;
    }
    if (c === ',') {
      pendingSpace = false;
      out += ',';
      continue;
    }
    if (pendingSpace && out[out.length - 1] !== ',') out += ' ';
    pendingSpace = false;
    out += c;
  }
  return lowerCase ? out.toLowerCase() : out;
}

function sortQuery(query: string): string {
  if (query.length === 0) return '';
  const params = query.split('&').filter((p) => p.length > 0);
  // Sort by name only, keeping the order of repeated names (Array.prototype.sort is stable).
  params.sort((a, b) => {
    const na = nameOf(a);
    const nb = nameOf(b);
    return na < nb ? -1 : na > nb ? 1 : 0;
  });
  return params.length === 0 ? '' : `?${params.join('&')}`;
}

function nameOf(param: string): string {
  const eq = param.indexOf('=');
  return eq === -1 ? param : param.slice(0, eq);
}

function cookiePart(names: readonly string[], cookieHeader: string | undefined): string {
  let out = '';
  for (let i = 0; i < names.length; i++) {
    out += `\ncookie.${names[i]}=${cookieHeader === undefined ? '' : cookieValue(cookieHeader, names[i]!)}`;
  }
  return out;
}

function cookieValue(header: string, name: string): string {
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    const eq = header.indexOf('=', start);
    if (eq !== -1 && eq < end && header.slice(start, eq).trim() === name) return header.slice(eq + 1, end).trim();
    start = end + 1;
  }
  return '';
}
