/**
 * @module Raw query-string helpers that keep untouched parameters byte for byte (URLSearchParams would
 * re-encode them: `%20` → `+`), used by templates (`{{request.query.x}}`) and query transforms.
 */

/** Decodes one `application/x-www-form-urlencoded` component; a malformed escape yields the raw text. */
export function decodeComponent(raw: string): string {
  const text = raw.includes('+') ? raw.replaceAll('+', ' ') : raw;
  if (!text.includes('%')) return text;
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The decoded name of a raw `name=value` pair. */
export function pairName(pair: string): string {
  const eq = pair.indexOf('=');
  return decodeComponent(eq === -1 ? pair : pair.slice(0, eq));
}

/** The decoded value of a raw `name=value` pair ('' when there is no `=`). */
export function pairValue(pair: string): string {
  const eq = pair.indexOf('=');
  return eq === -1 ? '' : decodeComponent(pair.slice(eq + 1));
}

/** First value of `name` in the raw query, decoded; undefined when absent. */
export function queryParam(query: string, name: string): string | undefined {
  if (query === '') return undefined;
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end === -1) end = query.length;
    if (end > start) {
      const pair = query.slice(start, end);
      if (pairName(pair) === name) return pairValue(pair);
    }
    start = end + 1;
  }
  return undefined;
}

/** Splits a raw query into its non-empty raw pairs. */
export function splitQuery(query: string): string[] {
  if (query === '') return [];
  return query.split('&').filter((pair) => pair !== '');
}

/** Encodes a query component (spaces as %20, which every server accepts). */
export function encodeComponent(value: string): string {
  return encodeURIComponent(value);
}
