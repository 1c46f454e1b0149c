/**
 * @module Binary encoding of a cache entry for external stores: a 4-byte big-endian length, the metadata as
 * JSON, then the body bytes unchanged (no base64).
 */
import type { CacheEntry } from './types.ts';

const VERSION = 1;

export function encodeEntry(entry: CacheEntry): Buffer {
  const { body, ...meta } = entry;
  const json = Buffer.from(JSON.stringify({ v: VERSION, ...meta }));
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(json.length, 0);
  return Buffer.concat([head, json, body], 4 + json.length + body.length);
}

/** Undefined for bytes that are not an entry of this version (treated as a miss). */
export function decodeEntry(data: Buffer): CacheEntry | undefined {
  if (data.length < 4) return undefined;
  const length = data.readUInt32BE(0);
  if (4 + length > data.length) return undefined;
  try {
    const meta = JSON.parse(data.toString('utf8', 4, 4 + length)) as Record<string, unknown>;
    if (meta.v !== VERSION) return undefined;
    delete meta.v;
    return { ...(meta as Omit<CacheEntry, 'body'>), body: data.subarray(4 + length) };
  } catch {
    return undefined;
  }
}
