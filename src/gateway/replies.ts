/** @module Local replies of the gateway policies, built once at create time where their details are fixed. */
import { type ErrorCode, type LocalReply, localReply } from '../errors.ts';
import type { Verdict } from './types.ts';

export function gatewayReply(code: ErrorCode, details: string, headers?: Record<string, string>): LocalReply {
  return Object.freeze(localReply(code, details, headers));
}

/** A frozen `reply` verdict, safe to share between requests. */
export function replyVerdict(code: ErrorCode, details: string, headers?: Record<string, string>): Verdict {
  return Object.freeze({ kind: 'reply', reply: gatewayReply(code, details, headers) });
}

/** `"` and `\` escaped for a quoted-string in WWW-Authenticate (RFC 9110 §5.6.4). */
export function quoted(text: string): string {
  return `"${text.replace(/["\\]/g, '\\$&')}"`;
}
