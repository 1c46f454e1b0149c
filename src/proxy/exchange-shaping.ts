/**
 * @module Cache and compression of a proxied response, for routes with `cache` or `compress`: the cache
 * ticket ended with the upstream's answer (or the cache answering instead), stored responses invalidated
 * after unsafe methods, compression chosen, and the body sink (response-body.ts) the forwarder then writes
 * upstream chunks into.
 *
 * Module functions over the exchange (forwarder.ts): a route that neither caches nor compresses never calls
 * them.
 */
import { localReply } from '../errors.ts';
import type { Verdict } from '../gateway/types.ts';
import type { ServedResponse } from './cache/cache.ts';
import type { CaptureStream } from './cache/capture.ts';
import type { ProxyExchange } from './forwarder.ts';
import { bodySink, compressorFor, sendServed } from './response-body.ts';
import { flatToObject } from './response-headers.ts';

/** The exchange a body sink feeds, for its drain listener (a module function: no closure per exchange). */
const kExchange = Symbol('portico.exchange');

/** Headers of a route that caches or compresses: end the cache ticket, choose compression, start the body. */
export function shapedHeaders(ex: ProxyExchange, status: number, flat: string[]): boolean {
  const head = clientHead(ex, status, flat);
  return head !== false && writeShapedHead(ex, status, head.headers, head.capture);
}

/**
 * The upstream's head as this client gets it: given to the cache first (false when the cache answered
 * instead), then the route's response rules. The cache keeps the headers as the upstream sent them; rules,
 * compression and policies' reply headers apply per client (on hits too), so they edit a copy when the
 * response is being stored.
 */
export function clientHead(
  ex: ProxyExchange,
  status: number,
  flat: string[],
): { headers: Record<string, string | string[]>; capture: CaptureStream | undefined } | false {
  const headers = flatToObject(flat);
  const capture = cacheOnResponse(ex, status, headers);
  if (capture === false) return false;
  const out = capture === undefined ? headers : { ...headers };
  ex.route.responseHeaders?.apply(out);
  return { headers: out, capture };
}

/**
 * Gives the cache the upstream's answer. Returns the capture stream to pipe the body through (or
 * undefined), or false when the cache answered instead (304-refreshed entry, stale-if-error).
 */
function cacheOnResponse(
  ex: ProxyExchange,
  status: number,
  headers: Record<string, string | string[]>,
): CaptureStream | undefined | false {
  const ticket = ex.cacheTicket;
  const cache = ex.route.shaping?.cache;
  if (ticket === undefined) {
    if (cache !== undefined) {
      if (ex.cacheBypass) headers[cache.statusHeader] = 'BYPASS';
      // RFC 9111 §4.4: a 2xx/3xx to an unsafe method invalidates the stored responses it names.
      const method = ex.req.method!;
      if (method !== 'GET' && method !== 'HEAD') {
        const req = { method, scheme: ex.cacheScheme, host: ex.cacheHost, url: ex.cacheUrl, headers: ex.req.headers };
        cache.afterUnsafe(req, status, headers).catch(() => {});
      }
    }
    return undefined;
  }
  ex.cacheTicket = undefined;
  const out = ticket.onResponse(status, headers);
  if (out.kind === 'forward') return out.capture;
  ex.endAttempt({ kind: 'response', status });
  sendFromCache(ex, out.response);
  return false;
}

/** Writes the head, compression decided, and puts the capture and/or compressor in front of the client. */
export function writeShapedHead(
  ex: ProxyExchange,
  status: number,
  headers: Record<string, string | string[]>,
  capture: CaptureStream | undefined,
): boolean {
  const compress = ex.route.shaping?.compress;
  // `headers` is already this client's copy when the response is being stored (see shapedHeaders).
  const out = headers;
  const compressor = compressorFor(compress, ex.acceptEncoding, ex.req.method!, status, out);
  ex.log.status = status;
  try {
    ex.res.writeHead(status, out);
  } catch (err) {
    capture?.destroy();
    ex.attempt?.abort?.(err as Error);
    return false;
  }
  if (capture !== undefined || compressor !== undefined) {
    const sink = bodySink(ex.res, capture, compressor);
    (sink as unknown as Record<symbol, ProxyExchange>)[kExchange] = ex;
    ex.sink = sink;
  }
  return true;
}

/** Sends a complete response the cache made (a hit is sent before the forwarder exists; this is the rest). */
export function sendFromCache(ex: ProxyExchange, served: ServedResponse): void {
  ex.route.responseHeaders?.apply(served.headers);
  const gw = ex.gateway;
  const chain = ex.route.gateway?.chain;
  if (gw === undefined || chain === undefined || !chain.hasResponsePhase) {
    writeFromCache(ex, served, gw?.replyHeaders);
    return;
  }
  // The policies' response hooks (CORS is one) see a stored answer as they see the upstream's: a hit must not
  // hand one client's Access-Control-* (or the upstream's) to another.
  Object.assign(served.headers, gw.replyHeaders);
  gw.response = { status: served.status, headers: served.headers };
  const outcome = chain.runResponse(gw);
  if (!(outcome instanceof Promise)) {
    afterCachedResponsePhase(ex, served.body, outcome);
    return;
  }
  outcome.then(
    (verdict) => afterCachedResponsePhase(ex, served.body, verdict),
    () => afterCachedResponsePhase(ex, served.body, RESPONSE_PHASE_FAILED),
  );
}

const RESPONSE_PHASE_FAILED: Verdict = { kind: 'reply', reply: localReply('GW_INTERNAL', 'response_phase_failed') };

function afterCachedResponsePhase(ex: ProxyExchange, body: Buffer, verdict: Verdict): void {
  if (ex.finished) return;
  if (verdict.kind !== 'continue') {
    ex.fail(verdict.kind === 'reply' ? verdict.reply : localReply('GW_INTERNAL', 'response_phase_respond'));
    return;
  }
  const r = ex.gateway!.response!;
  writeFromCache(ex, { status: r.status, headers: r.headers as Record<string, string | string[]>, body }, undefined);
}

function writeFromCache(
  ex: ProxyExchange,
  served: ServedResponse,
  replyHeaders: Readonly<Record<string, string>> | undefined,
): void {
  ex.log.status = served.status;
  const extra = {
    [ex.rt.settings.requestIdHeader]: ex.log.id,
    ...ex.rt.settings.replyHeaders,
    ...replyHeaders,
  };
  ex.log.bytesOut = sendServed(ex.res, served, ex.route.shaping?.compress, ex.acceptEncoding, ex.req.method!, extra);
}

/** The sink took in a slow client's backlog: let undici read the upstream again. */
export function onSinkDrain(this: NodeJS.WritableStream): void {
  (this as unknown as Record<symbol, ProxyExchange>)[kExchange]!.resumeUpstream();
}
