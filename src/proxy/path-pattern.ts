/**
 * @module Route path patterns: `/exact`, `/users/:id` (one segment per param) and `/static/*` (the prefix
 * itself and everything below it). Compiled once into segment lists that `matchPathPattern` walks with
 * `startsWith`/`indexOf` only: no regex and no allocation per request.
 */
import { normalizePath } from './normalize-path.ts';

export interface PathPattern {
  /** `exact`: no params, no wildcard; `param`: has `:name` segments; `prefix`: ends in `/*`. */
  readonly kind: 'exact' | 'param' | 'prefix';
  /** The pattern as written. */
  readonly text: string;
  /** Literal text per segment before any `/*` (`''` for params). */
  readonly segments: readonly string[];
  /** Param name per segment, undefined for literals. */
  readonly paramNames: readonly (string | undefined)[];
  readonly paramCount: number;
  /** Segments that are literal (not params); an empty trailing segment does not count. */
  readonly literalCount: number;
  /** For `prefix` patterns without params: the literal prefix without the `/*` (`''` for `/*`). */
  readonly prefix: string;
}

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Compiles a route path. Returns an error message for an invalid pattern: a `*` anywhere but a final `/*`,
 * a bad or repeated param name, or a path that is not in normal form (it could never match a normalised path).
 */
export function compilePathPattern(text: string): PathPattern | string {
  if (!text.startsWith('/')) return `path "${text}" must start with "/"`;
  const isPrefix = text.endsWith('/*');
  const body = isPrefix ? text.slice(0, -2) : text;
  if (body.includes('*')) return `path "${text}": "*" is only allowed as a final "/*"`;
  const normal = normalizePath(text);
  if (!normal.ok) return `path "${text}" is invalid: ${normal.reason}`;
  if (normal.query !== '' || text.includes('?')) return `path "${text}" must not contain "?"`;
  if (normal.path !== text) return `path "${text}" is not in normal form (write "${normal.path}")`;

  const segments = body === '' ? [] : body.slice(1).split('/');
  const paramNames: (string | undefined)[] = [];
  const literals: string[] = [];
  const seen = new Set<string>();
  let literalCount = 0;
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    if (segment.startsWith(':')) {
      const name = segment.slice(1);
      if (!PARAM_NAME.test(name)) return `path "${text}": invalid param name "${segment}"`;
      if (seen.has(name)) return `path "${text}": param "${name}" appears twice`;
      seen.add(name);
      paramNames.push(name);
      literals.push('');
    } else {
      paramNames.push(undefined);
      literals.push(segment);
      if (segment !== '') literalCount++;
    }
  }
  const paramCount = seen.size;
  return {
    kind: isPrefix ? 'prefix' : paramCount > 0 ? 'param' : 'exact',
    text,
    segments: literals,
    paramNames,
    paramCount,
    literalCount,
    prefix: body,
  };
}

/** Whether a normalised path matches a `param` or `prefix` pattern (exact ones are looked up in a Map). */
export function matchPathPattern(pattern: PathPattern, path: string): boolean {
  if (pattern.paramCount === 0) {
    if (pattern.kind === 'exact') return path === pattern.text;
    // Literal prefix: the prefix itself, or the prefix followed by "/".
    const prefix = pattern.prefix;
    return (
      prefix.length === 0 ||
      (path.startsWith(prefix) && (path.length === prefix.length || path.charCodeAt(prefix.length) === 0x2f))
    );
  }
  const segments = pattern.segments;
  const names = pattern.paramNames;
  const length = path.length;
  let pos = 1;
  let end = 0;
  for (let i = 0; i < segments.length; i++) {
    if (pos > length) return false;
    end = path.indexOf('/', pos);
    if (end === -1) end = length;
    if (names[i] === undefined) {
      const literal = segments[i]!;
      if (end - pos !== literal.length || !path.startsWith(literal, pos)) return false;
    } else if (end === pos) {
      return false; // a param never matches an empty segment
    }
    pos = end + 1;
  }
  return pattern.kind === 'prefix' || end === length;
}

/** The param values of a path that matched `pattern`. */
export function pathParams(pattern: PathPattern, path: string): Record<string, string> {
  const params: Record<string, string> = {};
  const names = pattern.paramNames;
  let pos = 1;
  for (let i = 0; i < names.length; i++) {
    let end = path.indexOf('/', pos);
    if (end === -1) end = path.length;
    const name = names[i];
    if (name !== undefined) params[name] = path.slice(pos, end);
    pos = end + 1;
  }
  return params;
}
