/** @module Fast non-cryptographic string hashing for consistent hashing (FNV-1a, then a murmur3 finaliser). */

/** 32-bit unsigned hash of `text`; `seed` gives independent hash functions (Maglev needs two). */
export function hash32(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // FNV alone clusters on short keys that differ in their last characters; the finaliser spreads them.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
