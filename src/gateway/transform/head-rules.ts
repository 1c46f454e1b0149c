/**
 * @module Header and query-parameter rules of the transform policy, compiled once per generation.
 * Headers: remove → rename → set → add. Query: remove → rename → set. Values are templates.
 */
import type { Exchange } from '../types.ts';
import { encodeComponent, pairName, splitQuery } from './query.ts';
import { compile, type Template } from './template.ts';

export interface HeaderRules {
  readonly set?: Readonly<Record<string, string>> | undefined;
  readonly add?: Readonly<Record<string, string>> | undefined;
  readonly remove?: readonly string[] | undefined;
  readonly rename?: Readonly<Record<string, string>> | undefined;
}

export interface QueryRules {
  readonly set?: Readonly<Record<string, string>> | undefined;
  readonly remove?: readonly string[] | undefined;
  readonly rename?: Readonly<Record<string, string>> | undefined;
}

type HeaderBag = Record<string, string | string[] | number | undefined>;

/** Framing and hop-by-hop headers a transform must not write: they would break or smuggle messages. */
export const PROTECTED_HEADERS: ReadonlySet<string> = new Set([
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
]);

// RFC 9110 field-value: visible ASCII, obs-text, space and tab. Rendered templates may carry client data.
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

export interface HeaderPlan {
  /** Applies the rules; returns the name of a header whose rendered value was invalid (then skipped). */
  apply(headers: HeaderBag, ex: Exchange): string | undefined;
}

/** `join`: a repeated request header becomes one comma-joined value; `array`: response headers keep a list. */
export function compileHeaders(rules: HeaderRules, addMode: 'join' | 'array'): HeaderPlan {
  const remove = (rules.remove ?? []).map((n) => n.toLowerCase());
  const rename = Object.entries(rules.rename ?? {}).map(([a, b]) => [a.toLowerCase(), b.toLowerCase()] as const);
  const set = templates(rules.set);
  const add = templates(rules.add);
  return {
    apply(headers, ex) {
      let invalid: string | undefined;
      for (const name of remove) delete headers[name];
      for (const [from, to] of rename) {
        const value = headers[from];
        if (value === undefined) continue;
        delete headers[from];
        headers[to] = value;
      }
      for (const [name, template] of set) {
        const value = template.render(ex);
        if (INVALID_VALUE.test(value)) invalid = name;
        else headers[name] = value;
      }
      for (const [name, template] of add) {
        const value = template.render(ex);
        if (INVALID_VALUE.test(value)) {
          invalid = name;
          continue;
        }
        const existing = headers[name];
        if (existing === undefined) headers[name] = value;
        else if (Array.isArray(existing)) headers[name] = [...existing, value];
        else headers[name] = addMode === 'join' ? `${existing}, ${value}` : [String(existing), value];
      }
      return invalid;
    },
  };
}

function templates(map: Readonly<Record<string, string>> | undefined): (readonly [string, Template])[] {
  return Object.entries(map ?? {}).map(([name, text]) => [name.toLowerCase(), compile(text)] as const);
}

export interface QueryPlan {
  /** The rewritten raw query; untouched parameters keep their original encoding. */
  apply(query: string, ex: Exchange): string;
}

export function compileQuery(rules: QueryRules): QueryPlan {
  const remove = new Set(rules.remove ?? []);
  const rename = new Map(Object.entries(rules.rename ?? {}));
  const set = Object.entries(rules.set ?? {}).map(([name, text]) => [name, compile(text)] as const);
  const setNames = new Set(set.map(([name]) => name));
  return {
    apply(query, ex) {
      const out: string[] = [];
      for (const pair of splitQuery(query)) {
        const name = pairName(pair);
        if (remove.has(name) || setNames.has(name)) continue;
        const to = rename.get(name);
        if (to === undefined) {
          out.push(pair);
          continue;
        }
        if (setNames.has(to)) continue;
        const eq = pair.indexOf('=');
        out.push(eq === -1 ? encodeComponent(to) : encodeComponent(to) + pair.slice(eq));
      }
      for (const [name, template] of set) out.push(`${encodeComponent(name)}=${encodeComponent(template.render(ex))}`);
      return out.join('&');
    },
  };
}

/** A path template: substituted values are percent-encoded so they cannot add segments or `..`. */
export function compilePath(text: string): Template {
  return compile(text, encodeComponent);
}
