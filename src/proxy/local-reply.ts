/**
 * @module Local replies: responses Portico makes itself (RFC 9457 problem+json). They carry a stable code
 * and the request id, never an upstream address, an internal message or a stack.
 */
import type { ServerResponse } from 'node:http';
import { ERROR_CODES, type LocalReply } from '../errors.ts';

export const PROBLEM_JSON = 'application/problem+json';

/** The problem+json body for a reply. `extra` members (e.g. validation errors) are added after the fixed ones. */
export function problemBody(reply: LocalReply, requestId: string): string {
  const extra = (reply as { errors?: unknown }).errors;
  const body: Record<string, unknown> = {
    status: reply.status,
    title: ERROR_CODES[reply.code]?.title ?? 'Error',
    code: reply.code,
    requestId,
  };
  if (extra !== undefined) body.errors = extra;
  return JSON.stringify(body);
}

/**
 * Writes `reply` to `res` unless headers were already sent (then the only honest move is to abort the
 * connection so the client cannot mistake a truncated body for a complete one).
 */
export function sendLocalReply(
  res: ServerResponse,
  reply: LocalReply,
  requestId: string,
  requestIdHeader: string,
  extraHeaders?: Readonly<Record<string, string>>,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = problemBody(reply, requestId);
  const headers: Record<string, string | number> = {
    'content-type': PROBLEM_JSON,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    [requestIdHeader]: requestId,
  };
  if (extraHeaders) Object.assign(headers, extraHeaders);
  if (reply.headers) Object.assign(headers, reply.headers);
  res.writeHead(reply.status, headers);
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}
