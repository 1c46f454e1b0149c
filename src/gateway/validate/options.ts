/**
 * @module Options of the `validate` policy (zod, strict). Each schema is compiled here once as a check, so
 * an invalid schema or an unknown keyword or format is a config error at its path.
 */
import { z } from 'zod';
import { size } from '../../config/primitives.ts';
import { compileSchema, type Draft, lowerCaseHeaderSchema } from './schemas.ts';

export const DEFAULT_MAX_BODY = 1024 * 1024;
export const DEFAULT_BODY_METHODS = ['POST', 'PUT', 'PATCH'] as const;

const jsonSchema = z.union([z.record(z.string(), z.unknown()), z.boolean()], {
  error: 'expected a JSON Schema (a map)',
});

function checkSchema(
  schema: object | boolean | undefined,
  draft: Draft,
  coerce: boolean,
  path: string,
  ctx: z.RefinementCtx,
): void {
  if (schema === undefined) return;
  try {
    compileSchema(schema, draft, coerce);
  } catch (error) {
    ctx.addIssue({ code: 'custom', path: [path], message: `invalid JSON Schema: ${(error as Error).message}` });
  }
}

export const validateOptions = z
  .strictObject({
    type: z.literal('validate').optional(),
    /** JSON Schema dialect: `2020-12` (default) or `07`. */
    draft: z.enum(['2020-12', '07']).default('2020-12'),
    /** Schema of the JSON request body, checked for `bodyMethods`. */
    body: jsonSchema.optional(),
    /** Schema of the query as an object of strings (repeated names: lists); types are coerced. */
    query: jsonSchema.optional(),
    /** Schema of the request headers (names lower-cased); types are coerced. */
    headers: jsonSchema.transform(lowerCaseHeaderSchema).optional(),
    /** Methods whose body is validated (others carry none); an empty body there is a violation. */
    bodyMethods: z
      .array(z.string().min(1))
      .min(1)
      .default([...DEFAULT_BODY_METHODS]),
    /** Cap on the buffered body (only buffered when `body` is set). Over it: 413. */
    maxBodySize: size.default(DEFAULT_MAX_BODY),
    /** At most this many violations are listed in a reply. */
    maxErrors: z.number().int().min(1).max(1000).default(50),
  })
  .superRefine((o, ctx) => {
    if (o.body === undefined && o.query === undefined && o.headers === undefined) {
      ctx.addIssue({ code: 'custom', message: 'validate needs a body, query or headers schema' });
    }
    checkSchema(o.body, o.draft, false, 'body', ctx);
    checkSchema(o.query, o.draft, true, 'query', ctx);
    checkSchema(o.headers as object | boolean | undefined, o.draft, true, 'headers', ctx);
  });

export type ValidateOptions = z.output<typeof validateOptions>;
