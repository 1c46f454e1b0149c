/**
 * @module Loads a config file: YAML → references substituted → schema-checked → cross-checked → frozen.
 *
 * Problems are collected, never thrown one at a time: the user gets every YAML, schema and reference issue of
 * the file in one `ConfigError`, each with file, line, column and YAML path. A failed load changes nothing.
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { LineCounter, parseDocument, type YAMLError } from 'yaml';
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

  const raw = doc.toJS() as unknown;
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
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ConfigError([
      { file: path, line: 0, column: 0, path: '', message: `cannot read config file: ${describeFsError(err)}` },
    ]);
  }
  return loadConfigText(text, path, options);
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
