/** @module Value types shared by every part of the config schema: durations, sizes, names, addresses. */
import { z } from 'zod';
import { parseDuration, parseSize } from './units.ts';

/** `250ms`, `5s`, `1m` → milliseconds. A bare number is milliseconds. */
export const duration = z
  // The pattern only informs editors (JSON Schema); the transform below is the check.
  .union([z.number().int().nonnegative(), z.string().meta({ pattern: '^\\s*\\d+(\\.\\d+)?(ms|s|m|h|d)\\s*$' })])
  .transform((value, ctx) => {
    if (typeof value === 'number') return value;
    const ms = parseDuration(value);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `invalid duration "${value}" (use e.g. 250ms, 5s, 1m, 2h)` });
      return z.NEVER;
    }
    return ms;
  })
  .meta({ description: 'A duration such as 250ms, 5s, 1m, 2h (a bare number is milliseconds)' });

/** `64KiB`, `10MiB` → bytes. A bare number is bytes. */
export const size = z
  .union([
    z.number().int().nonnegative(),
    z.string().meta({ pattern: '^\\s*\\d+(\\.\\d+)?\\s*([bB]|[kKmMgG][iI]?[bB])?\\s*$' }),
  ])
  .transform((value, ctx) => {
    if (typeof value === 'number') return value;
    const bytes = parseSize(value);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `invalid size "${value}" (use e.g. 512, 64KiB, 10MiB)` });
      return z.NEVER;
    }
    return bytes;
  })
  .meta({ description: 'A size such as 512, 64KiB, 10MiB, 1GiB (a bare number is bytes)' });

export const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'names use letters, digits, ".", "_" and "-"')
  .max(64);

/** `host:port`, `[v6]:port` or `:port`. */
export const address = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]*):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:8080');

export const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'not a valid header name');

/**
 * A header value Node can send (RFC 9110 §5.5 field-value, as Node checks it): tabs, visible ASCII and Latin-1.
 * A line break or control character (say from a `${VAR}`) would otherwise fail every request at run time.
 */
export const headerValue = z
  .string()
  .regex(
    /^[\t\x20-\x7e\x80-\xff]*$/,
    'not a valid header value: no line breaks, control characters or characters beyond U+00FF',
  );
