/**
 * @module Templates such as `Bearer {{jwt.sub}}` or `{{consumer.name}}:{{request.query.page}}`, compiled once
 * per generation into a list of constant parts and field readers, then rendered per request by concatenation.
 *
 * Fields: `consumer.name`, `consumer.groups` (comma-joined), `consumer.metadata.<key>`, `jwt.<claim>[.<key>…]`
 * (alias `claims.`), `request.method`, `request.path`, `request.query.<name>`, `request.header.<name>` (alias
 * `request.headers.`), `request.id`, `route.name`, `params.<name>`, `client.address`. A missing value renders
 * as ''. Objects render as JSON, arrays of scalars comma-joined. An unknown field is a compile-time error.
 */
import type { Exchange } from './types.ts';

export type Template = (ex: Exchange) => string;
type Reader = (ex: Exchange) => string;

export class TemplateError extends Error {
  override name = 'TemplateError';
}

const PLACEHOLDER_RE = /\{\{\s*([^{}]*?)\s*\}\}/g;
const FIELD_RE = /^[A-Za-z_][\w-]*(\.[\w$:-]+)*$/;
const QUERY_STATE = Symbol('templates.query');

function text(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) return value.join(',');
  return JSON.stringify(value);
}

function dig(root: unknown, keys: readonly string[]): unknown {
  let v = root;
  for (const k of keys) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

/** The query parsed once per exchange and per query string (policies may rewrite it). */
function queryParam(ex: Exchange, name: string): string {
  const raw = ex.request.query;
  if (raw === '') return '';
  let cached = ex.state.get(QUERY_STATE) as { raw: string; params: URLSearchParams } | undefined;
  if (cached === undefined || cached.raw !== raw) {
    cached = { raw, params: new URLSearchParams(raw) };
    ex.state.set(QUERY_STATE, cached);
  }
  return cached.params.get(name) ?? '';
}

function reader(field: string): Reader {
  if (!FIELD_RE.test(field)) throw new TemplateError(`invalid template field "{{${field}}}"`);
  const [root, ...rest] = field.split('.');
  const one = rest.length === 1 ? rest[0]! : undefined;
  switch (root) {
    case 'consumer':
      if (one === 'name') return (ex) => ex.consumer?.name ?? '';
      if (one === 'groups') return (ex) => (ex.consumer ? ex.consumer.groups.join(',') : '');
      if (rest[0] === 'metadata' && rest.length === 2) {
        const key = rest[1]!;
        return (ex) => ex.consumer?.metadata[key] ?? '';
      }
      break;
    case 'jwt':
    case 'claims':
      if (rest.length >= 1) {
        if (one !== undefined) return (ex) => text(ex.claims?.[one]);
        return (ex) => text(dig(ex.claims, rest));
      }
      break;
    case 'request':
      if (one === 'method') return (ex) => ex.request.method;
      if (one === 'path') return (ex) => ex.request.path;
      if (one === 'id') return (ex) => ex.id;
      if (rest.length === 2 && rest[0] === 'query') {
        const name = rest[1]!;
        return (ex) => queryParam(ex, name);
      }
      if (rest.length === 2 && (rest[0] === 'header' || rest[0] === 'headers')) {
        const name = rest[1]!.toLowerCase();
        return (ex) => {
          const v = ex.request.headers[name];
          return v === undefined ? '' : typeof v === 'string' ? v : v.join(', ');
        };
      }
      break;
    case 'route':
      if (one === 'name') return (ex) => ex.routeName;
      break;
    case 'params':
      if (one !== undefined) return (ex) => ex.params[one] ?? '';
      break;
    case 'client':
      if (one === 'address') return (ex) => ex.client.address;
      break;
  }
  throw new TemplateError(`unknown template field "{{${field}}}"`);
}

/** True when `text` has at least one `{{…}}` placeholder. */
export function hasPlaceholders(source: string): boolean {
  return source.includes('{{');
}

/** Compiles once; throws TemplateError (a config error) for an unknown field or an unclosed `{{`. */
export function compileTemplate(source: string): Template {
  const constants: string[] = [];
  const readers: Reader[] = [];
  let last = 0;
  for (const m of source.matchAll(PLACEHOLDER_RE)) {
    constants.push(source.slice(last, m.index));
    readers.push(reader(m[1]!));
    last = m.index + m[0].length;
  }
  const tail = source.slice(last);
  if (tail.includes('{{')) throw new TemplateError(`unclosed "{{" in template "${source}"`);
  if (readers.length === 0) return () => source;
  if (readers.length === 1 && constants[0] === '' && tail === '') return readers[0]!;
  const n = readers.length;
  return (ex) => {
    let out = '';
    for (let i = 0; i < n; i++) out += constants[i]! + readers[i]!(ex);
    return out + tail;
  };
}
