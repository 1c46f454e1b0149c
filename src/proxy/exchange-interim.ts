/**
 * @module Interim (1xx) responses of a proxied exchange: which go on to the client, and how many an upstream
 * may send before the final head.
 */
import type { ServerResponse } from 'node:http';
import type { ProxyExchange } from './forwarder.ts';
import { fieldText, type RawHeaders } from './response-headers.ts';

/** Go's HTTP client allows 5 interim responses before the final one; Portico is a little more lenient. */
const MAX_INTERIM_RESPONSES = 8;

/**
 * An interim response (RFC 9110 §15.2). A proxy forwards 1xx: 102 and 103 (its Link fields) go on to
 * HTTP/1.1 and later clients (never to HTTP/1.0 ones) until the final head; 100 is dropped (Portico answers
 * `Expect` itself and never sends it upstream, so an upstream 100 is unsolicited; undici-based clients,
 * fetch among them, refuse an unsolicited 100), and so are unassigned codes. 101 never reaches this handler.
 * An upstream that keeps sending 1xx is cut off: each one would otherwise restart the response timeout.
 */
export function onInterim(ex: ProxyExchange, statusCode: number, rawHeaders: RawHeaders): boolean {
  if (++ex.interimCount > MAX_INTERIM_RESPONSES) return ex.refuse('too_many_interim_responses');
  const res = ex.res;
  if (res.headersSent || (ex.req.httpVersionMajor === 1 && ex.req.httpVersionMinor === 0)) return true;
  if (statusCode === 103) earlyHints(res, rawHeaders);
  else if (statusCode === 102 && typeof res.writeProcessing === 'function') res.writeProcessing();
  return true;
}

function earlyHints(res: ServerResponse, rawHeaders: RawHeaders): void {
  const links: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length === 4 && fieldText(rawHeaders[i]!).toLowerCase() === 'link') {
      links.push(fieldText(rawHeaders[i + 1]!));
    }
  }
  if (links.length > 0) res.writeEarlyHints({ link: links });
}
