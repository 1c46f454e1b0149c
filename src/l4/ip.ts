/**
 * @module Text ⇄ binary IP addresses for the PROXY protocol v2 (node:net exposes no inet_pton/inet_ntop).
 *
 * Pure functions. Text output follows RFC 5952 (lower case, longest zero run compressed) so that it equals
 * what `socket.remoteAddress` reports for the same address.
 */
import { isIPv4, isIPv6 } from 'node:net';

const MAPPED_PREFIX = '::ffff:';

/** `::ffff:1.2.3.4` → `1.2.3.4`; anything else unchanged. Dual-stack sockets report IPv4 peers this way. */
export function unmapIPv4(address: string): string {
  if (address.length > MAPPED_PREFIX.length && address.toLowerCase().startsWith(MAPPED_PREFIX)) {
    const tail = address.slice(MAPPED_PREFIX.length);
    if (isIPv4(tail)) return tail;
  }
  return address;
}

/** Writes an IPv4 address as 4 bytes at `offset`. The caller has checked `isIPv4(text)`. */
export function writeIPv4(text: string, out: Buffer, offset: number): void {
  let part = 0;
  let value = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      out[offset + part++] = value;
      value = 0;
    } else value = value * 10 + (c - 48);
  }
  out[offset + part] = value;
}

/** Writes an IPv6 address (with `::` and an optional dotted IPv4 tail) as 16 bytes at `offset`. */
export function writeIPv6(text: string, out: Buffer, offset: number): void {
  out.fill(0, offset, offset + 16);
  const zone = text.indexOf('%');
  const addr = zone === -1 ? text : text.slice(0, zone);
  const gap = addr.indexOf('::');
  const head = gap === -1 ? addr : addr.slice(0, gap);
  const tail = gap === -1 ? '' : addr.slice(gap + 2);
  const headWords = head === '' ? [] : head.split(':');
  const tailWords = tail === '' ? [] : tail.split(':');
  const words: number[] = [];
  const pushWords = (list: string[], into: number[]): void => {
    for (const w of list) {
      if (w.includes('.')) {
        const b = Buffer.alloc(4);
        writeIPv4(w, b, 0);
        into.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
      } else into.push(Number.parseInt(w, 16));
    }
  };
  pushWords(headWords, words);
  const back: number[] = [];
  pushWords(tailWords, back);
  const zeros = 8 - words.length - back.length;
  for (let i = 0; i < zeros; i++) words.push(0);
  words.push(...back);
  for (let i = 0; i < 8; i++) out.writeUInt16BE(words[i]!, offset + i * 2);
}

/** Reads 4 bytes as dotted IPv4 text. */
export function readIPv4(buf: Buffer, offset: number): string {
  return `${buf[offset]}.${buf[offset + 1]}.${buf[offset + 2]}.${buf[offset + 3]}`;
}

/** Reads 16 bytes as RFC 5952 IPv6 text (IPv4-mapped addresses keep their dotted tail, as Node prints them). */
export function readIPv6(buf: Buffer, offset: number): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push(buf.readUInt16BE(offset + i * 2));
  if (words[0] === 0 && words[1] === 0 && words[2] === 0 && words[3] === 0 && words[4] === 0 && words[5] === 0xffff) {
    return `::ffff:${readIPv4(buf, offset + 12)}`;
  }
  // Longest run of two or more zero words is written as "::" (first one on ties).
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** 4 for IPv4, 6 for IPv6, 0 otherwise (after unmapping IPv4-mapped IPv6). */
export function ipFamily(address: string): 0 | 4 | 6 {
  if (isIPv4(address)) return 4;
  if (isIPv6(address)) return 6;
  return 0;
}
