/**
 * @module Upstream response headers → the headers the client gets.
 *
 * Works on undici's raw header list (name, value, name, value … as Buffers) and builds the flat array
 * `writeHead` accepts, so a response costs no header object. Drops hop-by-hop headers and those named in
 * `Connection` (RFC 9110 §7.6.1), and the upstream's `Server` and `X-Powered-By` (shielding).
 */
import type { ProxySettingsRuntime } from './types.ts';

/** Lower-case names never passed from an upstream response to the client. */
const DROPPED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'proxy-authenticate',
  'server',
  'x-powered-by',
]);

/** An upstream's raw header list: Buffers from undici, strings from Portico's HTTP/1.1 client. */
export type RawHeaders = readonly (Buffer | string)[];

/** A raw header name or value as text (latin1: what the bytes were). */
export function fieldText(field: Buffer | string): string {
  return typeof field === 'string' ? field : field.toString('latin1');
}

/**
 * The flat header list for the client. Empty (never otherwise: the request id is always in it) when the
 * response cannot be forwarded: a `Transfer-Encoding` other than `chunked` alone, whose body would reach the
 * client still coded but unlabelled (RFC 9112 §6.1; nginx and Go's client refuse it too).
 * Names keep the upstream's case, or are lower-cased for an HTTP/2 client (`lowerCaseNames`), which gets them
 * so (RFC 9113 §8.2.1): the head then needs no second copy of each name.
 */
export function filterResponseHeaders(
  raw: RawHeaders,
  settings: ProxySettingsRuntime,
  requestId: string,
  lowerCaseNames = false,
): string[] {
  const out: string[] = [];
  let connectionTokens: string | undefined;
  let via: string | undefined;
  let codings = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = fieldText(raw[i]!);
    const lower = name.length < 20 ? name.toLowerCase() : name;
    if (DROPPED.has(lower)) {
      if (lower === 'connection') {
        // Every Connection field line counts (RFC 9110 §5.3: a list may be split over several lines).
        const value = fieldText(raw[i + 1]!);
        connectionTokens = connectionTokens === undefined ? value : `${connectionTokens}, ${value}`;
      } else if (lower === 'transfer-encoding' && (++codings > 1 || !isChunked(raw[i + 1]!))) {
        // Two lines would say chunked twice, which a sender must never apply (RFC 9112 §6.1).
        return [];
      }
      continue;
    }
    const value = fieldText(raw[i + 1]!);
    if (lower === settings.requestIdHeader) continue;
    if (settings.viaOnResponses && lower === 'via') {
      via = via === undefined ? value : `${via}, ${value}`;
      continue;
    }
    out.push(lowerCaseNames ? lower : name, value);
  }
  if (connectionTokens !== undefined && !isPlainConnectionOption(connectionTokens)) {
    removeConnectionTokens(out, connectionTokens);
  }
  out.push(settings.requestIdHeader, requestId);
  if (settings.viaOnResponses) out.push('via', via === undefined ? settings.viaValue : `${via}, ${settings.viaValue}`);
  if (settings.serverHeader !== '') out.push('server', settings.serverHeader);
  return out;
}

/** `chunked` in any case, without another coding. */
function isChunked(value: Buffer | string): boolean {
  const text = fieldText(value);
  return text === 'chunked' || text.trim().toLowerCase() === 'chunked';
}

/** `keep-alive` or `close` alone: the common case, which names no other header. */
function isPlainConnectionOption(value: string): boolean {
  const v = value.length < 12 ? value.toLowerCase() : value;
  return v === 'keep-alive' || v === 'close';
}

/** Removes the headers a `Connection` header lists (other than the `close` / `keep-alive` options). */
function removeConnectionTokens(flat: string[], connection: string): void {
  const names = new Set<string>();
  for (const token of connection.split(',')) {
    const t = token.trim().toLowerCase();
    if (t !== '' && t !== 'close' && t !== 'keep-alive') names.add(t);
  }
  if (names.size === 0) return;
  let w = 0;
  for (let r = 0; r < flat.length; r += 2) {
    if (names.has(flat[r]!.toLowerCase())) continue;
    flat[w++] = flat[r]!;
    flat[w++] = flat[r + 1]!;
  }
  flat.length = w;
}

/** Flat [name, value, …] → header object (repeated names become arrays) for header rules to edit. */
export function flatToObject(flat: readonly string[]): Record<string, string | string[]> {
  const obj: Record<string, string | string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    const value = flat[i + 1]!;
    const prev = obj[name];
    if (prev === undefined) obj[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else obj[name] = [prev, value];
  }
  return obj;
}
