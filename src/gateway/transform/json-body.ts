/**
 * @module JSON body rules of the transform policy, compiled once into a plan and applied per request in a
 * fixed order: unwrap → keep → drop → rename → set → wrap.
 *
 * Paths are dotted (`user.address.city`). `keep` and `drop` map through arrays (`items.secret` drops
 * `secret` from every element of `items`, and a top-level array is processed element by element);
 * `rename`, `set` and `unwrap` follow object keys only.
 */
import type { Exchange } from '../types.ts';
import { compile, type Template } from './template.ts';

export interface BodyRules {
  readonly unwrap?: string | undefined;
  readonly keep?: readonly string[] | undefined;
  readonly drop?: readonly string[] | undefined;
  readonly rename?: Readonly<Record<string, string>> | undefined;
  readonly set?: Readonly<Record<string, unknown>> | undefined;
  readonly wrap?: string | undefined;
}

type KeepTree = Map<string, KeepTree | true>;
type Json = unknown;
type JsonObject = Record<string, Json>;

interface SetRule {
  readonly path: readonly string[];
  /** A template for strings; other YAML values are set as they are. */
  readonly template?: Template;
  readonly literal?: Json;
}

/** Returned by `apply` when the body does not have the shape the rules need (unwrap of a missing key). */
export const BODY_MISMATCH: unique symbol = Symbol('body-mismatch');

export interface BodyPlan {
  apply(body: Json, ex: Exchange): Json | typeof BODY_MISMATCH;
}

/** Returned by `parseJson` for a body that is not JSON. */
export const NOT_JSON: unique symbol = Symbol('not-json');

// A number token that may not survive a round trip through a double: 16+ digits or a 3-digit exponent.
const LOSSY_NUMBER = /\d{16}|[eE][+-]?\d{3}/;

/**
 * Parses a JSON body. Numbers a double cannot hold exactly (`12345678901234567890`, `1e400`) keep their
 * source text (JSON.rawJSON), so a rewrite forwards them as sent instead of rounded or as `null`.
 */
export function parseJson(body: Buffer): Json | typeof NOT_JSON {
  const text = body.toString('utf8');
  try {
    if (!LOSSY_NUMBER.test(text)) return JSON.parse(text);
    return JSON.parse(text, keepNumberSource);
  } catch {
    return NOT_JSON;
  }
}

function keepNumberSource(this: unknown, _key: string, value: Json, context?: { source?: string }): Json {
  if (typeof value !== 'number' || context?.source === undefined) return value;
  const source = context.source;
  return String(value) === source ? value : (JSON as unknown as { rawJSON(text: string): Json }).rawJSON(source);
}

const FORBIDDEN_SEGMENTS = new Set(['__proto__', 'prototype', 'constructor']);

/** Splits a dotted path; an error message for an unusable one. */
export function checkPath(path: string): string | undefined {
  const segments = path.split('.');
  if (segments.some((s) => s === '')) return `"${path}" is not a dotted path (empty segment)`;
  if (segments.some((s) => FORBIDDEN_SEGMENTS.has(s))) return `"${path}" uses a reserved name`;
  return undefined;
}

export function compileBody(rules: BodyRules): BodyPlan {
  const unwrap = rules.unwrap === undefined ? undefined : rules.unwrap.split('.');
  const keep = rules.keep === undefined ? undefined : keepTree(rules.keep);
  const drop = (rules.drop ?? []).map((p) => p.split('.'));
  const rename = Object.entries(rules.rename ?? {}).map(([from, to]) => [from.split('.'), to.split('.')] as const);
  const set: SetRule[] = Object.entries(rules.set ?? {}).map(([path, value]) =>
    typeof value === 'string'
      ? { path: path.split('.'), template: compile(value) }
      : { path: path.split('.'), literal: value },
  );
  const wrap = rules.wrap === undefined ? undefined : rules.wrap.split('.');

  return {
    apply(input, ex) {
      let body = input;
      if (unwrap !== undefined) {
        body = getAt(body, unwrap);
        if (body === undefined) return BODY_MISMATCH;
      }
      if (keep !== undefined) body = project(body, keep);
      for (const path of drop) dropAt(body, path, 0);
      for (const [from, to] of rename) {
        const value = takeAt(body, from);
        if (value !== undefined) setAt(body, to, value);
      }
      for (const rule of set) {
        // A literal map or list is copied: a later rule may write into it, and it is shared by all requests.
        const literal = rule.literal;
        const value =
          rule.template !== undefined
            ? rule.template.value(ex)
            : literal !== null && typeof literal === 'object'
              ? structuredClone(literal)
              : literal;
        setAt(body, rule.path, value);
      }
      if (wrap !== undefined) {
        for (let i = wrap.length - 1; i >= 0; i--) body = { [wrap[i]!]: body };
      }
      return body;
    },
  };
}

function isObject(value: Json): value is JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function keepTree(paths: readonly string[]): KeepTree {
  const root: KeepTree = new Map();
  for (const path of paths) {
    let node = root;
    const segments = path.split('.');
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i]!;
      const existing = node.get(segment);
      if (existing === true) break; // a shorter path already keeps the whole subtree
      if (i === segments.length - 1) {
        node.set(segment, true);
        break;
      }
      const child: KeepTree = existing ?? new Map();
      node.set(segment, child);
      node = child;
    }
  }
  return root;
}

function project(value: Json, tree: KeepTree): Json {
  if (Array.isArray(value)) return value.map((item) => project(item, tree));
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [key, sub] of tree) {
    if (!Object.hasOwn(value, key)) continue;
    const child = value[key];
    if (sub === true) out[key] = child;
    else if (isObject(child) || Array.isArray(child)) out[key] = project(child, sub);
  }
  return out;
}

function dropAt(value: Json, path: readonly string[], i: number): void {
  if (Array.isArray(value)) {
    for (const item of value) dropAt(item, path, i);
    return;
  }
  if (!isObject(value)) return;
  const key = path[i]!;
  if (!Object.hasOwn(value, key)) return;
  if (i === path.length - 1) delete value[key];
  else dropAt(value[key], path, i + 1);
}

function getAt(value: Json, path: readonly string[]): Json {
  let node = value;
  for (const key of path) {
    if (!isObject(node) || !Object.hasOwn(node, key)) return undefined;
    node = node[key];
  }
  return node;
}

/** Removes and returns the value at `path` (object keys only). */
function takeAt(value: Json, path: readonly string[]): Json {
  const parent = getAt(value, path.slice(0, -1));
  const key = path[path.length - 1]!;
  if (!isObject(parent) || !Object.hasOwn(parent, key)) return undefined;
  const taken = parent[key];
  delete parent[key];
  return taken;
}

/** Sets `path`, creating objects on the way; a non-object in the way is left alone. */
function setAt(value: Json, path: readonly string[], leaf: Json): void {
  if (!isObject(value)) return;
  let node: JsonObject = value;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i]!;
    let next = Object.hasOwn(node, key) ? node[key] : undefined;
    if (next === undefined) {
      next = {};
      node[key] = next;
    }
    if (!isObject(next)) return;
    node = next;
  }
  node[path[path.length - 1]!] = leaf;
}
