/** @module Test bodies whose every byte depends on the body and its offset, and their digests. */
import { createHash } from 'node:crypto';

/** `size` printable bytes that depend on `seed` and on the position, so a byte from another body or offset shows. */
export function bodyOf(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = 0x20 + ((x >>> 0) % 90);
  }
  return out;
}

export function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Writes `body` to `res` in pieces of varied sizes (from 1000 + (seed % 7) × 9000 bytes, doubling, back to 1000
 * past 40 000) with back-pressure, then ends it: reads on the other side split the body anywhere.
 */
export function writeInPieces(res: import('node:http').ServerResponse, body: Buffer, seed: number): void {
  let at = 0;
  let step = 1000 + (seed % 7) * 9000;
  const pump = (): void => {
    while (at < body.length) {
      const end = Math.min(body.length, at + step);
      step = step > 40_000 ? 1000 : step * 2;
      const ok = res.write(body.subarray(at, end));
      at = end;
      if (!ok) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}

/**
 * Writes `chunk` `count` times to `res` with back-pressure, then ends it; stops when the response is
 * destroyed. `onWrite` hears each chunk's length as it is written (to count what left the upstream).
 */
export function writeRepeated(
  res: import('node:http').ServerResponse,
  chunk: Buffer,
  count: number,
  onWrite: (bytes: number) => void = () => {},
): void {
  let n = 0;
  const pump = (): void => {
    while (n < count && !res.destroyed) {
      n++;
      onWrite(chunk.length);
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}
