/**
 * @module Origin matching for the cors policy, compiled once: a set of exact origins, patterns turned into
 * anchored regular expressions, and the "any origin" flag.
 */

export interface OriginMatcher {
  readonly any: boolean;
  matches(origin: string): boolean;
}

const LABELS = '[a-z0-9-]+(?:\\.[a-z0-9-]+)*';

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `https://*.example.com` → one or more labels before `.example.com`; `:*` → any port or none. */
export function patternToRegExp(pattern: string): RegExp {
  let source = escapeRegExp(pattern);
  source = source.replace('://\\*\\.', `://${LABELS}\\.`);
  if (source.endsWith(':\\*')) source = `${source.slice(0, -3)}(?::\\d{1,5})?`;
  return new RegExp(`^${source}$`, 'i');
}

export function compileOrigins(origins: readonly string[]): OriginMatcher {
  const exact = new Set<string>();
  const patterns: RegExp[] = [];
  let any = false;
  for (const origin of origins) {
    if (origin === '*') any = true;
    else if (origin.includes('*')) patterns.push(patternToRegExp(origin));
    else exact.add(origin);
  }
  return {
    any,
    matches(origin) {
      if (any || exact.has(origin)) return true;
      for (const re of patterns) if (re.test(origin)) return true;
      // Browsers send lower-case origins; other clients may not.
      return exact.size > 0 && exact.has(origin.toLowerCase());
    },
  };
}
