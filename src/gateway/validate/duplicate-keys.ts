/**
 * @module Finds a member name repeated within one JSON object. `JSON.parse` keeps the last value of a repeated
 * name, while the raw body goes upstream, where a parser may keep the first: `{"role":"admin","role":"user"}`
 * would pass a schema that allows only "user" and reach the service as "admin" (RFC 8259 §4: names SHOULD
 * be unique, and implementations differ when they are not). So `validate` refuses such bodies.
 *
 * A single pass over text already known to be valid JSON, iterative (no recursion, so nesting depth costs only
 * memory), comparing names after unescaping (`"r\u006fle"` is `role`).
 */

interface Container {
  /** Member names seen so far; undefined for an array. */
  readonly names: Set<string> | undefined;
  /** The member name or element index being read: the container's segment of a pointer. */
  segment: string;
  index: number;
  expectName: boolean;
}

/** The JSON pointer (RFC 6901) of the first repeated member name in `text`, or undefined when there is none. */
export function firstDuplicateName(text: string): string | undefined {
  const stack: Container[] = [];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      const object = c === 0x7b;
      stack.push({ names: object ? new Set() : undefined, segment: object ? '' : '0', index: 0, expectName: object });
      i++;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
      i++;
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1]!;
      if (top.names !== undefined) top.expectName = true;
      else top.segment = String(++top.index);
      i++;
    } else if (c === 0x3a /* : */) {
      stack[stack.length - 1]!.expectName = false;
      i++;
    } else if (c === 0x22 /* " */) {
      const end = stringEnd(text, i);
      const top = stack[stack.length - 1];
      if (top?.names !== undefined && top.expectName) {
        const name = JSON.parse(text.slice(i, end)) as string;
        if (top.names.has(name)) return pointer(stack, name);
        top.names.add(name);
        top.segment = name;
      }
      i = end;
    } else {
      i++;
    }
  }
  return undefined;
}

/** The index just past the string literal that starts at `start` (its opening quote). */
function stringEnd(text: string, start: number): number {
  let i = start + 1;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === 0x5c /* \ */) i += 2;
    else if (c === 0x22) return i + 1;
    else i++;
  }
}

function pointer(stack: readonly Container[], name: string): string {
  let out = '';
  for (let k = 0; k < stack.length - 1; k++) out += `/${escapeSegment(stack[k]!.segment)}`;
  return `${out}/${escapeSegment(name)}`;
}

function escapeSegment(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}
