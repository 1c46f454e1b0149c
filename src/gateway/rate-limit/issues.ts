/** @module zod issues → the `{ path, message }` list a PolicyFactory's `parse` returns. */
import type { z } from 'zod';

export type ParseResult<C> = { ok: true; config: C } | { ok: false; issues: { path: string; message: string }[] };

function pathOf(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

/** Runs `schema` on `raw` and reports every issue with a path relative to the policy object. */
export function parseWith<S extends z.ZodType>(schema: S, raw: unknown): ParseResult<z.output<S>> {
  const r = schema.safeParse(raw);
  if (r.success) return { ok: true, config: r.data };
  return { ok: false, issues: r.error.issues.map((i) => ({ path: pathOf(i.path), message: i.message })) };
}
