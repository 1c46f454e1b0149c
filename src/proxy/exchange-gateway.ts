/**
 * @module The response phase of a route's policies, in a proxied exchange: the upstream's head goes through
 * the chain before it is written, and a body that policies read is held back whole, then sent as they left it.
 *
 * Module functions over the exchange (forwarder.ts), called only on routes whose policies have response work
 * (a response hook or a body to read) or that also cache or compress; policies that only add reply headers
 * take the forwarder's plain path.
 */
import { localReply } from '../errors.ts';
import type { Verdict } from '../gateway/types.ts';
import type { CaptureStream } from './cache/capture.ts';
import { clientHead, writeShapedHead } from './exchange-shaping.ts';
import type { ProxyExchange } from './forwarder.ts';
import { RESPONSE_OVER_POLICY_LIMIT } from './gateway-step.ts';

/** Response chunks held back for policies that read the response body; made only on routes that have them. */
export interface HeldBody {
  readonly chunks: Buffer[];
  size: number;
}

/** Headers of a route with policies: run the response phase now, or hold the body for policies that read it. */
export function gatewayHeaders(ex: ProxyExchange, status: number, flat: string[]): boolean {
  const gw = ex.gateway!;
  const head = clientHead(ex, status, flat);
  if (head === false) return false;
  const { headers: out, capture } = head;
  // Policies' reply headers (RateLimit, CORS) belong to this client alone, never to what the cache stores.
  Object.assign(out, gw.replyHeaders);
  gw.response = { status, headers: out };
  const chain = ex.route.gateway!.chain;
  if (chain.needsResponseBody > 0) {
    ex.held = { chunks: [], size: 0 };
    return true;
  }
  // The cache capture chosen here is carried to the head written after the response phase.
  if (!chain.hasResponsePhase) return writeGatewayHead(ex, capture);
  const outcome = chain.runResponse(gw);
  if (!(outcome instanceof Promise)) return afterResponsePhase(ex, outcome, capture);
  outcome.then(
    (v) => {
      if (afterResponsePhase(ex, v, capture)) ex.resumeUpstream();
    },
    () => afterResponsePhase(ex, { kind: 'reply', reply: localReply('GW_INTERNAL', 'response_phase_failed') }, capture),
  );
  return false;
}

function afterResponsePhase(ex: ProxyExchange, verdict: Verdict, capture: CaptureStream | undefined): boolean {
  if (ex.finished) return false;
  if (verdict.kind === 'continue') return writeGatewayHead(ex, capture);
  ex.endAttempt({ kind: 'response', status: ex.log.status });
  ex.fail(verdict.kind === 'reply' ? verdict.reply : localReply('GW_INTERNAL', 'response_phase_respond'));
  return false;
}

function writeGatewayHead(ex: ProxyExchange, capture: CaptureStream | undefined): boolean {
  const r = ex.gateway!.response!;
  return writeShapedHead(ex, r.status, r.headers as Record<string, string | string[]>, capture);
}

/** A chunk of a response policies read: kept, or the exchange ends when the body outgrows their limit. */
export function holdChunk(ex: ProxyExchange, chunk: Buffer): boolean {
  const held = ex.held!;
  held.size += chunk.length;
  if (held.size > ex.route.gateway!.chain.needsResponseBody) {
    ex.held = undefined;
    ex.endAttempt({ kind: 'response', status: ex.log.status });
    ex.fail(RESPONSE_OVER_POLICY_LIMIT);
    return false;
  }
  held.chunks.push(chunk);
  return true;
}

/** The whole response is here: let policies read and change it, then send it. */
export function releaseHeld(ex: ProxyExchange): void {
  const gw = ex.gateway!;
  const held = ex.held!;
  gw.responseBody = Buffer.concat(held.chunks, held.size);
  ex.held = undefined;
  ex.settle({ kind: 'response', status: ex.log.status });
  const outcome = ex.route.gateway!.chain.runResponse(gw);
  if (outcome instanceof Promise) {
    outcome.then(
      (v) => sendHeld(ex, v),
      () => sendHeld(ex, { kind: 'reply', reply: localReply('GW_INTERNAL', 'response_phase_failed') }),
    );
  } else {
    sendHeld(ex, outcome);
  }
}

function sendHeld(ex: ProxyExchange, verdict: Verdict): void {
  if (ex.finished) return;
  if (verdict.kind !== 'continue') {
    ex.fail(verdict.kind === 'reply' ? verdict.reply : localReply('GW_INTERNAL', 'response_phase_respond'));
    return;
  }
  const gw = ex.gateway!;
  const r = gw.response!;
  const body = gw.responseBody ?? Buffer.alloc(0);
  delete r.headers['transfer-encoding'];
  if (ex.req.method !== 'HEAD' && r.status !== 204 && r.status !== 304) r.headers['content-length'] = body.length;
  ex.log.status = r.status;
  ex.log.bytesOut = body.length;
  try {
    ex.res.writeHead(r.status, r.headers);
  } catch {
    ex.fail(localReply('GW_UPSTREAM_BAD_RESPONSE', 'invalid_response_headers'));
    return;
  }
  ex.res.end(body);
}
