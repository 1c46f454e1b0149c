/** @module Reading one cookie from a Cookie header. */

/** The value of cookie `name` in a Cookie header, without allocating for other cookies. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  let from = 0;
  while (from < header.length) {
    const at = header.indexOf(name, from);
    if (at < 0) return undefined;
    const eq = at + name.length;
    const before = at === 0 ? ' ' : header[at - 1];
    if (header[eq] === '=' && (before === ' ' || before === ';')) {
      const end = header.indexOf(';', eq);
      return header.slice(eq + 1, end < 0 ? undefined : end).trim();
    }
    from = eq;
  }
  return undefined;
}
