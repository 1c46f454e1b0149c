/**
 * @module Compiles listener settings into the per-generation `Plan` a session reads: CIDR lists become a
 * BlockList, SNI routes a router, certificates secure contexts. Runs at startup and on reload only;
 * throws on invalid settings so a bad reload keeps the old plan.
 */
import { X509Certificate } from 'node:crypto';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Pool } from '../upstream/types.ts';
import type { CurrentPlan } from './server.ts';
import type { Front, Plan } from './session.ts';
import { createSniRouter, type SniRouter } from './sni-router.ts';
import type { L4CommonSettings, TcpSettings, TlsCertificate, TlsSettings } from './types.ts';

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_HELLO_BYTES = 16 * 1024;
const CN_RE = /(?:^|\n)CN=([^\n]+)/;

/** `10.0.0.0/8`, `::1`, `fd00::/8` → a BlockList. Throws on anything else. */
export function compileTrusted(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of cidrs) {
    const slash = entry.indexOf('/');
    const ip = slash === -1 ? entry : entry.slice(0, slash);
    const family = isIPv4(ip) ? 'ipv4' : isIPv6(ip) ? 'ipv6' : undefined;
    if (family === undefined) throw new Error(`not an IP address or CIDR: "${entry}"`);
    if (slash === -1) {
      list.addAddress(ip, family);
      continue;
    }
    const bits = Number(entry.slice(slash + 1));
    const max = family === 'ipv4' ? 32 : 128;
    if (!Number.isInteger(bits) || bits < 0 || bits > max) throw new Error(`bad prefix length in "${entry}"`);
    list.addSubnet(ip, bits, family);
    // Dual-stack sockets see IPv4 peers as ::ffff:a.b.c.d; trust those too.
    if (family === 'ipv4') list.addSubnet(`::ffff:${ip}`, 96 + bits, 'ipv6');
  }
  return list;
}

function basePlan(name: string, s: L4CommonSettings, front: Front): CurrentPlan {
  const plan: Plan = {
    listener: name,
    log: s.log,
    connectTimeoutMs: s.connectTimeoutMs,
    idleTimeoutMs: s.idleTimeoutMs,
    handshakeTimeoutMs: s.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
    trusted: s.proxyProtocol?.accept !== undefined ? compileTrusted(s.proxyProtocol.accept.trusted) : undefined,
    send: s.proxyProtocol?.send,
    front,
  };
  return { plan, maxConnections: s.maxConnections, log: s.log };
}

export function compileTcp(name: string, s: TcpSettings): CurrentPlan {
  return basePlan(name, s, { kind: 'tcp', pool: s.pool });
}

/** DNS names a certificate is valid for: its SAN DNS entries, else its subject CN. */
export function certificateNames(cert: string | Buffer): string[] {
  const x = new X509Certificate(cert);
  const names: string[] = [];
  for (const part of (x.subjectAltName ?? '').split(',')) {
    const p = part.trim();
    if (p.startsWith('DNS:')) names.push(p.slice(4).toLowerCase());
  }
  if (names.length === 0) {
    const cn = CN_RE.exec(x.subject);
    if (cn?.[1] !== undefined) names.push(cn[1].toLowerCase());
  }
  return names;
}

function compileCertificates(certs: readonly TlsCertificate[]): {
  router: SniRouter<SecureContext>;
  first: SecureContext;
} {
  const contexts = certs.map((c) => ({ names: certificateNames(c.cert), value: createSecureContext(c) }));
  const first = contexts[0]!.value;
  return { router: createSniRouter(contexts, first), first };
}

export function compileTls(name: string, s: TlsSettings): CurrentPlan {
  const routes = s.sni.map((r) => ({ names: r.names, value: r.pool }));
  const router = createSniRouter<() => Pool>(routes, s.defaultPool);
  let front: Front;
  if (s.mode === 'passthrough') {
    front = { kind: 'passthrough', router, maxHelloBytes: s.maxClientHelloBytes ?? DEFAULT_MAX_HELLO_BYTES };
  } else {
    if (s.certificates === undefined || s.certificates.length === 0) {
      throw new Error(`listener ${name}: tls terminate needs at least one certificate`);
    }
    const certs = compileCertificates(s.certificates);
    const sniCallback = (serverName: string, cb: (err: Error | null, ctx?: SecureContext) => void): void =>
      cb(null, certs.router.match(serverName.toLowerCase()));
    front = { kind: 'terminate', router, sniCallback, defaultContext: certs.first };
  }
  return basePlan(name, s, front);
}
