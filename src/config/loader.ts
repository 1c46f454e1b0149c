/**
 * @module Loads a config file: YAML → references substituted → schema-checked → cross-checked → frozen.
 *
 * Problems are collected, never thrown one at a time: the user gets every YAML, schema and reference issue of
 * the file in one `ConfigError`, each with file, line, column and YAML path. A failed load changes nothing.
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type Document, LineCounter, parseDocument, visit, type YAMLError } from 'yaml';
import { ConfigError, type ConfigIssue } from '../errors.ts';
import { deepFreeze } from './freeze.ts';
import { type ConfigPath, formatPath, PositionFinder } from './positions.ts';
import { checkReferences } from './references.ts';
import { type Config, configSchema } from './schema.ts';
import { knownKeysAt } from './schema-keys.ts';
import { describeFsError, substituteReferences } from './substitute.ts';
import { configErrorMap, describeValue, toSchemaIssues } from './zod-issues.ts';

/** A check another layer adds (e.g. the gateway checking each policy's options). Paths are like zod's. */
export type ConfigValidator = (config: Config) => Array<{ path: (string | number)[]; message: string }>;

export interface LoadOptions {
  /** Variables for `${VAR}` references; default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Extra checks, run once the schema accepts the file. */
  validators?: ConfigValidator[];
}

interface Located {
  readonly path: ConfigPath;
  readonly message: string;
  readonly target?: 'value' | 'key';
}

/** Alias uses the yaml package allows before it calls the document a resource exhaustion attack. */
const MAX_ALIAS_COUNT = 100;
/** 4 MiB holds some 60,000 routes; a larger file is surely the wrong one, and parsing it would take long. */
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

const YAML_MESSAGES: Readonly<Record<string, string>> = {
  MULTIPLE_DOCS: 'a config file holds one YAML document, but "---" starts another',
};

/**
 * Parses and checks config `text`. `file` names the file in issues; `file:` references are read relative to
 * its directory. Returns the frozen config or throws `ConfigError` with every issue.
 */
export function loadConfigText(text: string, file: string, options: LoadOptions = {}): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true });
  const finder = new PositionFinder(doc, lineCounter);

  const yamlErrors = [...doc.errors, ...doc.warnings];
  // A broken document would only add misleading schema errors: report the syntax first.
  if (yamlErrors.length > 0) throw new ConfigError(sortIssues(yamlErrors.map((e) => yamlIssue(e, file, finder))));

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // The yaml package refuses aliases that multiply ("billion laughs") here, as a thrown error.
    throw new ConfigError([aliasIssue(err, doc, file, finder)]);
  }
  if (raw === null || raw === undefined) {
    throw new ConfigError([{ file, line: 1, column: 1, path: '', message: 'the config file is empty' }]);
  }
  const substituted = substituteReferences(raw, { env: options.env ?? process.env, baseDir: dirname(file) });
  const value = substituted.value;

  const located: Located[] = [...substituted.issues];
  const taken = new Set(located.map((i) => formatPath(i.path)));
  // One issue per path: the first finder of a problem explains it best (an unset variable, then the schema).
  const add = (issue: Located) => {
    // Key issues (unknown, invalid) are about the key itself, so they never hide behind a value issue.
    if (issue.target === 'key') {
      located.push(issue);
      return;
    }
    const key = formatPath(issue.path);
    if (taken.has(key)) return;
    located.push(issue);
    taken.add(key);
  };

  const parsed = configSchema.safeParse(value, { error: configErrorMap, reportInput: true });
  if (!parsed.success) {
    if (typeof value !== 'object' || Array.isArray(value)) {
      located.push({ path: [], message: `the file must hold a map of sections, got ${describeValue(value)}` });
    } else {
      for (const issue of toSchemaIssues(parsed.error.issues, (p) => knownKeysAt(configSchema, p))) add(issue);
    }
  }
  for (const issue of checkReferences(value)) add(issue);
  if (parsed.success) for (const issue of runValidators(parsed.data, options.validators ?? [])) add(issue);

  if (located.length > 0) {
    throw new ConfigError(sortIssues(located.map((i) => locate(i, file, finder))));
  }
  return deepFreeze(parsed.data as Config);
}

/** Reads and loads a config file; an unreadable file is a `ConfigError` with one issue. */
export async function loadConfigFile(path: string, options: LoadOptions = {}): Promise<Config> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new ConfigError([
      { file: path, line: 0, column: 0, path: '', message: `cannot read config file: ${describeFsError(err)}` },
    ]);
  }
  if (bytes.length > MAX_CONFIG_BYTES) {
    throw new ConfigError([
      {
        file: path,
        line: 0,
        column: 0,
        path: '',
        message: `the config file is ${bytes.length} bytes; the limit is ${MAX_CONFIG_BYTES} (is it the right file?)`,
      },
    ]);
  }
  const text = bytes.toString('utf8');
  // Decoding replaces bad bytes with U+FFFD silently: a Latin-1 "é" would become part of a header value.
  const bad = firstInvalidUtf8(text, bytes);
  if (bad !== undefined) {
    throw new ConfigError([
      { file: path, ...bad, path: '', message: 'the file is not valid UTF-8 (save it as UTF-8)' },
    ]);
  }
  return loadConfigText(text, path, options);
}

/** Line and column of the first byte sequence that is not UTF-8, or undefined when all of `text` decoded. */
function firstInvalidUtf8(text: string, bytes: Buffer): { line: number; column: number } | undefined {
  if (Buffer.byteLength(text) === bytes.length && !text.includes('\uFFFD')) return undefined;
  for (let i = text.indexOf('\uFFFD'); i !== -1; i = text.indexOf('\uFFFD', i + 1)) {
    const at = Buffer.byteLength(text.slice(0, i));
    // A real U+FFFD in the file is the three bytes EF BF BD; anything else is a replaced bad sequence.
    if (bytes[at] === 0xef && bytes[at + 1] === 0xbf && bytes[at + 2] === 0xbd) continue;
    const lineStart = text.lastIndexOf('\n', i - 1) + 1;
    return { line: text.slice(0, i).split('\n').length, column: i - lineStart + 1 };
  }
  return undefined;
}

/** A YAML error thrown while building values (an alias bomb), placed at the first alias that repeats aliases. */
function aliasIssue(err: unknown, doc: Document, file: string, finder: PositionFinder): ConfigIssue {
  let first: number | undefined;
  let nested: number | undefined;
  visit(doc, {
    Alias(_key, alias) {
      const start = alias.range?.[0];
      first ??= start;
      let inner = false;
      const target = alias.resolve(doc);
      if (target !== undefined) {
        visit(target, {
          Alias() {
            inner = true;
            return visit.BREAK;
          },
        });
      }
      if (inner && nested === undefined) {
        nested = start;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  const { line, column } = finder.at(nested ?? first ?? 0);
  const reason = (err as Error).message ?? String(err);
  const message = /Excessive alias count/.test(reason)
    ? `YAML: aliases expand to too much data (more than ${MAX_ALIAS_COUNT} alias uses, as in a "billion laughs" attack); repeat fewer aliases of aliases`
    : `YAML: ${reason}`;
  return { file, line, column, path: '', message };
}

function runValidators(config: Config, validators: readonly ConfigValidator[]): Located[] {
  const out: Located[] = [];
  for (const validate of validators) {
    try {
      for (const issue of validate(config)) out.push({ path: issue.path, message: issue.message });
    } catch (err) {
      // A validator that throws is a bug in it, but the user still deserves the other issues.
      out.push({ path: [], message: `internal error in a config check: ${(err as Error).message}` });
    }
  }
  return out;
}

function locate(issue: Located, file: string, finder: PositionFinder): ConfigIssue {
  const { line, column } = finder.find(issue.path, issue.target ?? 'value');
  return { file, line, column, path: formatPath(issue.path), message: issue.message };
}

function yamlIssue(error: YAMLError, file: string, finder: PositionFinder): ConfigIssue {
  const { line, column } = finder.at(error.pos[0]);
  const message = YAML_MESSAGES[error.code] ?? error.message;
  return { file, line, column, path: '', message: `YAML: ${message}` };
}

/** By position, so the list reads top to bottom like the file. Stable for equal positions. */
function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.column - b.column);
}
