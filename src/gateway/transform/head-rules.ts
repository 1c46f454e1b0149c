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

/**
 * A rule value: a constant (checked once here) or a template rendered and checked per request. Kept in
 * parallel arrays so applying the rules walks arrays of strings, with no tuple or iterator per rule.
 */
interface ValueRules {
  readonly names: readonly string[];
  /** The constant value, or undefined for a template. */
  readonly constants: readonly (string | undefined)[];
  readonly templates: readonly (Template | undefined)[];
  /** A constant that is not a valid field value: always reported, never written. */
  readonly invalid: readonly boolean[];
}

/** `join`: a repeated request header becomes one comma-joined value; `array`: response headers keep a list. */
export function compileHeaders(rules: HeaderRules, addMode: 'join' | 'array'): HeaderPlan {
  const remove = (rules.remove ?? []).map((n) => n.toLowerCase());
  const renameFrom: string[] = [];
  const renameTo: string[] = [];
  for (const [a, b] of Object.entries(rules.rename ?? {})) {
    renameFrom.push(a.toLowerCase());
    renameTo.push(b.toLowerCase());
  }
  const set = valueRules(rules.set);
  const add = valueRules(rules.add);
  const join = addMode === 'join';
  return {
    apply(headers, ex) {
      let invalid: string | undefined;
      for (let i = 0; i < remove.length; i++) delete headers[remove[i]!];
      for (let i = 0; i < renameFrom.length; i++) {
        const from = renameFrom[i]!;
        const value = headers[from];
        if (value === undefined) continue;
        delete headers[from];
        headers[renameTo[i]!] = value;
      }
      for (let i = 0; i < set.names.length; i++) {
        const value = ruleValue(set, i, ex);
        if (value === undefined) invalid = set.names[i];
        else headers[set.names[i]!] = value;
      }
      for (let i = 0; i < add.names.length; i++) {
        const name = add.names[i]!;
        const value = ruleValue(add, i, ex);
        if (value === undefined) {
          invalid = name;
          continue;
        }
        const existing = headers[name];
        if (existing === undefined) headers[name] = value;
        else if (Array.isArray(existing)) headers[name] = [...existing, value];
        else headers[name] = join ? `${existing}, ${value}` : [String(existing), value];
      }
      return invalid;
    },
  };
}

/** Rule `i`'s value for this exchange; undefined when it is not a valid field value. */
function ruleValue(rules: ValueRules, i: number, ex: Exchange): string | undefined {
  const constant = rules.constants[i];
  if (constant !== undefined) return rules.invalid[i] ? undefined : constant;
  const value = rules.templates[i]!.render(ex);
  return INVALID_VALUE.test(value) ? undefined : value;
}

function valueRules(map: Readonly<Record<string, string>> | undefined): ValueRules {
  const names: string[] = [];
  const constants: (string | undefined)[] = [];
  const templates: (Template | undefined)[] = [];
  const invalid: boolean[] = [];
  for (const [name, text] of Object.entries(map ?? {})) {
    const template = compile(text);
    names.push(name.toLowerCase());
    if (template.constant) {
      const value = template.render(undefined as unknown as Exchange);
      constants.push(value);
      templates.push(undefined);
      invalid.push(INVALID_VALUE.test(value));
    } else {
      constants.push(undefined);
      templates.push(template);
      invalid.push(false);
    }
  }
  return { names, constants, templates, invalid };
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
