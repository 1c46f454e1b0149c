/** @module "Did you mean …?" suggestions for misspelt keys and names in the config file. */

/** Edit distance (insert, delete, substitute), bounded work: both strings are short config words. */
export function levenshtein(a: string, b: string): number {
  if (a === b) return 0;
  if (a.length === 0) return b.length;
  if (b.length === 0) return a.length;
  let prev = new Array<number>(b.length + 1);
  let curr = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    curr[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      curr[j] = Math.min(prev[j]! + 1, curr[j - 1]! + 1, prev[j - 1]! + cost);
    }
    [prev, curr] = [curr, prev];
  }
  return prev[b.length]!;
}

/** `max_header-Size` and `maxHeaderSize` are the same word to a human. */
function fold(word: string): string {
  return word.replace(/[-_]/g, '').toLowerCase();
}

/**
 * The closest candidate to `input`: same word up to case and `-`/`_`, a prefix either way, or within edit
 * distance 2. Undefined when nothing is close, so a wild guess is never offered.
 */
export function suggest(input: string, candidates: Iterable<string>): string | undefined {
  const folded = fold(input);
  let best: string | undefined;
  let bestScore = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    if (candidate === input) continue;
    const c = fold(candidate);
    let score: number;
    if (c === folded) score = 0;
    else {
      const distance = levenshtein(folded, c);
      if (distance <= 2) score = distance;
      else if (Math.min(c.length, folded.length) >= 2 && (c.startsWith(folded) || folded.startsWith(c))) score = 3;
      else continue;
    }
    if (score < bestScore) {
      bestScore = score;
      best = candidate;
    }
  }
  return best;
}

/** ` (did you mean "x"?)` or an empty string, ready to append to a message. */
export function didYouMean(input: string, candidates: Iterable<string>): string {
  const s = suggest(input, candidates);
  return s === undefined ? '' : ` (did you mean "${s}"?)`;
}
