/**
 * @module Local replies: responses Portico makes itself (RFC 9457 problem+json). They carry a stable code
 * and the request id, never an upstream address, an internal message or a stack.
 */
import type { ServerResponse } from 'node:http';
import { ERROR_CODES, type LocalReply } from '../errors.ts';

export const PROBLEM_JSON = 'application/problem+json';

/**
 * The methods Portico proxies, for the `Allow` field every 405 must carry (RFC 9110 §15.5.6): TRACE and
 * CONNECT are the ones it refuses itself.
 */
export const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

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
 * True when the client's Accept ranks HTML above JSON (a browser navigating), so an error page beats a
 * JSON document. API clients (`*\/*`, JSON) get problem+json.
 */
export function prefersHtml(accept: string | undefined): boolean {
  if (accept === undefined || !accept.includes('text/html')) return false;
  let html = 0;
  let json = 0;
  for (const part of accept.split(',')) {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    const qParam = params.find((p) => p.trim().startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.trim().slice(2)) || 0;
    if (type === 'text/html') html = Math.max(html, q);
    else if (type === 'application/json' || type === 'application/problem+json') json = Math.max(json, q);
  }
  return html > json;
}

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/** A small error page with the same facts as the problem document. */
export function htmlBody(reply: LocalReply, requestId: string): string {
  const title = escapeHtml(`${reply.status} ${ERROR_CODES[reply.code]?.title ?? 'Error'}`);
  return (
    `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head>` +
    `<body><h1>${title}</h1><p>Code: ${escapeHtml(reply.code)}<br>Request id: ${escapeHtml(requestId)}</p></body></html>`
  );
}

/**
 * Writes `reply` to `res` unless headers were already sent (then the only honest move is to abort the
 * connection so the client cannot mistake a truncated body for a complete one; an HTTP/2 stream is reset with
 * INTERNAL_ERROR, since NO_ERROR is how a server ends a complete response early, RFC 9113 §8.1).
 */
export function sendLocalReply(
  res: ServerResponse,
  reply: LocalReply,
  requestId: string,
  requestIdHeader: string,
  extraHeaders?: Readonly<Record<string, string>>,
): void {
  if (res.headersSent) {
    res.destroy(res.req?.httpVersionMajor === 2 ? new Error(reply.details) : undefined);
    return;
  }
  const html = prefersHtml(res.req?.headers.accept);
  const body = html ? htmlBody(reply, requestId) : problemBody(reply, requestId);
  const headers: Record<string, string | number> = {
    'content-type': html ? 'text/html; charset=utf-8' : PROBLEM_JSON,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    [requestIdHeader]: requestId,
  };
  if (extraHeaders) Object.assign(headers, extraHeaders);
  if (reply.headers) Object.assign(headers, reply.headers);
  if (reply.status === 405 && headers.allow === undefined) headers.allow = ALLOWED_METHODS;
  res.writeHead(reply.status, headers);
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}
