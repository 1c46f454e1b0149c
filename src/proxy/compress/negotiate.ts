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

/**
 * `gzip;q=0.8, br` → {gzip: 0.8, br: 1}. Codings and the `q` parameter are case-insensitive; a weight that
 * is not a qvalue (`0`–`1` with at most three decimals, RFC 9110 §12.4.2: `q=2`, `q=0.0001`, `q=abc`) counts
 * as 0, a refusal being the safe reading. The first mention of a coding wins.
 */
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
    const weight = semi === -1 ? 1 : weightOf(item.slice(semi + 1));
    if (!out.has(coding)) out.set(coding, weight);
  }
  return out;
}

const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/;

/** The `q` of a member's parameters (`;q=0.5`); 1 without one. */
function weightOf(params: string): number {
  for (const param of params.split(';')) {
    const p = param.trim();
    if (p.length < 2 || (p.charCodeAt(0) | 0x20) !== 0x71 /* q */ || p.charCodeAt(1) !== 0x3d /* = */) continue;
    const value = p.slice(2);
    return QVALUE.test(value) ? Number(value) : 0;
  }
  return 1;
}
