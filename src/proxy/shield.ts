/**
 * @module Shielding: who may reach a listener or route (allow / deny lists of client addresses) and how many
 * connections one client address may hold open.
 */
import type { Socket } from 'node:net';
import { createAddressMatcher } from '../lib/cidr.ts';

/** `(ip) => allowed`, or undefined when there is nothing to check. `deny` wins; an absent `allow` allows all. */
export type AccessCheck = (ip: string) => boolean;

export function createAccessCheck(
  allow: readonly string[] | undefined,
  deny: readonly string[] | undefined,
): AccessCheck | undefined {
  if ((allow === undefined || allow.length === 0) && (deny === undefined || deny.length === 0)) return undefined;
  const allowed = allow === undefined || allow.length === 0 ? undefined : createAddressMatcher(allow);
  const denied = deny === undefined || deny.length === 0 ? undefined : createAddressMatcher(deny);
  return (ip) => !(denied?.(ip) ?? false) && (allowed?.(ip) ?? true);
}

/**
 * Counts open connections per client address. `admit` returns false when the address already holds `max`
 * (the caller refuses the connection); the count drops when the socket closes.
 */
export class ConnectionsPerClient {
  max: number;
  readonly #open = new Map<string, number>();

  constructor(max: number) {
    this.max = max;
  }

  admit(socket: Socket): boolean {
    if (this.max <= 0) return true;
    const ip = socket.remoteAddress ?? '';
    const n = this.#open.get(ip) ?? 0;
    if (n >= this.max) return false;
    this.#open.set(ip, n + 1);
    socket.once('close', () => {
      const left = (this.#open.get(ip) ?? 1) - 1;
      if (left <= 0) this.#open.delete(ip);
      else this.#open.set(ip, left);
    });
    return true;
  }
}
