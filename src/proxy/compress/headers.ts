/**
 * @module When to compress a response and how its headers change: skipped for encoded, ranged, small,
 * bodiless, `no-transform`, digested and non-listed types; then Content-Encoding set, Content-Length and
 * Accept-Ranges removed, `Vary: Accept-Encoding` merged and strong ETags weakened (the bytes differ from the
 * upstream's). A HEAD
 * response gets the same header changes as the GET would (RFC 9110 §9.3.2), without a body to compress.
 */
import type { CompressOptions } from './options.ts';
import type { Encoding } from './schema.ts';

export type ResponseHeaders = Record<string, string | string[] | number | undefined>;

/** Whether the response qualifies for compression (negotiate the encoding separately). */
export function shouldCompress(status: number, headers: Readonly<ResponseHeaders>, options: CompressOptions): boolean {
  if (status < 200 || status === 204 || status === 206 || status === 304) return false;
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && first(encoding).trim().toLowerCase() !== 'identity') return false;
  if (headers['content-range'] !== undefined) return false;
  if (!bigEnough(headers, options)) return false;
  const cacheControl = headers['cache-control'];
  if (cacheControl !== undefined && hasNoTransform(cacheControl)) return false;
  if (hasDigest(headers)) return false;
  const type = headers['content-type'];
  return type !== undefined && isCompressibleType(first(type), options);
}

/**
 * Whether the 200 that a 304 stands for would have been compressed, as far as the 304's own fields tell
 * (RFC 9110 §15.4.5: it carries the ETag and Vary that 200 would have had). A 304 usually has no
 * Content-Type: then only `no-transform`, a Content-Encoding and a Content-Length under `minSize` rule it out.
 */
export function wouldCompressFull(headers: Readonly<ResponseHeaders>, options: CompressOptions): boolean {
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && first(encoding).trim().toLowerCase() !== 'identity') return false;
  if (!bigEnough(headers, options)) return false;
  const cacheControl = headers['cache-control'];
  if (cacheControl !== undefined && hasNoTransform(cacheControl)) return false;
  if (hasDigest(headers)) return false;
  const type = headers['content-type'];
  return type === undefined || isCompressibleType(first(type), options);
}

/**
 * Edits `headers` in place for a body compressed with `encoding`. `Accept-Ranges` goes too, as nginx and
 * Caddy do: the ranges a client would ask for next are offsets in the bytes it was sent, which the upstream,
 * ranging over its identity bytes, cannot serve.
 */
export function prepareHeaders(headers: ResponseHeaders, encoding: Encoding): void {
  headers['content-encoding'] = encoding;
  delete headers['accept-ranges'];
  prepareValidators(headers);
}

/**
 * The fields of a compressed response other than Content-Encoding, also those of a 304 standing for one:
 * no Content-Length (the identity length), `Vary: Accept-Encoding`, a strong ETag made weak.
 */
export function prepareValidators(headers: ResponseHeaders): void {
  delete headers['content-length'];
  headers.vary = mergeVary(headers.vary);
  const etag = headers.etag;
  if (typeof etag === 'string' && etag.charCodeAt(0) === 0x22 /* " */) headers.etag = `W/${etag}`;
}

/** Adds `Vary: Accept-Encoding` to a response that was not compressed but could have been. */
export function addVary(headers: ResponseHeaders): void {
  headers.vary = mergeVary(headers.vary);
}

/** An existing Vary with `Accept-Encoding` appended once; `*` (varies on everything) is left alone. */
function mergeVary(vary: ResponseHeaders[string]): string {
  if (vary === undefined) return 'Accept-Encoding';
  const text = Array.isArray(vary) ? vary.join(', ') : String(vary);
  for (const member of text.split(',')) {
    const name = member.trim().toLowerCase();
    if (name === 'accept-encoding' || name === '*') return text;
  }
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

function bigEnough(headers: Readonly<ResponseHeaders>, options: CompressOptions): boolean {
  const length = headers['content-length'];
  return length === undefined || Number(first(length)) >= options.minSize;
}

/**
 * An integrity digest of the upstream's bytes (RFC 9530 `Content-Digest`, `Repr-Digest`, and the obsolete
 * `Content-MD5`): compressing would make it false, and a client that checks it would reject the response.
 */
function hasDigest(headers: Readonly<ResponseHeaders>): boolean {
  return (
    headers['content-digest'] !== undefined ||
    headers['repr-digest'] !== undefined ||
    headers['content-md5'] !== undefined
  );
}

/** `no-transform` as a directive of its own (RFC 9111 §5.2.2.6), in any case. */
function hasNoTransform(value: string | string[] | number): boolean {
  const text = (Array.isArray(value) ? value.join(',') : String(value)).toLowerCase();
  if (!text.includes('no-transform')) return false;
  for (const member of text.split(',')) {
    const eq = member.indexOf('=');
    if ((eq === -1 ? member : member.slice(0, eq)).trim() === 'no-transform') return true;
  }
  return false;
}

function first(value: string | string[] | number): string {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : (value[0] ?? '');
}
