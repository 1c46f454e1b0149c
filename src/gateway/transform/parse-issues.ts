/**
 * @module Turns a zod parse result into the `PolicyFactory.parse` answer: the frozen config, or every issue
 * with a dotted path relative to the policy object (`request.headers.set`, `origins.2`), the form the registry
 * splits back into YAML path segments.
 * Shared by the cors, transform and validate policies.
 */
import type { z } from 'zod';

export interface ParseIssue {
  path: string;
  message: string;
}

export type ParseResult<C> = { ok: true; config: C } | { ok: false; issues: ParseIssue[] };

/** `['request', 'headers', 0]` → `request.headers.0`. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  return path.map(String).join('.');
}

export function toParseResult<C>(result: z.ZodSafeParseResult<C>): ParseResult<C> {
  if (result.success) return { ok: true, config: result.data };
  return {
    ok: false,
    issues: result.error.issues.map((issue) => ({ path: formatIssuePath(issue.path), message: messageOf(issue) })),
  };
}

/** A bad map key's own message ("not a valid header name") rather than zod's "Invalid key in record". */
function messageOf(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_key' && issue.issues.length > 0) return `key: ${issue.issues[0]!.message}`;
  return issue.message;
}
