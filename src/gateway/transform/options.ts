/**
 * @module Options of the `transform` policy (zod, strict): what YAML may say, checked once at load.
 * Templates and paths are compiled here too, so a bad `{{variable}}` is a config error with its path.
 */
import { z } from 'zod';
import { headerName, size } from '../../config/primitives.ts';
import { PROTECTED_HEADERS } from './head-rules.ts';
import { checkPath } from './json-body.ts';
import { compile } from './template.ts';

/** 1 MiB: default cap on a body buffered for body rules. */
export const DEFAULT_MAX_BODY = 1024 * 1024;

const template = z.string().superRefine((text, ctx) => {
  try {
    compile(text);
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
  }
});

const writableHeader = headerName.refine((name) => !PROTECTED_HEADERS.has(name.toLowerCase()), {
  message: 'this header is managed by the proxy and cannot be written',
});

const dottedPath = z.string().superRefine((path, ctx) => {
  const problem = checkPath(path);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

const headers = z.strictObject({
  set: z.record(writableHeader, template).optional(),
  add: z.record(writableHeader, template).optional(),
  remove: z.array(headerName).optional(),
  rename: z.record(headerName, writableHeader).optional(),
});

const queryName = z.string().min(1);
const query = z.strictObject({
  set: z.record(queryName, template).optional(),
  remove: z.array(queryName).optional(),
  rename: z.record(queryName, queryName).optional(),
});

const body = z
  .strictObject({
    unwrap: dottedPath.optional(),
    keep: z.array(dottedPath).min(1).optional(),
    drop: z.array(dottedPath).min(1).optional(),
    rename: z.record(dottedPath, dottedPath).optional(),
    /** Strings are templates; other values (numbers, lists, maps) are set as written. */
    set: z
      .record(dottedPath, z.unknown())
      .superRefine((map, ctx) => {
        for (const [key, value] of Object.entries(map)) {
          if (typeof value !== 'string') continue;
          try {
            compile(value);
          } catch (error) {
            ctx.addIssue({ code: 'custom', path: [key], message: (error as Error).message });
          }
        }
      })
      .optional(),
    wrap: dottedPath.optional(),
  })
  .refine((b) => Object.values(b).some((v) => v !== undefined), { message: 'an empty body section does nothing' });

const pathTemplate = template.refine((text) => text.startsWith('/'), { message: 'a path starts with "/"' });

const statusCode = z.number().int().min(100).max(599);

export const requestSection = z.strictObject({
  headers: headers.optional(),
  query: query.optional(),
  /** New path from a template, e.g. `/v2/users/{{params.id}}`; values are percent-encoded. */
  path: pathTemplate.optional(),
  body: body.optional(),
});

export const responseSection = z.strictObject({
  headers: headers.optional(),
  body: body.optional(),
  /** Upstream status → client status, e.g. `{ 404: 200 }`. */
  statusMap: z.record(z.string().regex(/^[1-5]\d\d$/, 'expected a status code such as 404'), statusCode).optional(),
});

export const transformOptions = z
  .strictObject({
    type: z.literal('transform').optional(),
    request: requestSection.optional(),
    response: responseSection.optional(),
    /** Cap on a buffered body (only buffered when a `body` section exists). Over it: 413 / 502. */
    maxBodySize: size.default(DEFAULT_MAX_BODY),
  })
  .refine((o) => o.request !== undefined || o.response !== undefined, {
    message: 'a transform needs a request or a response section',
  });

export type TransformOptions = z.output<typeof transformOptions>;
