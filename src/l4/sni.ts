/**
 * @module Reads the server name (SNI) from a TLS ClientHello without terminating TLS.
 *
 * Pure and incremental: give it every byte read so far; it answers `need-more`, `invalid`, or the name
 * (undefined when the client sent none). The ClientHello may be split over several TLS records (RFC 8446
 * §5.1) and over many TCP reads; both are handled. Only the first handshake message is read.
 */

export type SniResult =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'invalid'; readonly reason: string }
  /** `serverName` is lower case, without a trailing dot; undefined when the ClientHello has no SNI. */
  | { readonly kind: 'client-hello'; readonly serverName: string | undefined };

const NEED_MORE: SniResult = { kind: 'need-more' };
const RECORD_HANDSHAKE = 0x16;
const HANDSHAKE_CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const NAME_TYPE_HOST = 0x00;
/** Largest TLS record payload (2^14) plus what a compressed/legacy peer may add. */
const MAX_RECORD_PAYLOAD = 16384 + 2048;

function invalid(reason: string): SniResult {
  return { kind: 'invalid', reason };
}

/**
 * Parses the ClientHello at the start of `buf`. `maxBytes` bounds how much a caller will buffer: a hello
 * that needs more than that is `invalid` rather than `need-more`.
 */
export function parseClientHello(buf: Buffer, maxBytes = 16384): SniResult {
  // Gather the handshake bytes out of as many records as it takes.
  const fragments: Buffer[] = [];
  let handshakeBytes = 0;
  let needed = -1; // total handshake message length once its 4-byte header is known
  let offset = 0;
  while (needed === -1 || handshakeBytes < needed) {
    if (buf.length < offset + 5) return more(buf, maxBytes);
    if (buf[offset] !== RECORD_HANDSHAKE) return invalid('not a TLS handshake record');
    if (buf[offset + 1] !== 0x03) return invalid('not a TLS record version');
    const recordLength = buf.readUInt16BE(offset + 3);
    if (recordLength === 0 || recordLength > MAX_RECORD_PAYLOAD) return invalid('bad TLS record length');
    const available = Math.min(recordLength, buf.length - offset - 5);
    if (available < recordLength) {
      // A partial record still lets us learn the handshake length and fail early on oversize hellos.
      if (needed === -1 && handshakeBytes + available >= 4) {
        const head = Buffer.concat([...fragments, buf.subarray(offset + 5, offset + 5 + available)]);
        if (head[0] !== HANDSHAKE_CLIENT_HELLO) return invalid('first handshake message is not a ClientHello');
        if (4 + head.readUIntBE(1, 3) > maxBytes) return invalid('ClientHello larger than the peek limit');
      }
      return more(buf, maxBytes);
    }
    fragments.push(buf.subarray(offset + 5, offset + 5 + recordLength));
    handshakeBytes += recordLength;
    offset += 5 + recordLength;
    if (needed === -1 && handshakeBytes >= 4) {
      const head = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments);
      if (head[0] !== HANDSHAKE_CLIENT_HELLO) return invalid('first handshake message is not a ClientHello');
      needed = 4 + head.readUIntBE(1, 3);
      if (needed > maxBytes) return invalid('ClientHello larger than the peek limit');
    }
  }
  const hello = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments);
  return readServerName(hello.subarray(4, needed));
}

function more(buf: Buffer, maxBytes: number): SniResult {
  return buf.length >= maxBytes ? invalid('ClientHello larger than the peek limit') : NEED_MORE;
}

/** Walks a complete ClientHello body to the server_name extension. */
function readServerName(body: Buffer): SniResult {
  let p = 2 + 32; // legacy_version, random
  if (body.length < p + 1) return invalid('truncated ClientHello');
  p += 1 + body[p]!; // session id
  if (body.length < p + 2) return invalid('truncated ClientHello');
  p += 2 + body.readUInt16BE(p); // cipher suites
  if (body.length < p + 1) return invalid('truncated ClientHello');
  p += 1 + body[p]!; // compression methods
  if (p === body.length) return { kind: 'client-hello', serverName: undefined }; // no extensions (SSLv3 style)
  if (body.length < p + 2) return invalid('truncated ClientHello');
  const extEnd = p + 2 + body.readUInt16BE(p);
  if (extEnd > body.length) return invalid('extensions overrun the ClientHello');
  p += 2;
  while (p + 4 <= extEnd) {
    const type = body.readUInt16BE(p);
    const len = body.readUInt16BE(p + 2);
    p += 4;
    if (p + len > extEnd) return invalid('extension overruns the list');
    if (type === EXT_SERVER_NAME) return readNameList(body.subarray(p, p + len));
    p += len;
  }
  if (p !== extEnd) return invalid('trailing bytes in extensions');
  return { kind: 'client-hello', serverName: undefined };
}

function readNameList(ext: Buffer): SniResult {
  if (ext.length < 2) return invalid('empty server_name extension');
  const end = 2 + ext.readUInt16BE(0);
  if (end > ext.length) return invalid('server_name list overruns');
  let p = 2;
  while (p + 3 <= end) {
    const type = ext[p]!;
    const len = ext.readUInt16BE(p + 1);
    p += 3;
    if (p + len > end) return invalid('server name overruns');
    if (type === NAME_TYPE_HOST) {
      const name = hostName(ext, p, p + len);
      return name === undefined ? invalid('server name is not a DNS name') : { kind: 'client-hello', serverName: name };
    }
    p += len;
  }
  return { kind: 'client-hello', serverName: undefined };
}

/** ASCII letters, digits, `-`, `_` and `.`, lower-cased; a trailing dot is dropped (RFC 6066 §3). */
function hostName(buf: Buffer, start: number, end: number): string | undefined {
  if (end > start && buf[end - 1] === 0x2e) end--;
  if (end === start || end - start > 253) return undefined;
  for (let i = start; i < end; i++) {
    const c = buf[i]!;
    const ok =
      (c >= 0x61 && c <= 0x7a) ||
      (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x30 && c <= 0x39) ||
      c === 0x2d ||
      c === 0x2e ||
      c === 0x5f;
    if (!ok) return undefined;
  }
  return buf.toString('latin1', start, end).toLowerCase();
}
