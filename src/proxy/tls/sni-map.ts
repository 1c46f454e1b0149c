/**
 * @module Server name → value: exact names first, then `*.example.com` wildcards (one label, RFC 6125
 * §6.4.3), then the default. Built once per certificate set; a lookup is one or two Map reads.
 */

export class SniMap<T> {
  readonly #exact = new Map<string, T>();
  /** Keyed by the suffix after `*.`. */
  readonly #wildcard = new Map<string, T>();
  readonly #fallback: T;

  constructor(fallback: T) {
    this.#fallback = fallback;
  }

  /** Adds `name` (case-insensitive); the first value added for a name wins. Ignores malformed names. */
  add(name: string, value: T): void {
    const n = name.toLowerCase().replace(/\.$/, '');
    if (n.startsWith('*.')) {
      const suffix = n.slice(2);
      if (suffix !== '' && !suffix.includes('*') && !this.#wildcard.has(suffix)) this.#wildcard.set(suffix, value);
    } else if (n !== '' && !n.includes('*') && !this.#exact.has(n)) {
      this.#exact.set(n, value);
    }
  }

  /** The value for `serverName`, or the default. */
  match(serverName: string | undefined): T {
    if (serverName === undefined || serverName === '') return this.#fallback;
    // RFC 6066 §3 forbids a trailing dot in SNI, but some clients send the absolute name: match it as nginx does.
    const name = serverName.toLowerCase().replace(/\.$/, '');
    const hit = this.#exact.get(name);
    if (hit !== undefined) return hit;
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wild = this.#wildcard.get(name.slice(dot + 1));
      if (wild !== undefined) return wild;
    }
    return this.#fallback;
  }
}
