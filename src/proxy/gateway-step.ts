/**
 * @module Where the proxy hands a request to the route's policy chain (the API-gateway layer) and back.
 *
 * Only routes that list policies come here; others go straight to the forwarder. Order: identity headers
 * the client sent are stripped → the request body is buffered when a policy asked for it → request phase →
 * on `continue` the identified consumer is forwarded and the (possibly rewritten) request goes upstream; on
 * `reply` / `respond` the exchange ends here with the reply headers the policies collected.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { localReply } from '../errors.ts';
import type { Chain } from '../gateway/chain.ts';
import type { Identity } from '../gateway/identity.ts';
import type { ClientInfo, Consumer, Exchange, RequestHead, ResponseHead, Verdict } from '../gateway/types.ts';
import { sendLocalReply } from './local-reply.ts';

/** What a route with policies carries, compiled once per generation. */
export interface RouteGateway {
  readonly chain: Chain;
  readonly identity: Identity;
}

/** The gateway's view of one request; implements the policies' `Exchange` contract. */
export class GatewayExchange implements Exchange {
  readonly id: string;
  readonly routeName: string;
  readonly params: Readonly<Record<string, string>>;
  readonly client: ClientInfo;
  readonly request: RequestHead;
  response?: ResponseHead = undefined;
  body?: Buffer = undefined;
  responseBody?: Buffer = undefined;
  consumer?: Consumer = undefined;
  claims?: Readonly<Record<string, unknown>> = undefined;
  readonly replyHeaders: Record<string, string> = {};
  #state: Map<symbol, unknown> | undefined = undefined;

  constructor(
    id: string,
    routeName: string,
    params: Readonly<Record<string, string>>,
    client: ClientInfo,
    method: string,
    path: string,
    query: string,
    headers: IncomingHttpHeaders,
  ) {
    this.id = id;
    this.routeName = routeName;
    this.params = params;
    this.client = client;
    this.request = { method, path, query, headers };
  }

  /** Made on first use: most exchanges never pass data between phases. */
  get state(): Map<symbol, unknown> {
    if (this.#state === undefined) this.#state = new Map();
    return this.#state;
  }

  now(): number {
    return Date.now();
  }
}

/** What {@link readBody} resolves with when the client went away before the body ended. */
export const CLIENT_GONE = null;

/**
 * Reads a whole request body, up to `limit` bytes; resolves undefined when it is larger, and
 * {@link CLIENT_GONE} when the request failed or closed first: an HTTP/1.1 connection cut mid-upload (an
 * 'error', "aborted"), an HTTP/2 stream reset with CANCEL (only 'close'). Never rejects.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined | typeof CLIENT_GONE> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let ended = false;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.off('data', onData);
        req.pause();
        resolve(undefined);
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      ended = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    const gone = (): void => {
      if (!ended) resolve(CLIENT_GONE);
    };
    req.once('error', gone);
    req.once('close', gone);
  });
}

/** Ends the exchange with what a policy decided: a problem reply, or a response of its own (CORS preflight). */
export function answerFromPolicy(
  res: ServerResponse,
  verdict: Exclude<Verdict, { kind: 'continue' }>,
  ex: GatewayExchange,
  requestIdHeader: string,
  baseHeaders: Readonly<Record<string, string>> | undefined,
): { status: number; code?: string; details: string } {
  if (verdict.kind === 'reply') {
    const headers = baseHeaders === undefined ? ex.replyHeaders : { ...baseHeaders, ...ex.replyHeaders };
    sendLocalReply(res, verdict.reply, ex.id, requestIdHeader, headers);
    return { status: verdict.reply.status, code: verdict.reply.code, details: verdict.reply.details };
  }
  const body = verdict.body ?? '';
  const headers: Record<string, string | number> = {
    ...baseHeaders,
    ...ex.replyHeaders,
    ...verdict.headers,
    [requestIdHeader]: ex.id,
  };
  if (verdict.status !== 204 && verdict.status !== 304) headers['content-length'] = Buffer.byteLength(body);
  res.writeHead(verdict.status, headers);
  res.end(verdict.status === 204 || verdict.status === 304 || res.req?.method === 'HEAD' ? undefined : body);
  return { status: verdict.status, details: 'policy_response' };
}

/** The reply when a body a policy needs is larger than it allows. */
export const BODY_OVER_POLICY_LIMIT = localReply('GW_BODY_TOO_LARGE', 'body_over_policy_limit');
export const RESPONSE_OVER_POLICY_LIMIT = localReply('GW_UPSTREAM_BODY_TOO_LARGE', 'response_over_policy_limit');
