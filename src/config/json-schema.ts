/**
 * @module The JSON Schema of the config file (what a user writes, before defaults and unit parsing), for
 * editors: point the YAML language server at the output of `portico schema`.
 */
import { z } from 'zod';
import { configSchema } from './schema.ts';

/** JSON Schema (draft 2020-12) of the YAML a user writes. Durations and sizes accept a string or an integer. */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    ...(allowReferences(schema) as Record<string, unknown>),
    title: 'Portico configuration',
    description: 'A Portico config file (portico.yaml). See docs/configuration.md.',
  };
}

// `${VAR}` anywhere, or a whole `file:` value: the loader substitutes them before it checks the value.
const REFERENCE = '\\$\\{|^file:';

/**
 * A string with a `pattern` or `format` also accepts a reference, so an editor does not flag
 * `address: "127.0.0.1:${PORT}"`, which the loader accepts.
 */
function allowReferences(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(allowReferences);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) out[key] = allowReferences(value);
  if (out.type !== 'string') return out;
  if (typeof out.pattern === 'string') out.pattern = `(?:${out.pattern})|${REFERENCE}`;
  if (out.format === undefined) return out;
  const { format, ...rest } = out;
  return { ...rest, anyOf: [{ format }, { pattern: REFERENCE }] };
}
