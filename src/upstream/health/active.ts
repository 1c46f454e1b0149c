/**
 * @module Active health checks: every `interval`, probe each target (HTTP GET of `path` expecting one of
 * `expectedStatuses`, or a TCP connect) within `timeout`. `unhealthyThreshold` failures in a row take a
 * target out, `healthyThreshold` passes in a row bring it back; a target that has never passed comes in on
 * its first pass. Timers are unref'd and every probe in flight is destroyed on close.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { UpstreamConfig } from '../../config/schema.ts';
import type { Clock, UpstreamTarget } from '../target.ts';

export type ActiveConfig = NonNullable<UpstreamConfig['health']['active']>;

/** `[200, '200-399']` → a status lookup table. */
export function statusTable(expected: ActiveConfig['expectedStatuses']): Uint8Array {
  const table = new Uint8Array(600);
  for (const e of expected) {
    if (typeof e === 'number') table[e] = 1;
    else {
      const [lo, hi] = e.split('-').map(Number) as [number, number];
      for (let s = lo; s <= hi; s++) table[s] = 1;
    }
  }
  return table;
}

/** Applies one probe result to the target's health state. */
export function recordCheck(target: UpstreamTarget, passed: boolean, config: ActiveConfig, now: Clock): void {
  if (passed) {
    target.checkFailures = 0;
    target.checkPasses++;
    if (!target.healthy && (!target.checked || target.checkPasses >= config.healthyThreshold)) {
      target.healthy = true;
      target.availableSince = now();
    }
    target.checked = true;
    return;
  }
  target.checkPasses = 0;
  target.checkFailures++;
  if (target.healthy && target.checkFailures >= config.unhealthyThreshold) target.healthy = false;
}

export class ActiveChecker {
  readonly #config: ActiveConfig;
  readonly #type: 'http' | 'tcp';
  readonly #statuses: Uint8Array;
  readonly #targets: () => readonly UpstreamTarget[];
  readonly #now: Clock;
  readonly #inFlight = new Map<UpstreamTarget, { destroy(): void }>();
  #timer: NodeJS.Timeout | undefined;
  #first: NodeJS.Immediate | undefined;
  #closed = false;

  constructor(config: ActiveConfig, type: 'http' | 'tcp', targets: () => readonly UpstreamTarget[], now: Clock) {
    this.#config = config;
    this.#type = type;
    this.#statuses = statusTable(config.expectedStatuses);
    this.#targets = targets;
    this.#now = now;
  }

  start(): void {
    this.#first = setImmediate(() => this.checkNow());
    this.#first.unref();
    this.#timer = setInterval(() => this.checkNow(), this.#config.interval);
    this.#timer.unref();
  }

  /** Probes every target that has no probe in flight. */
  checkNow(): void {
    if (this.#closed) return;
    for (const t of this.#targets()) if (!this.#inFlight.has(t) && !t.draining) this.#probe(t);
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    if (this.#first !== undefined) clearImmediate(this.#first);
    for (const probe of this.#inFlight.values()) probe.destroy();
    this.#inFlight.clear();
  }

  #probe(target: UpstreamTarget): void {
    let settled = false;
    const finish = (passed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      probe.destroy();
      this.#inFlight.delete(target);
      if (!this.#closed) recordCheck(target, passed, this.#config, this.#now);
    };
    const timer = setTimeout(() => finish(false), this.#config.timeout);
    timer.unref();
    const probe = this.#type === 'tcp' ? this.#tcp(target, finish) : this.#http(target, finish);
    this.#inFlight.set(target, probe);
  }

  #tcp(target: UpstreamTarget, finish: (passed: boolean) => void): { destroy(): void } {
    const socket = net.connect({ host: target.host, port: target.port });
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
    return socket;
  }

  #http(target: UpstreamTarget, finish: (passed: boolean) => void): { destroy(): void } {
    const mod = target.protocol === 'https:' ? https : http;
    const name = target.hostname ?? target.host;
    const hostHeader = this.#config.host ?? `${name.includes(':') ? `[${name}]` : name}:${target.port}`;
    const req = mod.request({
      host: target.host,
      port: target.port,
      path: this.#config.path,
      method: 'GET',
      agent: false,
      headers: { host: hostHeader, 'user-agent': 'portico-health-check', connection: 'close' },
      servername: net.isIP(name) === 0 ? name : undefined,
    });
    req.once('response', (res) => {
      res.resume();
      finish(this.#statuses[res.statusCode ?? 0] === 1);
    });
    req.once('error', () => finish(false));
    req.end();
    return req;
  }
}
