/**
 * @module PROXY protocol v1 (text) and v2 (binary): encode a header for a target, parse one from a downstream.
 *
 * Pure functions over Buffers (spec: haproxy.org/download/2.9/doc/proxy-protocol.txt). The parser is
 * incremental: give it everything read so far; it answers `need-more`, `invalid`, or the header and how
 * many bytes it used (the rest is the client's payload). TLVs in v2 are skipped.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { readIPv4, readIPv6, unmapIPv4, writeIPv4, writeIPv6 } from './ip.ts';

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface ProxyHeader {
  readonly version: 1 | 2;
  /** `local`: a health check or the proxy's own connection; the socket's real addresses apply. */
  readonly command: 'proxy' | 'local';
  readonly family: 'tcp4' | 'tcp6' | 'unknown';
  /** Present when command is `proxy` and the family is known. */
  readonly source?: Endpoint;
  readonly destination?: Endpoint;
}

export type ProxyParseResult =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'invalid'; readonly reason: string }
  | { readonly kind: 'header'; readonly header: ProxyHeader; readonly length: number };

/** The 12-byte v2 signature. */
export const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** Longest v1 line, CRLF included (spec §2.1). */
export const V1_MAX_LENGTH = 107;
/** Largest header we accept: v2 fixed part plus a generous TLV area. */
export const MAX_HEADER_LENGTH = 16 + 65535;

const NEED_MORE: ProxyParseResult = { kind: 'need-more' };

function prefixMatches(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length);
  for (let i = 0; i < n; i++) if (buf[i] !== sig[i]) return false;
  return true;
}

/**
 * True when `buf` begins like a PROXY header (v1 or v2). Used to reject untrusted peers that send one.
 * Fewer than 5 bytes never count: a client's first tiny write should not be taken for a header.
 */
export function looksLikeProxyHeader(buf: Buffer): boolean {
  if (buf.length < 5) return false;
  return prefixMatches(buf, V1_PREFIX) || prefixMatches(buf, V2_SIGNATURE);
}

/**
 * The verdict on a connection's first bytes from an untrusted peer: `yes` (a PROXY header), `no`, or
 * `maybe` when fewer than 5 bytes have come and they begin like one, so more must be read to decide
 * (a forged header split into small packets must not slip through).
 */
export function proxyHeaderStart(buf: Buffer): 'yes' | 'no' | 'maybe' {
  if (buf.length >= 5) return looksLikeProxyHeader(buf) ? 'yes' : 'no';
  return prefixMatches(buf, V1_PREFIX) || prefixMatches(buf, V2_SIGNATURE) ? 'maybe' : 'no';
}

/** Parses a v1 or v2 header at the start of `buf`. */
export function parseProxyHeader(buf: Buffer): ProxyParseResult {
  if (buf.length === 0) return NEED_MORE;
  if (buf[0] === 0x0d) {
    if (!prefixMatches(buf, V2_SIGNATURE)) return { kind: 'invalid', reason: 'bad v2 signature' };
    return buf.length < 16 ? NEED_MORE : parseV2(buf);
  }
  if (!prefixMatches(buf, V1_PREFIX)) return { kind: 'invalid', reason: 'no PROXY header' };
  return parseV1(buf);
}

function parseV1(buf: Buffer): ProxyParseResult {
  const limit = Math.min(buf.length, V1_MAX_LENGTH);
  let end = -1;
  for (let i = V1_PREFIX.length; i < limit - 1; i++) {
    if (buf[i] === 0x0d && buf[i + 1] === 0x0a) {
      end = i;
      break;
    }
  }
  if (end === -1) return buf.length >= V1_MAX_LENGTH ? { kind: 'invalid', reason: 'v1 line too long' } : NEED_MORE;
  const length = end + 2;
  const parts = buf.toString('latin1', V1_PREFIX.length, end).split(' ');
  if (parts[0] === 'UNKNOWN') {
    return { kind: 'header', length, header: { version: 1, command: 'proxy', family: 'unknown' } };
  }
  if (parts.length !== 5 || (parts[0] !== 'TCP4' && parts[0] !== 'TCP6')) {
    return { kind: 'invalid', reason: 'malformed v1 line' };
  }
  const [proto, src, dst, sport, dport] = parts as [string, string, string, string, string];
  const check = proto === 'TCP4' ? isIPv4 : isIPv6;
  const sp = parsePort(sport);
  const dp = parsePort(dport);
  if (!check(src) || !check(dst) || sp === -1 || dp === -1) return { kind: 'invalid', reason: 'bad v1 address' };
  return {
    kind: 'header',
    length,
    header: {
      version: 1,
      command: 'proxy',
      family: proto === 'TCP4' ? 'tcp4' : 'tcp6',
      source: { address: src, port: sp },
      destination: { address: dst, port: dp },
    },
  };
}

const PORT_RE = /^\d{1,5}$/;

function parsePort(text: string): number {
  if (!PORT_RE.test(text) || (text.length > 1 && text[0] === '0')) return -1;
  const n = Number(text);
  return n <= 65535 ? n : -1;
}

function parseV2(buf: Buffer): ProxyParseResult {
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return { kind: 'invalid', reason: 'unsupported v2 version' };
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return { kind: 'invalid', reason: 'unknown v2 command' };
  const fam = buf[13]!;
  const bodyLength = buf.readUInt16BE(14);
  const length = 16 + bodyLength;
  if (buf.length < length) return NEED_MORE;
  if (cmd === 0) return { kind: 'header', length, header: { version: 2, command: 'local', family: 'unknown' } };
  // Only STREAM transports are meaningful for a TCP proxy; UNSPEC and others carry no usable address.
  if (fam === 0x11) return parseV2Stream(buf, length, bodyLength, 4);
  if (fam === 0x21) return parseV2Stream(buf, length, bodyLength, 16);
  return { kind: 'header', length, header: { version: 2, command: 'proxy', family: 'unknown' } };
}

/** A v2 STREAM address block: source address, destination address, source port, destination port. */
function parseV2Stream(buf: Buffer, length: number, bodyLength: number, size: 4 | 16): ProxyParseResult {
  const v4 = size === 4;
  if (bodyLength < 2 * size + 4) return { kind: 'invalid', reason: v4 ? 'short v2 IPv4 block' : 'short v2 IPv6 block' };
  const read = v4 ? readIPv4 : readIPv6;
  const ports = 16 + 2 * size;
  return {
    kind: 'header',
    length,
    header: {
      version: 2,
      command: 'proxy',
      family: v4 ? 'tcp4' : 'tcp6',
      source: { address: read(buf, 16), port: buf.readUInt16BE(ports) },
      destination: { address: read(buf, 16 + size), port: buf.readUInt16BE(ports + 2) },
    },
  };
}

/** Both endpoints in one family: IPv4-mapped addresses are unmapped, and a mixed pair is mapped into IPv6. */
function normalisePair(source: Endpoint, destination: Endpoint): { src: string; dst: string; family: 0 | 4 | 6 } {
  let src = unmapIPv4(source.address);
  let dst = unmapIPv4(destination.address);
  const s = isIPv4(src) ? 4 : isIPv6(src) ? 6 : 0;
  const d = isIPv4(dst) ? 4 : isIPv6(dst) ? 6 : 0;
  if (s === 0 || d === 0) return { src, dst, family: 0 };
  if (s === d) return { src, dst, family: s };
  if (s === 4) src = `::ffff:${src}`;
  else dst = `::ffff:${dst}`;
  return { src, dst, family: 6 };
}

/** A v1 header line for a connection from `source` to `destination` (`PROXY UNKNOWN` if not IP). */
export function encodeProxyV1(source: Endpoint, destination: Endpoint): Buffer {
  const { src, dst, family } = normalisePair(source, destination);
  if (family === 0) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
  const proto = family === 4 ? 'TCP4' : 'TCP6';
  return Buffer.from(`PROXY ${proto} ${src} ${dst} ${source.port} ${destination.port}\r\n`, 'latin1');
}

/** A v2 header: PROXY command with addresses, or LOCAL when `source` is undefined (or not IP). */
export function encodeProxyV2(source?: Endpoint, destination?: Endpoint): Buffer {
  const pair = source !== undefined && destination !== undefined ? normalisePair(source, destination) : undefined;
  if (pair === undefined || pair.family === 0) {
    const out = Buffer.alloc(16);
    V2_SIGNATURE.copy(out, 0);
    out[12] = pair === undefined ? 0x20 : 0x21;
    out[13] = 0x00;
    return out;
  }
  const v4 = pair.family === 4;
  const body = v4 ? 12 : 36;
  const out = Buffer.alloc(16 + body);
  V2_SIGNATURE.copy(out, 0);
  out[12] = 0x21;
  out[13] = v4 ? 0x11 : 0x21;
  out.writeUInt16BE(body, 14);
  if (v4) {
    writeIPv4(pair.src, out, 16);
    writeIPv4(pair.dst, out, 20);
    out.writeUInt16BE(source!.port, 24);
    out.writeUInt16BE(destination!.port, 26);
  } else {
    writeIPv6(pair.src, out, 16);
    writeIPv6(pair.dst, out, 32);
    out.writeUInt16BE(source!.port, 48);
    out.writeUInt16BE(destination!.port, 50);
  }
  return out;
}
