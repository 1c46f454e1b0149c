/**
 * @module X-Forwarded-For / -Proto / -Host and Forwarded (RFC 7239) on requests sent upstream.
 *
 * A peer in `trustedProxies` is another proxy whose forwarding headers we extend; from anyone else those
 * headers are lies we replace, so a client cannot forge its address to a backend or a rate limiter.
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface ForwardingContext {
  /** Address of the TCP peer, IPv4-mapped IPv6 already unwrapped. */
  readonly peer: string;
  readonly peerTrusted: boolean;
  readonly proto: 'http' | 'https';
  /** The Host the client asked for. */
  readonly host: string | undefined;
}

/** `::ffff:1.2.3.4` → `1.2.3.4`, so logs and headers show the address people expect. */
export function unmapAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/**
 * RFC 7239 §6: IPv6 node names are quoted and bracketed; a peer whose address is gone (the socket closed
 * before the request was handled) is `unknown` (§6.2), never an empty value.
 */
function forwardedNode(address: string): string {
  if (address === '') return 'unknown';
  return address.includes(':') ? `"[${address}]"` : address;
}

/**
 * The `Via` entry Portico adds to a request it forwards (RFC 9110 §7.6.3): the protocol it was received with
 * (`1.0`, `1.1`, `2`) and `portico` as the pseudonym, appended to the client's own list.
 */
export function addVia(headers: IncomingHttpHeaders, major: number, minor: number): void {
  const entry = major === 2 ? '2 portico' : minor === 0 ? '1.0 portico' : '1.1 portico';
  const prev = headers.via;
  headers.via = prev ? `${prev}, ${entry}` : entry;
}

/** Sets the forwarding headers on `out` (the header object sent upstream), reading the client's from `incoming`. */
export function setForwardingHeaders(
  out: IncomingHttpHeaders,
  incoming: IncomingHttpHeaders,
  ctx: ForwardingContext,
): void {
  dropUnderscoreAliases(out);
  const xff = incoming['x-forwarded-for'];
  out['x-forwarded-for'] = ctx.peerTrusted && xff ? `${xff}, ${ctx.peer}` : ctx.peer;
  const xfp = incoming['x-forwarded-proto'];
  out['x-forwarded-proto'] = ctx.peerTrusted && xfp ? xfp : ctx.proto;
  const xfh = incoming['x-forwarded-host'];
  const host = ctx.peerTrusted && xfh ? xfh : ctx.host;
  if (host) out['x-forwarded-host'] = host;
  else delete out['x-forwarded-host'];
  let element = `for=${forwardedNode(ctx.peer)};proto=${ctx.proto}`;
  if (ctx.host) element += `;host="${ctx.host.replace(/["\\]/g, '')}"`;
  const fwd = incoming.forwarded;
  out.forwarded = ctx.peerTrusted && fwd ? `${fwd}, ${element}` : element;
}

/** The forwarding fields Portico sets, under the name CGI-style servers give them (`_` for `-`). */
const ALIASES = new Set(['x_forwarded_for', 'x_forwarded_proto', 'x_forwarded_host']);

/**
 * Removes `X_Forwarded_For` and the like (any mix of `_` and `-`): CGI, WSGI, Rack and PHP servers read
 * `-` and `_` alike (both become `HTTP_X_FORWARDED_FOR`), so a client's alias could stand beside, or
 * replace, the value Portico set. nginx drops every field with `_` in its name by default
 * (`underscores_in_headers off`); only these aliases are dropped here, other names with `_` pass.
 */
function dropUnderscoreAliases(headers: IncomingHttpHeaders): void {
  for (const name in headers) {
    if (name.length > 10 && name.includes('_') && ALIASES.has(name.replace(/-/g, '_'))) delete headers[name];
  }
}

/**
 * The address of the client as best known: the peer, or, when the peer is a trusted proxy, the right-most
 * X-Forwarded-For entry that is not itself trusted (the left-most entries are client-controlled).
 */
export function clientAddress(
  peer: string,
  incoming: IncomingHttpHeaders,
  peerTrusted: boolean,
  isTrusted: (ip: string) => boolean,
): string {
  if (!peerTrusted) return peer;
  const xff = incoming['x-forwarded-for'];
  if (typeof xff !== 'string' || xff === '') return peer;
  const hops = xff.split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!.trim();
    if (hop !== '' && !isTrusted(hop)) return hop;
  }
  return hops[0]!.trim() || peer;
}
