/**
 * @module What stands between an upstream body and the client when a route caches or compresses:
 * upstream chunks → cache capture (a pass-through that keeps a bounded copy) → compressor → client.
 *
 * Routes that do neither never come here: the forwarder writes chunks straight to the client.
 */
import type { ServerResponse } from 'node:http';
import { pipeline, type Transform } from 'node:stream';
import type { RouteCache, ServedResponse } from './cache/cache.ts';
import type { CaptureStream } from './cache/capture.ts';
// The modules themselves, not compress/index.ts: that one also re-exports the config schema (zod), which
// the server process does not need.
import { createCompressor } from './compress/compressor.ts';
import {
  addVary,
  isCompressibleType,
  prepareHeaders,
  prepareValidators,
  type ResponseHeaders,
  shouldCompress,
  wouldCompressFull,
} from './compress/headers.ts';
import { negotiate } from './compress/negotiate.ts';
import type { CompressOptions } from './compress/options.ts';

/** A route's response shaping, compiled once per generation. */
export interface ResponseShaping {
  readonly cache: RouteCache | undefined;
  readonly compress: CompressOptions | undefined;
}

/**
 * Decides compression for a response and edits its headers accordingly (Content-Encoding, Vary, weak
 * ETag, no Content-Length). Returns the compressor to use, if any: never for HEAD, whose headers are
 * still those the GET would get (RFC 9110 §9.3.2). A 304 gets the Vary and ETag its 200 would have had
 * (RFC 9110 §15.4.5), so a client's cache does not swap the weak ETag it stored for a strong one.
 */
export function compressorFor(
  options: CompressOptions | undefined,
  acceptEncoding: string | undefined,
  method: string,
  status: number,
  headers: ResponseHeaders,
): Transform | undefined {
  if (options === undefined) return undefined;
  if (!shouldCompress(status, headers, options)) {
    if (status === 304) {
      if (wouldCompressFull(headers, options)) {
        if (negotiate(acceptEncoding, options) === undefined) addVary(headers);
        else prepareValidators(headers);
      }
      return undefined;
    }
    const type = headers['content-type'];
    // The answer would have differed for another Accept-Encoding: caches must know.
    if (type !== undefined && status < 300 && isCompressibleType(String(type), options)) addVary(headers);
    return undefined;
  }
  const encoding = negotiate(acceptEncoding, options);
  if (encoding === undefined) {
    addVary(headers);
    return undefined;
  }
  // Without a known length the body may be a stream of events: flush each write so it keeps flowing.
  const flush = headers['content-length'] === undefined;
  prepareHeaders(headers, encoding);
  return method === 'HEAD' ? undefined : createCompressor(encoding, options, flush);
}

/**
 * Joins capture and compressor in front of `res`; returns the stream the forwarder writes upstream chunks
 * to. A failure anywhere destroys the client response (the head is already sent).
 */
export function bodySink(
  res: ServerResponse,
  capture: CaptureStream | undefined,
  compressor: Transform | undefined,
): NodeJS.WritableStream {
  const stages: NodeJS.ReadWriteStream[] = [];
  if (capture !== undefined) stages.push(capture);
  if (compressor !== undefined) stages.push(compressor);
  pipeline([...stages, res] as unknown as [NodeJS.ReadableStream, NodeJS.WritableStream], (err) => {
    if (err) res.destroy();
  });
  return stages[0]!;
}

/** Sends a complete response the cache produced (a hit, a refreshed or stale entry), compressing it if due. */
export function sendServed(
  res: ServerResponse,
  served: ServedResponse,
  compress: CompressOptions | undefined,
  acceptEncoding: string | undefined,
  method: string,
  extraHeaders: Readonly<Record<string, string>>,
): number {
  const headers: ResponseHeaders = Object.assign(served.headers, extraHeaders);
  const compressor = compressorFor(compress, acceptEncoding, method, served.status, headers);
  res.writeHead(served.status, headers as Record<string, string | string[]>);
  if (compressor === undefined) {
    res.end(served.body.length === 0 ? undefined : served.body);
    return served.body.length;
  }
  pipeline(compressor, res, (err) => {
    if (err) res.destroy();
  });
  compressor.end(served.body);
  return served.body.length;
}
