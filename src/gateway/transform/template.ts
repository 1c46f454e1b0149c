/**
 * @module Minimal `{{…}}` templates for the transform policy, compiled once per config generation.
 *
 * Kept apart from the shared src/gateway/templates.ts (same variables and rendering, same
 * `compileTemplate(text): (ex) => string`) because transforms also need: the raw typed value of a lone
 * placeholder (body `set`), per-value encoding (path), and the `response.*` variables.
 *
 * Variables: `consumer.name`, `consumer.groups`, `consumer.metadata.<key>`, `jwt.<claim>[.<nested>]`,
 * `request.method`, `request.path`, `request.id`, `request.query.<name>`, `request.header.<name>`,
 * `params.<name>`, `route.name`, `client.ip` (alias `client.address`), `response.status`,
 * `response.header.<name>`; `claims.` is an alias of `jwt.`. A missing value
 * renders as ''. An unknown variable is a config error (thrown here, reported by `parse`).
 */
import type { Exchange } from '../types.ts';
import { queryParam } from './query.ts';

type Getter = (ex: Exchange) => unknown;

export interface Template {
  /** The text with every placeholder replaced (each value passed through `encode` when given). */
  render(ex: Exchange): string;
  /** A template that is exactly one placeholder yields the raw value (a number, a list); otherwise `render`. */
  value(ex: Exchange): unknown;
  /** True when the template has no placeholder. */
  readonly constant: boolean;
}

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;
const SEGMENT = /^[A-Za-z0-9_-]+$/;

/** Thrown by compile functions; `parse` turns it into an issue. */
export class TemplateError extends Error {
  override name = 'TemplateError';
}

/** Same signature as the shared src/gateway/templates.ts. */
export function compileTemplate(text: string): (ex: Exchange) => string {
  const template = compile(text);
  return (ex) => template.render(ex);
}

/** Compiles `text`; `encode` escapes each substituted value (e.g. `encodeURIComponent` inside a path). */
export function compile(text: string, encode?: (value: string) => string): Template {
  const literals: string[] = [];
  const getters: Getter[] = [];
  let last = 0;
  for (const match of text.matchAll(PLACEHOLDER)) {
    literals.push(text.slice(last, match.index));
    getters.push(compileExpression(match[1]!));
    last = match.index + match[0].length;
  }
  const tail = text.slice(last);
  if (getters.length === 0) {
    return { constant: true, render: () => text, value: () => text };
  }
  const single = getters.length === 1 && literals[0] === '' && tail === '' ? getters[0]! : undefined;
  const render = (ex: Exchange): string => {
    let out = '';
    for (let i = 0; i < getters.length; i++) {
      const raw = stringify(getters[i]!(ex));
      out += literals[i]! + (encode === undefined ? raw : encode(raw));
    }
    return out + tail;
  };
  return { constant: false, render, value: single === undefined ? render : (ex) => single(ex) ?? '' };
}

/** Strings as they are, lists of scalars comma-joined, objects as JSON, missing values as ''. */
export function stringify(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) return value.join(',');
  return JSON.stringify(value);
}

function compileExpression(expression: string): Getter {
  const parts = expression.split('.');
  if (parts.some((part) => !SEGMENT.test(part))) {
    throw new TemplateError(`invalid template variable "{{${expression}}}"`);
  }
  const [root, second, ...rest] = parts;
  const key = rest.join('.');
  switch (root) {
    case 'consumer':
      if (second === 'name' && rest.length === 0) return (ex) => ex.consumer?.name;
      if (second === 'groups' && rest.length === 0) return (ex) => ex.consumer?.groups;
      if (second === 'metadata' && rest.length === 1) return (ex) => ex.consumer?.metadata[key];
      break;
    case 'jwt':
    case 'claims':
      if (second !== undefined) return claimGetter([second, ...rest]);
      break;
    case 'params':
      if (second !== undefined && rest.length === 0) return (ex) => ex.params[second];
      break;
    case 'route':
      if (second === 'name' && rest.length === 0) return (ex) => ex.routeName;
      break;
    case 'client':
      if ((second === 'ip' || second === 'address') && rest.length === 0) return (ex) => ex.client.address;
      break;
    case 'request':
      return requestGetter(second, rest, expression);
    case 'response':
      if (second === 'status' && rest.length === 0) return (ex) => ex.response?.status;
      if ((second === 'header' || second === 'headers') && rest.length === 1) {
        const name = key.toLowerCase();
        return (ex) => ex.response?.headers[name];
      }
      break;
  }
  throw new TemplateError(`unknown template variable "{{${expression}}}"`);
}

function requestGetter(second: string | undefined, rest: string[], expression: string): Getter {
  if (rest.length === 0) {
    if (second === 'method') return (ex) => ex.request.method;
    if (second === 'path') return (ex) => ex.request.path;
    if (second === 'id') return (ex) => ex.id;
  } else if (rest.length === 1) {
    const name = rest[0]!;
    if (second === 'query') return (ex) => queryParam(ex.request.query, name);
    if (second === 'header' || second === 'headers') {
      const lower = name.toLowerCase();
      return (ex) => ex.request.headers[lower];
    }
  }
  throw new TemplateError(`unknown template variable "{{${expression}}}"`);
}

function claimGetter(path: readonly string[]): Getter {
  return (ex) => {
    let node: unknown = ex.claims;
    for (const segment of path) {
      if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
      node = (node as Record<string, unknown>)[segment];
    }
    return node;
  };
}
