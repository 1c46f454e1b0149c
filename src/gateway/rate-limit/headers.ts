/**
 * @module RateLimit response fields per draft-ietf-httpapi-ratelimit-headers-11 (structured-field lists):
 *   RateLimit-Policy: "<policy>";q=<quota>;w=<window seconds>
 *   RateLimit: "<policy>";r=<remaining>;t=<seconds until reset>
 * Several policies on one route append list members to the same field.
 */

export const RATELIMIT_POLICY = 'ratelimit-policy';
export const RATELIMIT = 'ratelimit';
export const RETRY_AFTER = 'retry-after';

/** The static `RateLimit-Policy` member; built once per plan. Policy names never contain `"` or `\`. */
export function policyMember(id: string, quota: number, windowMs: number): string {
  return `"${id}";q=${quota};w=${Math.max(1, Math.ceil(windowMs / 1000))}`;
}

export function limitMember(id: string, remaining: number, resetMs: number): string {
  return limitMemberFrom(limitMemberHead(id), remaining, resetMs);
}

/** The constant start of a policy's `RateLimit` member (`"<id>";r=`); built once per plan. */
export function limitMemberHead(id: string): string {
  return `"${id}";r=`;
}

/** The per-request `RateLimit` member from its precomputed head: two numbers, no other formatting. */
export function limitMemberFrom(head: string, remaining: number, resetMs: number): string {
  return head + remaining + ';t=' + Math.ceil(resetMs / 1000);
}

/** Adds a list member to a structured-field list header, keeping members other policies set. */
export function appendMember(headers: Record<string, string>, name: string, member: string): void {
  const prev = headers[name];
  headers[name] = prev === undefined ? member : prev + ', ' + member;
}

/** Whole seconds, at least 1, for Retry-After. */
export function retryAfterSeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}
