/**
 * @module Maps a TLS server name to a value (a pool, a certificate): exact names, `*.example.com`
 * wildcards, then a default. Compiled once per config generation; a lookup is one or two Map reads.
 */

export interface SniRoute<T> {
  /** `api.example.com` or `*.example.com` (the wildcard covers exactly one label, as in RFC 6125). */
  readonly names: readonly string[];
  readonly value: T;
}

export interface SniRouter<T> {
  /** The value for `serverName` (already lower case), or the default, or undefined. */
  match(serverName: string | undefined): T | undefined;
}

/** Builds a router; the first route that names a host wins. Throws on a malformed name (config bug). */
export function createSniRouter<T>(routes: readonly SniRoute<T>[], fallback?: T): SniRouter<T> {
  const exact = new Map<string, T>();
  const wildcard = new Map<string, T>(); // keyed by the suffix after "*." (e.g. "example.com")
  for (const route of routes) {
    for (const raw of route.names) {
      const name = raw.toLowerCase().replace(/\.$/, '');
      if (name.startsWith('*.')) {
        const suffix = name.slice(2);
        if (suffix === '' || suffix.includes('*')) throw new Error(`bad wildcard server name "${raw}"`);
        if (!wildcard.has(suffix)) wildcard.set(suffix, route.value);
      } else {
        if (name === '' || name.includes('*')) throw new Error(`bad server name "${raw}"`);
        if (!exact.has(name)) exact.set(name, route.value);
      }
    }
  }
  return {
    match(serverName: string | undefined): T | undefined {
      if (serverName === undefined) return fallback;
      const hit = exact.get(serverName);
      if (hit !== undefined) return hit;
      const dot = serverName.indexOf('.');
      if (dot > 0) {
        const wild = wildcard.get(serverName.slice(dot + 1));
        if (wild !== undefined) return wild;
      }
      return fallback;
    },
  };
}
