/**
 * @module Local replies of the authentication and authorization policies.
 *
 * The gateway codes below are not in the catalogue (src/errors.ts) yet; until they are, their status comes
 * from PENDING_STATUS. Once the lead adds them, `gatewayReply` is plain `localReply`.
 */
import { ERROR_CODES, type ErrorCode, type LocalReply } from '../errors.ts';
import type { Verdict } from './types.ts';

/** Codes this layer needs in the catalogue, with their status. */
export const PENDING_STATUS = {
  GW_AUTH_MISSING: 401,
  GW_AUTH_INVALID: 401,
  GW_AUTH_UNAVAILABLE: 503,
  GW_FORBIDDEN: 403,
} as const;

export type GatewayCode = keyof typeof PENDING_STATUS | 'GW_INTERNAL';

export function gatewayReply(code: GatewayCode, details: string, headers?: Record<string, string>): LocalReply {
  const known = (ERROR_CODES as Record<string, { status: number }>)[code];
  const status = known ? known.status : PENDING_STATUS[code as keyof typeof PENDING_STATUS];
  const c = code as ErrorCode;
  return Object.freeze(headers === undefined ? { status, code: c, details } : { status, code: c, details, headers });
}

/** A frozen reply verdict; policies build theirs once at create time where the details are fixed. */
export function replyVerdict(code: GatewayCode, details: string, headers?: Record<string, string>): Verdict {
  return Object.freeze({ kind: 'reply', reply: gatewayReply(code, details, headers) });
}

/** `"` and `\` escaped for a quoted-string in WWW-Authenticate (RFC 9110 §5.6.4). */
export function quoted(text: string): string {
  return `"${text.replace(/["\\]/g, '\\$&')}"`;
}
