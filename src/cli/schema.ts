/** @module `portico schema`: prints the config file's JSON Schema, for editors and CI checks. */
import { configJsonSchema } from '../config/json-schema.ts';

/** Writes the JSON Schema (pretty JSON) to stdout; returns the exit code, 0. */
export function runSchema(): number {
  process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  return 0;
}
