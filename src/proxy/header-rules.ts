/**
 * @module Route header rules (`headers.request` / `headers.response` in a route): remove, then set (replace),
 * then add (append). Compiled once per config into flat arrays of lower-case names, so applying them is a few
 * property writes on the header object.
 */
import type { HeaderRulesConfig } from '../config/schema.ts';

/** A plain header object with lower-case names, as node:http and undici use. */
export type HeaderObject = Record<string, string | string[] | number | undefined>;

export interface HeaderRules {
  /** Edits `headers` in place: remove → set → add. Names in `headers` must be lower-case. */
  apply(headers: HeaderObject): void;
  /**
   * Response side: turns a flat `[name, value, …]` list (as `writeHead` takes it) into a header object with
   * the rules applied. Repeated names become arrays.
   */
  applyToFlat(flat: readonly string[]): Record<string, string | string[]>;
}

class CompiledHeaderRules implements HeaderRules {
  readonly #remove: readonly string[];
  readonly #setNames: readonly string[];
  readonly #setValues: readonly string[];
  readonly #addNames: readonly string[];
  readonly #addValues: readonly string[];

  constructor(rules: HeaderRulesConfig) {
    this.#remove = [...new Set((rules.remove ?? []).map((name) => name.toLowerCase()))];
    const set = lowerCaseEntries(rules.set);
    this.#setNames = set.map(([name]) => name);
    this.#setValues = set.map(([, value]) => value);
    const add = lowerCaseEntries(rules.add);
    this.#addNames = add.map(([name]) => name);
    this.#addValues = add.map(([, value]) => value);
  }

  apply(headers: HeaderObject): void {
    const remove = this.#remove;
    for (let i = 0; i < remove.length; i++) {
      const name = remove[i]!;
      if (headers[name] !== undefined) delete headers[name];
    }
    const setNames = this.#setNames;
    for (let i = 0; i < setNames.length; i++) headers[setNames[i]!] = this.#setValues[i]!;
    const addNames = this.#addNames;
    for (let i = 0; i < addNames.length; i++) {
      const name = addNames[i]!;
      const value = this.#addValues[i]!;
      const previous = headers[name];
      if (previous === undefined) headers[name] = value;
      // A new array: the old one may belong to the incoming message.
      else if (Array.isArray(previous)) headers[name] = [...previous, value];
      else headers[name] = [String(previous), value];
    }
  }

  applyToFlat(flat: readonly string[]): Record<string, string | string[]> {
    const headers: Record<string, string | string[]> = {};
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i]!.toLowerCase();
      const value = flat[i + 1]!;
      const previous = headers[name];
      if (previous === undefined) headers[name] = value;
      else if (Array.isArray(previous)) previous.push(value);
      else headers[name] = [previous, value];
    }
    this.apply(headers);
    return headers;
  }
}

/** Later entries win when two names differ only in case (YAML keys are case-sensitive, headers are not). */
function lowerCaseEntries(record: Record<string, string> | undefined): [string, string][] {
  const map = new Map<string, string>();
  for (const [name, value] of Object.entries(record ?? {})) map.set(name.toLowerCase(), value);
  return [...map];
}

/**
 * Compiles a route's header rules; undefined when there is nothing to do, so callers skip the call.
 *
 * @example
 * const rules = compileHeaderRules({ remove: ['cookie'], set: { 'X-Env': 'prod' }, add: { via: 'portico' } });
 * rules?.apply(headers);
 */
export function compileHeaderRules(rules: HeaderRulesConfig | undefined): HeaderRules | undefined {
  if (rules === undefined) return undefined;
  const empty =
    (rules.remove?.length ?? 0) === 0 &&
    Object.keys(rules.set ?? {}).length === 0 &&
    Object.keys(rules.add ?? {}).length === 0;
  return empty ? undefined : new CompiledHeaderRules(rules);
}
