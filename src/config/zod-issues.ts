/**
 * @module Turns zod's issues into messages a user of the config file can act on: `expected one of http, https`,
 * `expected a number, got a string`, `unknown key (did you mean "match"?)`; never zod's internal wording.
 */
import type { z } from 'zod';
import type { ConfigPath } from './positions.ts';
import { duration, size } from './primitives.ts';
import { didYouMean } from './suggest.ts';

/** One schema problem, with whether the key (rather than its value) is at fault. */
export interface SchemaIssue {
  readonly path: ConfigPath;
  readonly message: string;
  readonly target: 'value' | 'key';
}

type RawIssue = z.core.$ZodRawIssue;
type Issue = z.core.$ZodIssue;

// The unions inside `duration` and `size` (before their transform): their type errors get unit examples.
const DURATION_UNION = (duration as unknown as { _zod: { def: { in: unknown } } })._zod.def.in;
const SIZE_UNION = (size as unknown as { _zod: { def: { in: unknown } } })._zod.def.in;

/** What a value is, in YAML words. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
      return Number.isInteger(value) ? 'an integer' : 'a number';
    case 'boolean':
      return 'a boolean';
    case 'object':
      return 'a map';
    default:
      return typeof value;
  }
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'a boolean (true or false)',
  object: 'a map',
  array: 'a list',
  record: 'a map',
  null: 'null',
};

function typeWord(expected: string): string {
  return TYPE_WORDS[expected] ?? expected;
}

function list(values: readonly unknown[]): string {
  return values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ');
}

function bound(iss: { origin: string; inclusive?: boolean }, n: number | bigint, dir: 'min' | 'max'): string {
  const num = Number(n);
  switch (iss.origin) {
    case 'array':
    case 'set':
      return dir === 'min'
        ? num === 1
          ? 'must not be empty (at least 1 item)'
          : `expected at least ${num} items`
        : `expected at most ${num} items`;
    case 'string':
      return dir === 'min'
        ? num === 1
          ? 'must not be empty'
          : `expected at least ${num} characters`
        : `expected at most ${num} characters`;
    default: {
      const inclusive = iss.inclusive !== false;
      if (dir === 'min') return inclusive ? `must be at least ${num}` : `must be greater than ${num}`;
      return inclusive ? `must be at most ${num}` : `must be less than ${num}`;
    }
  }
}

/**
 * Per-parse error map: gives every zod issue a readable message. Messages written in the schema itself
 * (`'names use letters, digits…'`) take precedence over this, as zod intends.
 */
export function configErrorMap(iss: RawIssue): string | undefined {
  switch (iss.code) {
    case 'invalid_type':
      if (iss.input === undefined) return 'required key is missing';
      return `expected ${typeWord(iss.expected)}, got ${describeValue(iss.input)}`;
    case 'invalid_value':
      if (iss.input === undefined) return `required key is missing (one of ${list(iss.values)})`;
      if (iss.values.length === 1) return `expected ${list(iss.values)}`;
      return `expected one of ${list(iss.values)}${typeof iss.input === 'string' ? didYouMean(iss.input, iss.values.map(String)) : ''}`;
    case 'too_small':
      return bound(iss, iss.minimum, 'min');
    case 'too_big':
      return bound(iss, iss.maximum, 'max');
    case 'invalid_format':
      if (iss.format === 'url') return 'expected a URL such as http://host:port';
      if (iss.format === 'starts_with') return `must start with "${(iss as { prefix?: string }).prefix}"`;
      if (iss.format === 'regex') return `does not match ${(iss as { pattern?: string }).pattern}`;
      return `expected a valid ${iss.format}`;
    case 'not_multiple_of':
      return `must be a multiple of ${iss.divisor}`;
    case 'invalid_union':
      return unionMessage(iss);
    default:
      return undefined;
  }
}

function unionMessage(iss: RawIssue & { code: 'invalid_union' }): string {
  const raw = iss as unknown as {
    inst?: unknown;
    input?: unknown;
    note?: string;
    options?: unknown[];
    discriminator?: string;
  };
  if (raw.note === 'No matching discriminator') {
    const options = list(raw.options ?? []);
    const given =
      raw.input !== null && typeof raw.input === 'object' && raw.discriminator !== undefined
        ? (raw.input as Record<string, unknown>)[raw.discriminator]
        : undefined;
    if (given === undefined) return `required key is missing (one of ${options})`;
    const hint = typeof given === 'string' ? didYouMean(given, (raw.options ?? []).map(String)) : '';
    return `expected one of ${options}${hint}`;
  }
  if (raw.inst === DURATION_UNION) return `expected a duration such as 250ms, 5s, 1m (got ${describeValue(raw.input)})`;
  if (raw.inst === SIZE_UNION) return `expected a size such as 512, 64KiB, 10MiB (got ${describeValue(raw.input)})`;
  // Every branch rejected the type: name the types the branches wanted.
  const wanted: string[] = [];
  for (const branch of iss.errors) {
    const first = branch[0];
    if (branch.length === 1 && first?.code === 'invalid_type' && first.path.length === 0) {
      wanted.push(typeWord(first.expected));
    } else if (first !== undefined) {
      // A branch got past the type check: its complaint is the most specific one.
      return first.message;
    }
  }
  return `expected ${wanted.join(' or ')}, got ${describeValue(raw.input)}`;
}

/**
 * Final issues → one SchemaIssue each; `unrecognized_keys` splits into one issue per key, at that key,
 * with a suggestion from the keys the schema knows at that place.
 */
export function toSchemaIssues(issues: readonly Issue[], knownKeys: (path: ConfigPath) => string[]): SchemaIssue[] {
  const out: SchemaIssue[] = [];
  for (const iss of issues) {
    const path = iss.path as PropertyKey[];
    if (iss.code === 'unrecognized_keys') {
      const known = knownKeys(path);
      for (const key of iss.keys) {
        out.push({ path: [...path, key], message: `unknown key${didYouMean(key, known)}`, target: 'key' });
      }
    } else if (iss.code === 'invalid_key') {
      const inner = iss.issues[0]?.message ?? 'invalid key';
      out.push({ path, message: `invalid name "${String(path.at(-1))}": ${inner}`, target: 'key' });
    } else {
      out.push({ path, message: iss.message, target: 'value' });
    }
  }
  return out;
}
