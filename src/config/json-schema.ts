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
    ...schema,
    title: 'Portico configuration',
    description: 'A Portico config file (portico.yaml). See docs/configuration.md.',
  };
}
