/**
 * @module When to compress a response and how its headers change: skipped for encoded, ranged, small,
 * bodiless, HEAD, `no-transform` and non-listed types; then Content-Encoding set, Content-Length removed,
 * `Vary: Accept-Encoding` merged and strong ETags weakened (the bytes differ from the upstream's).
 */
import type { CompressOptions } from './options.ts';
import type { Encoding } from './schema.ts';

export type ResponseHeaders = Record<string, string | string[] | number | undefined>;

/** Whether the response qualifies for compression (negotiate the encoding separately). */
export function shouldCompress(
  status: number,
  headers: Readonly<ResponseHeaders>,
  method: string,
  options: CompressOptions,
): boolean {
  if (method === 'HEAD' || status < 200 || status === 204 || status === 206 || status === 304) return false;
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && first(encoding).trim().toLowerCase() !== 'identity') return false;
  if (headers['content-range'] !== undefined) return false;
  const length = headers['content-length'];
  if (length !== undefined && Number(first(length)) < options.minSize) return false;
  const cacheControl = headers['cache-control'];
  if (cacheControl !== undefined && hasNoTransform(cacheControl)) return false;
  const type = headers['content-type'];
  return type !== undefined && isCompressibleType(first(type), options);
}

/** Edits `headers` in place for a body compressed with `encoding`. */
export function prepareHeaders(headers: ResponseHeaders, encoding: Encoding): void {
  headers['content-encoding'] = encoding;
  delete headers['content-length'];
  headers.vary = mergeVary(headers.vary);
  const etag = headers.etag;
  if (typeof etag === 'string' && etag.charCodeAt(0) === 0x22 /* " */) headers.etag = `W/${etag}`;
}

/** Adds `Vary: Accept-Encoding` to a response that was not compressed but could have been. */
export function addVary(headers: ResponseHeaders): void {
  headers.vary = mergeVary(headers.vary);
}

function mergeVary(vary: ResponseHeaders[string]): string {
  if (vary === undefined) return 'Accept-Encoding';
  const text = Array.isArray(vary) ? vary.join(', ') : String(vary);
  const lower = text.toLowerCase();
  if (lower.includes('accept-encoding') || text.trim() === '*') return text;
  return text.trim().length === 0 ? 'Accept-Encoding' : `${text}, Accept-Encoding`;
}

export function isCompressibleType(contentType: string, options: CompressOptions): boolean {
  const semi = contentType.indexOf(';');
  const type = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (options.exactTypes.has(type)) return true;
  const prefixes = options.typePrefixes;
  for (let i = 0; i < prefixes.length; i++) if (type.startsWith(prefixes[i]!)) return true;
  const suffixes = options.typeSuffixes;
  for (let i = 0; i < suffixes.length; i++) {
    const [prefix, suffix] = suffixes[i]!;
    if (type.startsWith(prefix) && type.endsWith(suffix)) return true;
  }
  return false;
}

function hasNoTransform(value: string | string[] | number): boolean {
  const text = Array.isArray(value) ? value.join(',') : String(value);
  return text.toLowerCase().includes('no-transform');
}

function first(value: string | string[] | number): string {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : (value[0] ?? '');
}
