/**
 * @module One replica and the state that outlives config reloads: in-flight count, active-health verdict,
 * passive ejection and the slow-start ramp. Pools share these objects through the registry.
 */
import type { TargetConfig } from '../config/schema.ts';
import type { Target } from './types.ts';

export type Clock = () => number;

/** Where a configured target dials: key, origin, host, port. */
export interface TargetAddress {
  readonly key: string;
  readonly origin: string;
  readonly host: string;
  readonly port: number;
  /** `https:` targets need TLS; kept so discovered addresses keep the scheme. */
  readonly protocol: 'http:' | 'https:' | 'tcp:';
}

/** Parses a target's `url` or `address` once, at build time. */
export function targetAddress(config: TargetConfig): TargetAddress {
  if (config.url !== undefined) {
    const u = new URL(config.url);
    const protocol = u.protocol === 'https:' ? 'https:' : 'http:';
    const port = Number(u.port || (protocol === 'https:' ? 443 : 80));
    return { key: u.origin, origin: u.origin, host: stripBrackets(u.hostname), port, protocol };
  }
  const a = config.address!;
  const i = a.lastIndexOf(':');
  return { key: a, origin: '', host: stripBrackets(a.slice(0, i)), port: Number(a.slice(i + 1)), protocol: 'tcp:' };
}

/** The address a discovered IP dials, keeping the configured scheme and port. */
export function discoveredAddress(from: TargetAddress, ip: string): TargetAddress {
  const hostPart = ip.includes(':') ? `[${ip}]` : ip;
  if (from.protocol === 'tcp:') {
    const key = `${hostPart}:${from.port}`;
    return { key, origin: '', host: ip, port: from.port, protocol: 'tcp:' };
  }
  const origin = `${from.protocol}//${hostPart}:${from.port}`;
  return { key: origin, origin, host: ip, port: from.port, protocol: from.protocol };
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** A Target with mutable state. Only src/upstream/ writes these fields. */
export class UpstreamTarget implements Target {
  readonly key: string;
  readonly origin: string;
  readonly host: string;
  readonly port: number;
  readonly protocol: TargetAddress['protocol'];
  readonly hostname: string | undefined;
  weight: number;
  /** Attempts (L7) or connections (L4) in flight. */
  active = 0;
  /** Circuit breaker: most in flight on this target (Infinity = no limit). */
  maxActive = Number.POSITIVE_INFINITY;
  /** Active health verdict; false until the first passing check when checks are configured. */
  healthy = true;
  /** True once an active check has run (the first pass counts regardless of the threshold). */
  checked = false;
  checkPasses = 0;
  checkFailures = 0;
  /** Passive (outlier) state. */
  consecutiveFailures = 0;
  ejectedUntil = 0;
  ejections = 0;
  /** When the last ejection ended (or will end); ejections in a row grow longer. */
  lastEjectionEnd = Number.NEGATIVE_INFINITY;
  /** Removed by a reload or discovery: no new picks, in-flight work finishes. */
  draining = false;
  /** When the target last became available (slow-start ramp start). */
  availableSince: number;
  readonly #now: Clock;

  constructor(address: TargetAddress, weight: number, now: Clock, hostname?: string) {
    this.key = address.key;
    this.origin = address.origin;
    this.host = address.host;
    this.port = address.port;
    this.protocol = address.protocol;
    this.hostname = hostname;
    this.weight = weight;
    this.#now = now;
    this.availableSince = now();
  }

  available(): boolean {
    if (this.draining || !this.healthy || this.active >= this.maxActive) return false;
    return this.ejectedUntil === 0 || !this.isEjected();
  }

  /** Ejected now? Clears the ejection when it has run out, starting the slow-start ramp. */
  isEjected(): boolean {
    if (this.ejectedUntil === 0) return false;
    if (this.#now() < this.ejectedUntil) return true;
    this.availableSince = this.ejectedUntil;
    this.ejectedUntil = 0;
    return false;
  }

  /** Up but over its circuit limit (tells `overloaded` from `unavailable`). */
  full(): boolean {
    return this.active >= this.maxActive && !this.draining && this.healthy && !this.isEjected();
  }
}
