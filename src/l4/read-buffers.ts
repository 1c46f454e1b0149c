/**
 * @module Read buffers for target sockets (net.Socket's `onread` option), so that reading a target costs no
 * allocation per read and a bulk transfer reads up to BIG bytes per system call instead of 64 KiB.
 *
 * Every target socket starts on the one SHARED buffer: reads are handled one at a time on this thread, and
 * whatever lands in SHARED is copied out before the callback returns, so a connection that is idle or moves
 * little data holds no buffer of its own. A read that fills SHARED marks a bulk transfer: the connection
 * takes a private BIG buffer (zero copy; reading pauses while a write from it is pending) and gives it back
 * after the first read that does not fill it, or when the connection ends.
 */

/** Size of the shared buffer: what one read takes before a connection counts as bulk. */
export const SHARED_SIZE = 64 * 1024;
/** Size of a private buffer: larger reads mean fewer system calls per MB (64 KiB → 256 KiB halves the CPU). */
export const BIG_SIZE = 256 * 1024;
/** Private buffers kept for reuse; more are left to the garbage collector. */
const MAX_FREE = 16;

export const SHARED: Buffer = Buffer.allocUnsafeSlow(SHARED_SIZE);
const free: Buffer[] = [];

/** Copies up to this size are cut from a slab (as Buffer.allocUnsafe does, minus its per-slab bookkeeping). */
const SLAB_CHUNK_MAX = 8 * 1024;
const SLAB_SIZE = 128 * 1024;
let slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
let slabUsed = 0;

/** A copy of SHARED's first `n` bytes, which the caller may keep (a pending write). */
export function copyShared(n: number): Buffer {
  if (n > SLAB_CHUNK_MAX) {
    const out = Buffer.allocUnsafeSlow(n);
    SHARED.copy(out, 0, 0, n);
    return out;
  }
  if (slabUsed + n > SLAB_SIZE) {
    // The old slab lives on until the last chunk cut from it is written and dropped.
    slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
    slabUsed = 0;
  }
  const start = slabUsed;
  SHARED.copy(slab, start, 0, n);
  slabUsed = (start + n + 7) & ~7;
  return slab.subarray(start, start + n);
}

/** A private buffer; give it back with `releaseBig` once nothing (no read, no pending write) uses it. */
export function takeBig(): Buffer {
  return free.pop() ?? Buffer.allocUnsafeSlow(BIG_SIZE);
}

export function releaseBig(buf: Buffer): void {
  if (free.length < MAX_FREE) free.push(buf);
}
