/**
 * @module Where a bearer token comes from: the Authorization header (`Bearer <token>`) or a cookie.
 * Shared by jwt-auth and oauth2-introspection.
 */

import type { IncomingHttpHeaders } from 'node:http';
import { z } from 'zod';

export const tokenSource = z
  .strictObject({
    /** Read `Authorization: Bearer <token>` (default true). */
    bearer: z.boolean().default(true),
    /** Also read the token from this cookie. */
    cookie: z.string().min(1).optional(),
  })
  .default({ bearer: true });
export type TokenSource = z.output<typeof tokenSource>;

export type TokenReader = (headers: IncomingHttpHeaders) => string | undefined;

/** Value of cookie `name` in a Cookie header, or undefined. */
export function readCookie(header: string, name: string): string | undefined {
  let start = 0;
  while (start < header.length) {
    while (header.charCodeAt(start) === 32) start++;
    let end = header.indexOf(';', start);
    if (end === -1) end = header.length;
    if (header.startsWith(name, start) && header.charCodeAt(start + name.length) === 61 /* = */) {
      let value = header.slice(start + name.length + 1, end).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      return value;
    }
    start = end + 1;
  }
  return undefined;
}

export function createTokenReader(source: TokenSource): TokenReader {
  const cookie = source.cookie;
  const bearer = source.bearer;
  return (headers) => {
    if (bearer) {
      const auth = headers.authorization;
      if (auth !== undefined && auth.length > 7 && auth.slice(0, 7).toLowerCase() === 'bearer ') {
        const token = auth.slice(7).trim();
        if (token !== '') return token;
      }
    }
    if (cookie !== undefined) {
      const c = headers.cookie;
      if (c !== undefined) {
        const token = readCookie(c, cookie);
        if (token !== undefined && token !== '') return token;
      }
    }
    return undefined;
  };
}
