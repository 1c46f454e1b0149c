/**
 * @module Content-coding negotiation from Accept-Encoding (RFC 9110 §12.5.3): q-values, `*`, `identity`,
 * `q=0` refusals, `x-gzip` as gzip; ties go to the server's preference order.
 */
import { type CompressOptions, MEMO_LIMIT } from './options.ts';
import type { Encoding } from './schema.ts';

/** The encoding to use, or undefined to send the response as is. */
export function negotiate(
  acceptEncoding: string | readonly string[] | undefined,
  options: CompressOptions,
): Encoding | undefined {
  if (acceptEncoding === undefined) return undefined;
  const text = typeof acceptEncoding === 'string' ? acceptEncoding : acceptEncoding.join(',');
  if (text.length === 0) return undefined;
  const memo = options.memo;
  const known = memo.get(text);
  if (known !== undefined) return known ?? undefined;
  const chosen = choose(text, options.encodings);
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(text, chosen ?? null);
  return chosen;
}

function choose(text: string, encodings: readonly Encoding[]): Encoding | undefined {
  const q = parseQValues(text);
  const star = q.get('*');
  let best: Encoding | undefined;
  let bestQ = 0;
  for (const encoding of encodings) {
    const weight = q.get(encoding) ?? (encoding === 'gzip' ? q.get('x-gzip') : undefined) ?? star ?? 0;
    if (weight > bestQ) {
      best = encoding;
      bestQ = weight;
    }
  }
  // A client that ranks identity above every offered coding gets identity (only when it lists identity).
  const identity = q.get('identity');
  return best !== undefined && (identity === undefined || identity <= bestQ) ? best : undefined;
}

/** `gzip;q=0.8, br` → {gzip: 0.8, br: 1}. Malformed weights count as 0 (a refusal is the safe reading). */
export function parseQValues(text: string): Map<string, number> {
  const out = new Map<string, number>();
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf(',', start);
    if (end === -1) end = text.length;
    const item = text.slice(start, end);
    start = end + 1;
    const semi = item.indexOf(';');
    const coding = (semi === -1 ? item : item.slice(0, semi)).trim().toLowerCase();
    if (coding.length === 0) continue;
    let weight = 1;
    if (semi !== -1) {
      const params = item
        .slice(semi + 1)
        .trim()
        .toLowerCase();
      if (params.startsWith('q=')) {
        const value = Number(params.slice(2).trim());
        weight = Number.isFinite(value) && value >= 0 && value <= 1 ? value : 0;
      }
    }
    if (!out.has(coding)) out.set(coding, weight);
  }
  return out;
}
