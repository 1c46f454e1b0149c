/**
 * @module Verified claims forwarded upstream as headers (`forwardClaims: { sub: x-user-id }`). Shared by
 * jwt-auth and oauth2-introspection. Values that are not header-safe are percent-encoded.
 */
import type { IncomingHttpHeaders } from 'node:http';

export type ClaimForwarder = ReadonlyArray<readonly [claim: string, header: string]>;

const UNSAFE_RE = /[^\t\x20-\x7e]/;

/** Precompiled pairs; undefined when nothing is forwarded. */
export function claimForwarder(map: Readonly<Record<string, string>>): ClaimForwarder | undefined {
  const pairs = Object.entries(map).map(([claim, header]) => [claim, header.toLowerCase()] as const);
  return pairs.length === 0 ? undefined : pairs;
}

function headerValue(value: unknown): string | undefined {
  let text: string;
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'boolean') text = String(value);
  else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) text = value.join(',');
  else text = JSON.stringify(value);
  return UNSAFE_RE.test(text) ? encodeURIComponent(text) : text;
}

export function forwardClaims(
  headers: IncomingHttpHeaders,
  claims: Readonly<Record<string, unknown>>,
  pairs: ClaimForwarder,
): void {
  for (const [claim, header] of pairs) {
    const v = headerValue(claims[claim]);
    if (v !== undefined) headers[header] = v;
  }
}
