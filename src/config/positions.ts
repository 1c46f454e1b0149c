/**
 * @module Maps a path inside the config (`['routes', 2, 'upstream']`) to its text form (`routes[2].upstream`)
 * and to the line and column of its node in the YAML source, so every issue points at the right spot.
 */
import { type Document, isAlias, isMap, isNode, isPair, isScalar, isSeq, type LineCounter, type Node } from 'yaml';

export type ConfigPath = readonly PropertyKey[];

export interface Position {
  readonly line: number;
  readonly column: number;
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `routes[2].upstream`, `policies.jwt.type`; odd keys are quoted: `match.headers["x y"]`. */
export function formatPath(path: ConfigPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const key = String(seg);
      if (PLAIN_KEY.test(key)) out += out === '' ? key : `.${key}`;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

/** Finds nodes by path in one parsed document. Built once per load. */
export class PositionFinder {
  readonly #doc: Document;
  readonly #lines: LineCounter;

  constructor(doc: Document, lines: LineCounter) {
    this.#doc = doc;
    this.#lines = lines;
  }

  /** Line and column (1-based) of a character offset. */
  at(offset: number): Position {
    const { line, col } = this.#lines.linePos(offset);
    return { line, column: col };
  }

  /**
   * Position of the node at `path`: its value, or its key when `target` is `key` (unknown or invalid keys).
   * A path that does not exist (a missing required key) resolves to the nearest parent that does.
   */
  find(path: ConfigPath, target: 'value' | 'key' = 'value'): Position {
    let node: unknown = this.#doc.contents;
    let keyNode: unknown;
    let fallback = 0;
    for (let i = 0; i < path.length; i++) {
      node = this.#deref(node);
      const start = rangeStart(node);
      if (start !== undefined) fallback = start;
      const seg = path[i];
      keyNode = undefined;
      let next: unknown;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && keyText(p.key) === String(seg));
        if (pair === undefined) return this.at(fallback);
        keyNode = pair.key;
        // `key:` with nothing after it has a null value node (or none); point at the key then.
        next = pair.value ?? pair.key;
      } else if (isSeq(node) && typeof seg === 'number') {
        next = node.items[seg];
        if (next === undefined) return this.at(fallback);
      } else return this.at(fallback);
      node = next;
    }
    const want = target === 'key' && keyNode !== undefined ? keyNode : this.#deref(node);
    const start = rangeStart(want) ?? rangeStart(keyNode);
    return this.at(start ?? fallback);
  }

  #deref(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.#doc) : node;
  }
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  if (key === null || key === undefined) return undefined;
  return isNode(key) ? undefined : String(key);
}

function rangeStart(node: unknown): number | undefined {
  if (!isNode(node)) return undefined;
  return (node as Node).range?.[0];
}
