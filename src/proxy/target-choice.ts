/**
 * @module How a request's target is chosen, shared by proxied requests (forwarder.ts) and WebSocket upgrades
 * (websocket.ts): the client's sticky pin, the cookie that pins it, and the reply when no target is left.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { LocalReply } from '../errors.ts';
import { localReply } from '../errors.ts';
import { readCookie } from '../lib/cookie.ts';
import type { PickHint, Pool, StickySessions, Target } from '../upstream/types.ts';
import { unavailableReply } from './upstream-errors.ts';

/** The hint of a plain pick (no hash key, nothing excluded): one frozen object, no allocation per request. */
export const NO_HINT: PickHint = Object.freeze({});

/** The target a valid sticky cookie in `headers` pins the client to, if any. */
export function pinnedTarget(sticky: StickySessions, headers: IncomingHttpHeaders): Target | undefined {
  const value = readCookie(headers.cookie, sticky.cookie);
  return value === undefined ? undefined : sticky.targetFromCookie(value);
}

/** `Set-Cookie` pinning the client to `target`; Secure when it reached the edge over HTTPS (ours or a trusted proxy's). */
export function stickyCookie(sticky: StickySessions, target: Target, headers: IncomingHttpHeaders): string {
  const cookie = sticky.setCookieFor(target);
  return headers['x-forwarded-proto'] === 'https' ? `${cookie}; Secure` : cookie;
}

/** The reply when `pool` has no target for `hint`: its circuit is open (overloaded), or none is available. */
export function noTargetReply(pool: Pool, hint: PickHint, retrying: boolean): LocalReply {
  if (pool.noTargetReason(hint) === 'overloaded') return localReply('GW_UPSTREAM_OVERLOADED', 'circuit_open');
  return unavailableReply(pool, retrying ? 'no_target_left_to_retry' : 'no_available_target');
}
