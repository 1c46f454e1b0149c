/**
 * @module Reads the keys a zod schema allows at a given path, for "did you mean" on unknown keys.
 * Walks zod 4's public `_zod.def` structure; unions contribute the keys of every branch.
 */
import type { ConfigPath } from './positions.ts';

interface Def {
  type: string;
  shape?: Record<string, unknown>;
  innerType?: unknown;
  in?: unknown;
  options?: unknown[];
  element?: unknown;
  valueType?: unknown;
  getter?: () => unknown;
  left?: unknown;
  right?: unknown;
}

function defOf(schema: unknown): Def | undefined {
  return (schema as { _zod?: { def?: Def } } | undefined)?._zod?.def;
}

/** Object schemas reachable at `path` (several when unions are on the way). */
function objectsAt(schema: unknown, path: ConfigPath, depth = 0): Def[] {
  const def = defOf(schema);
  if (def === undefined || depth > 64) return [];
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
    case 'nonoptional':
      return objectsAt(def.innerType, path, depth + 1);
    case 'pipe':
      return objectsAt(def.in, path, depth + 1);
    case 'lazy':
      return def.getter ? objectsAt(def.getter(), path, depth + 1) : [];
    case 'union':
      return (def.options ?? []).flatMap((o) => objectsAt(o, path, depth + 1));
    case 'intersection':
      return [...objectsAt(def.left, path, depth + 1), ...objectsAt(def.right, path, depth + 1)];
    default:
      break;
  }
  if (path.length === 0) return def.type === 'object' ? [def] : [];
  const [head, ...rest] = path;
  if (def.type === 'object') {
    const child = def.shape?.[String(head)];
    return child === undefined ? [] : objectsAt(child, rest, depth + 1);
  }
  if (def.type === 'array') return objectsAt(def.element, rest, depth + 1);
  if (def.type === 'record') return objectsAt(def.valueType, rest, depth + 1);
  return [];
}

/** The keys `schema` accepts in the object at `path`; empty when the path leads to no object. */
export function knownKeysAt(schema: unknown, path: ConfigPath): string[] {
  const keys = new Set<string>();
  for (const def of objectsAt(schema, path)) for (const key of Object.keys(def.shape ?? {})) keys.add(key);
  return [...keys];
}
