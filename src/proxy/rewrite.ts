/**
 * @module Route path rewrites, applied to the normalised path (never the query) before it goes upstream:
 * `stripPrefix`, then `regex`, then `addPrefix`. Compiled once per config into one function; the regex is
 * built at compile time, never per request.
 */
import type { RouteConfig } from '../config/schema.ts';

export type RewriteConfig = NonNullable<RouteConfig['rewrite']>;
/** Maps a normalised path to the upstream path (always starting with `/`). */
export type Rewrite = (path: string) => string;

/** Drops a trailing `/` (but keeps `/` itself), so prefixes compare at segment boundaries. */
function trimSlash(prefix: string): string {
  return prefix.length > 1 && prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
}

/**
 * Checks a rewrite for config validation: the regex must compile.
 * @returns an error message, or undefined when valid.
 */
export function validateRewrite(rewrite: RouteConfig['rewrite']): string | undefined {
  if (rewrite?.regex === undefined) return undefined;
  try {
    new RegExp(rewrite.regex.pattern, 'g');
  } catch (err) {
    return `invalid rewrite regex "${rewrite.regex.pattern}": ${(err as Error).message}`;
  }
  return undefined;
}

/**
 * Compiles a route's rewrite, or returns undefined when there is none (the path goes upstream unchanged).
 *
 * - `stripPrefix: /api` turns `/api/users` into `/users` and `/api` into `/`; `/apix` is left alone.
 * - `regex: { pattern, replacement }` replaces every match; the replacement may use `$1` and `$<name>`.
 * - `addPrefix: /v1` turns `/users` into `/v1/users` (never a double slash).
 *
 * When `stripPrefix` removed the whole path and `addPrefix` follows, the result is the added prefix itself
 * (`/users` → `/v1/users`, while `/users/` → `/v1/users/`).
 *
 * @example compileRewrite({ stripPrefix: '/users', addPrefix: '/v1/users' })!('/users/42') // '/v1/users/42'
 */
export function compileRewrite(rewrite: RouteConfig['rewrite']): Rewrite | undefined {
  if (rewrite === undefined) return undefined;
  const strip = rewrite.stripPrefix === undefined ? undefined : trimSlash(rewrite.stripPrefix);
  const add = rewrite.addPrefix === undefined ? undefined : trimSlash(rewrite.addPrefix);
  const addAsWritten = rewrite.addPrefix;
  const regex = rewrite.regex === undefined ? undefined : new RegExp(rewrite.regex.pattern, 'g');
  const replacement = rewrite.regex?.replacement ?? '';
  const doStrip = strip !== undefined && strip !== '/';
  const doAdd = add !== undefined && add !== '/';
  if (!doStrip && regex === undefined && !doAdd) return undefined;

  return function rewritePath(path: string): string {
    // '' marks "the prefix was the whole path" until the end.
    let out = path;
    if (doStrip && path.startsWith(strip!)) {
      if (path.length === strip!.length) out = '';
      else if (path.charCodeAt(strip!.length) === 0x2f) out = path.slice(strip!.length);
    }
    if (regex !== undefined) {
      out = (out === '' ? '/' : out).replace(regex, replacement);
      if (out !== '' && out.charCodeAt(0) !== 0x2f) out = '/' + out;
    }
    if (doAdd) {
      if (out === '') return addAsWritten!;
      return add! + out;
    }
    return out === '' ? '/' : out;
  };
}
