/** @module Options of the `cors` policy (zod, strict), checked once at load. */
import { z } from 'zod';
import { headerName } from '../../config/primitives.ts';
import { parseDuration } from '../../config/units.ts';

/** @fastify/cors's default list. */
export const DEFAULT_METHODS = ['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE'] as const;

// scheme://host[:port], where host may start with `*.` (one or more labels) and port may be `*` (any).
const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:(\d{1,5}|\*))?$/;
const IPV6_ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/\[[0-9a-f:.]+\](:(\d{1,5}|\*))?$/;
const METHOD = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const origin = z
  .string()
  .transform((text) => text.toLowerCase())
  .superRefine((text, ctx) => {
    if (text === '*' || text === 'null' || ORIGIN.test(text) || IPV6_ORIGIN.test(text)) return;
    const message = text.endsWith('/')
      ? `"${text}": an origin has no path (remove the trailing "/")`
      : `"${text}" is not an origin: use scheme://host[:port], https://*.example.com, http://localhost:* or "*"`;
    ctx.addIssue({ code: 'custom', message });
  });

/** `10m` → whole seconds, as Access-Control-Max-Age wants. A bare number would be ambiguous (ms or s?). */
const maxAge = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `invalid duration "${text}" (use e.g. 600s, 10m, 2h)` });
    return z.NEVER;
  }
  return Math.floor(ms / 1000);
});

export const corsOptions = z.strictObject({
  type: z.literal('cors').optional(),
  /** Exact origins, patterns (`https://*.example.com`, `http://localhost:*`) or `*` for any. */
  origins: z.array(origin).min(1),
  /** Methods a preflight may ask for; `*` allows any. */
  methods: z
    .array(z.string().regex(METHOD, 'not a method name'))
    .min(1)
    .default([...DEFAULT_METHODS]),
  /** Request headers a preflight may ask for; absent or `*`: whatever the preflight asks for is allowed. */
  allowedHeaders: z.array(z.union([headerName, z.literal('*')])).optional(),
  /** Response headers the page may read (Access-Control-Expose-Headers). */
  exposedHeaders: z.array(headerName).default([]),
  /** Allow cookies and Authorization: the origin is then always echoed, never `*`. */
  credentials: z.boolean().default(false),
  /** How long a browser may cache a preflight answer, e.g. `10m`. */
  maxAge: maxAge.optional(),
});

export type CorsOptions = z.output<typeof corsOptions>;
