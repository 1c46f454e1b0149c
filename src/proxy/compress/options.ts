/**
 * @module A route's compression settings compiled once per config generation: the type list as a set and
 * prefix/suffix rules, and a small memo of Accept-Encoding answers (clients send few distinct values).
 */
import type { Encoding, RouteCompressConfig } from './schema.ts';

export interface CompressOptions {
  /** Server preference order. */
  readonly encodings: readonly Encoding[];
  readonly minSize: number;
  readonly level: Readonly<Record<Encoding, number>>;
  readonly exactTypes: ReadonlySet<string>;
  /** `text/*` → `text/`. */
  readonly typePrefixes: readonly string[];
  /** `application/*+json` → [`application/`, `+json`]. */
  readonly typeSuffixes: readonly (readonly [string, string])[];
  /** Accept-Encoding value → negotiated encoding (null: none). Bounded. */
  readonly memo: Map<string, Encoding | null>;
}

export const MEMO_LIMIT = 256;

export function compileCompressOptions(config: RouteCompressConfig): CompressOptions {
  const exactTypes = new Set<string>();
  const typePrefixes: string[] = [];
  const typeSuffixes: [string, string][] = [];
  for (const pattern of config.types) {
    const lower = pattern.toLowerCase();
    const star = lower.indexOf('/*');
    if (star === -1) exactTypes.add(lower);
    else if (lower.length === star + 2) typePrefixes.push(lower.slice(0, star + 1));
    else typeSuffixes.push([lower.slice(0, star + 1), lower.slice(star + 2)]);
  }
  return {
    encodings: [...config.encodings],
    minSize: config.minSize,
    level: { ...config.level },
    exactTypes,
    typePrefixes,
    typeSuffixes,
    memo: new Map(),
  };
}
