/**
 * @module The `validate` policy: checks the request's headers, query and JSON body against JSON Schemas
 * (ajv, compiled once here, `allErrors`) and refuses an invalid request with 400 `GW_VALIDATION_FAILED`,
 * listing every violation (up to `maxErrors`) with a JSON pointer into `/headers`, `/query` or `/body`.
 *
 * The violations travel on the local reply as an extra `errors` property (see `ValidationReply`) for the
 * problem+json renderer; `details` (for the access log) only names the failing parts, never request data.
 */

import type { ErrorObject, ValidateFunction } from 'ajv';
import type { ErrorCode, LocalReply } from '../../errors.ts';
import { replyVerdict } from '../replies.ts';
import { decodeComponent, splitQuery } from '../transform/query.ts';
import { CONTINUE, type Exchange, type Policy, type Verdict } from '../types.ts';
import { firstDuplicateName } from './duplicate-keys.ts';
import type { ValidateOptions } from './options.ts';
import { compileSchema } from './schemas.ts';

export const GW_VALIDATION_FAILED: ErrorCode = 'GW_VALIDATION_FAILED';

export interface Violation {
  /** RFC 6901 pointer, rooted at the part of the request: `/body/items/0/price`, `/query/limit`. */
  readonly pointer: string;
  readonly message: string;
}

/** A local reply that also lists violations (proposed optional `errors` of LocalReply). */
export interface ValidationReply extends LocalReply {
  readonly errors: readonly Violation[];
}

// The route buffers up to the largest limit of its policies: this policy's own limit is checked here.
const BODY_TOO_LARGE = replyVerdict('GW_BODY_TOO_LARGE', 'body_over_policy_limit');

interface Plan {
  readonly body: ValidateFunction | undefined;
  readonly query: ValidateFunction | undefined;
  readonly headers: ValidateFunction | undefined;
  readonly bodyMethods: ReadonlySet<string>;
  readonly maxErrors: number;
  readonly maxBodySize: number;
}

export function createValidate(name: string, options: Readonly<ValidateOptions>): Policy {
  const plan: Plan = {
    body: options.body === undefined ? undefined : compileSchema(options.body, options.draft, false),
    query: options.query === undefined ? undefined : compileSchema(options.query, options.draft, true),
    headers:
      options.headers === undefined
        ? undefined
        : compileSchema(options.headers as object | boolean, options.draft, true),
    bodyMethods: new Set(options.bodyMethods.map((m) => m.toUpperCase())),
    maxErrors: options.maxErrors,
    maxBodySize: options.maxBodySize,
  };
  const policy: { -readonly [K in keyof Policy]: Policy[K] } = {
    name,
    type: 'validate',
    onRequest: (ex) => onRequest(ex, plan),
  };
  if (plan.body !== undefined) policy.requestBody = { maxBytes: options.maxBodySize };
  return policy;
}

function onRequest(ex: Exchange, plan: Plan): Verdict {
  let errors: Violation[] | undefined;
  let parts = '';
  if (plan.headers !== undefined) {
    // Copy: coercion writes into the data, and the real headers must stay strings.
    const data: Record<string, unknown> = { ...ex.request.headers };
    if (!plan.headers(data)) {
      errors = collect(errors, plan.headers.errors, '/headers', plan.maxErrors);
      parts = 'headers';
    }
  }
  if (plan.query !== undefined) {
    const data = queryObject(ex.request.query);
    if (!plan.query(data)) {
      errors = collect(errors, plan.query.errors, '/query', plan.maxErrors);
      parts = parts === '' ? 'query' : `${parts},query`;
    }
  }
  if (plan.body !== undefined && plan.bodyMethods.has(ex.request.method)) {
    if (ex.body !== undefined && ex.body.length > plan.maxBodySize) return BODY_TOO_LARGE;
    const bodyErrors = checkBody(ex.body, plan.body);
    if (bodyErrors !== undefined) {
      errors = errors === undefined ? bodyErrors : errors.concat(bodyErrors);
      parts = parts === '' ? 'body' : `${parts},body`;
    }
  }
  if (errors === undefined) return CONTINUE;
  if (errors.length > plan.maxErrors) errors.length = plan.maxErrors;
  const reply: ValidationReply = {
    status: 400,
    code: GW_VALIDATION_FAILED,
    details: `validation_failed:${parts}`,
    errors,
  };
  return { kind: 'reply', reply };
}

function checkBody(body: Buffer | undefined, validate: ValidateFunction): Violation[] | undefined {
  if (body === undefined || body.length === 0) return [{ pointer: '/body', message: 'a JSON body is required' }];
  let data: unknown;
  const text = body.toString('utf8');
  try {
    data = JSON.parse(text);
  } catch {
    return [{ pointer: '/body', message: 'is not valid JSON' }];
  }
  const repeated = firstDuplicateName(text);
  if (repeated !== undefined) return [{ pointer: `/body${repeated}`, message: 'repeats a member name' }];
  try {
    if (validate(data)) return undefined;
  } catch (err) {
    // A recursive schema walks the body recursively: a deep enough body overflows the stack.
    if (err instanceof RangeError) return [{ pointer: '/body', message: 'is nested too deeply' }];
    throw err;
  }
  return collect(undefined, validate.errors, '/body', Number.POSITIVE_INFINITY);
}

/** The raw query as an object: one value → a string, a repeated name → a list of strings. */
function queryObject(query: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null);
  for (const pair of splitQuery(query)) {
    const eq = pair.indexOf('=');
    const name = decodeComponent(eq === -1 ? pair : pair.slice(0, eq));
    const value = eq === -1 ? '' : decodeComponent(pair.slice(eq + 1));
    const existing = out[name];
    if (existing === undefined) out[name] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else out[name] = [existing, value];
  }
  return out;
}

function escapePointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

function collect(
  into: Violation[] | undefined,
  errors: readonly ErrorObject[] | null | undefined,
  root: string,
  max: number,
): Violation[] {
  const out = into ?? [];
  for (const error of errors ?? []) {
    if (out.length >= max) break;
    out.push(toViolation(error, root));
  }
  return out;
}

/** Points at the missing or extra property itself rather than at its parent object. */
function toViolation(error: ErrorObject, root: string): Violation {
  const base = root + error.instancePath;
  if (error.keyword === 'required') {
    const missing = (error.params as { missingProperty: string }).missingProperty;
    return { pointer: `${base}/${escapePointer(missing)}`, message: 'is required' };
  }
  if (error.keyword === 'additionalProperties') {
    const extra = (error.params as { additionalProperty: string }).additionalProperty;
    return { pointer: `${base}/${escapePointer(extra)}`, message: 'is not allowed' };
  }
  return { pointer: base, message: error.message ?? `fails "${error.keyword}"` };
}
