/**
 * @module Compiles the validate policy's JSON Schemas with ajv (draft 2020-12 by default, or draft-07).
 * Body schemas validate as written; query and header schemas coerce the strings they receive
 * (`"5"` → 5 for `type: integer`, one value → a list for `type: array`).
 */
import { Ajv, type Options, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { FORMATS } from './formats.ts';

export type Draft = '2020-12' | '07';

export function compileSchema(schema: object | boolean, draft: Draft, coerce: boolean): ValidateFunction {
  const options: Options = {
    allErrors: true,
    strictSchema: true, // an unknown keyword is a config error, not a silently skipped check
    strictTypes: false,
    strictTuples: false,
    logger: false,
    formats: FORMATS,
    coerceTypes: coerce ? 'array' : false,
  };
  const ajv = draft === '07' ? new Ajv(options) : new Ajv2020(options);
  return ajv.compile(schema);
}

/** Header names arrive lower-case: lower-case the top-level `properties` and `required` of a header schema. */
export function lowerCaseHeaderSchema(schema: unknown): unknown {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return schema;
  const out: Record<string, unknown> = { ...(schema as Record<string, unknown>) };
  const properties = out.properties;
  if (properties !== null && typeof properties === 'object' && !Array.isArray(properties)) {
    out.properties = Object.fromEntries(Object.entries(properties).map(([k, v]) => [k.toLowerCase(), v]));
  }
  if (Array.isArray(out.required)) {
    out.required = out.required.map((name) => (typeof name === 'string' ? name.toLowerCase() : name));
  }
  return out;
}
