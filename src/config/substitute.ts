/**
 * @module `${VAR}`, `${VAR:-default}` and `file:path` references in string values, so secrets stay out of the
 * config file. Runs on the plain parsed YAML before schema validation; results are always strings.
 *
 * - `${VAR}`: the variable's value; an unset variable is an issue.
 * - `${VAR:-default}`: the default when the variable is unset or empty (as in sh).
 * - `$${`: a literal `${`.
 * - A whole value `file:relative/path`: the file's contents (one trailing newline removed), the path taken
 *   relative to the config file's directory. `${VAR}` may appear inside the path.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export interface SubstituteContext {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Directory that `file:` paths are relative to. */
  readonly baseDir: string;
}

export interface PathIssue {
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

// `$${` escape | `${NAME}` | `${NAME:-default}` | any other `${` (malformed).
const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{/g;
const FILE_PREFIX = 'file:';

/** A copy of `value` with every reference replaced, plus one issue per reference that could not be resolved. */
export function substituteReferences(value: unknown, ctx: SubstituteContext): { value: unknown; issues: PathIssue[] } {
  const issues: PathIssue[] = [];
  const out = walk(value, [], ctx, issues);
  return { value: out, issues };
}

function walk(value: unknown, path: PropertyKey[], ctx: SubstituteContext, issues: PathIssue[]): unknown {
  if (typeof value === 'string') return substituteString(value, path, ctx, issues);
  if (Array.isArray(value)) return value.map((item, i) => walk(item, [...path, i], ctx, issues));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = walk(item, [...path, key], ctx, issues);
    return out;
  }
  return value;
}

function substituteString(text: string, path: PropertyKey[], ctx: SubstituteContext, issues: PathIssue[]): string {
  if (text.startsWith(FILE_PREFIX)) {
    const rel = expandEnv(text.slice(FILE_PREFIX.length), path, ctx, issues);
    if (rel === undefined) return text;
    if (rel.trim() === '') {
      issues.push({ path, message: 'file: reference without a path' });
      return text;
    }
    return readReferencedFile(rel, path, ctx, issues) ?? text;
  }
  if (!text.includes('${')) return text;
  return expandEnv(text, path, ctx, issues) ?? text;
}

/** Expands `${…}` references; undefined (after recording issues) when one cannot be resolved. */
function expandEnv(text: string, path: PropertyKey[], ctx: SubstituteContext, issues: PathIssue[]): string | undefined {
  let failed = false;
  const out = text.replace(REFERENCE, (match, name: string | undefined, fallback: string | undefined) => {
    if (match === '$${') return '${';
    if (name === undefined) {
      failed = true;
      issues.push({
        path,
        // biome-ignore lint/suspicious/noTemplateCurlyInString: shows the reference syntax to the user
        message: 'malformed reference: write ${NAME} or ${NAME:-default} (or $${ for a literal "${")',
      });
      return match;
    }
    const value = ctx.env[name];
    if (fallback !== undefined) return value === undefined || value === '' ? fallback : value;
    if (value === undefined) {
      failed = true;
      issues.push({
        path,
        message: `environment variable ${name} is not set (use \${${name}:-default} for a default)`,
      });
      return match;
    }
    return value;
  });
  return failed ? undefined : out;
}

function readReferencedFile(
  rel: string,
  path: PropertyKey[],
  ctx: SubstituteContext,
  issues: PathIssue[],
): string | undefined {
  try {
    const content = readFileSync(resolve(ctx.baseDir, rel), 'utf8');
    return content.endsWith('\r\n') ? content.slice(0, -2) : content.endsWith('\n') ? content.slice(0, -1) : content;
  } catch (err) {
    issues.push({ path, message: `cannot read file "${rel}": ${describeFsError(err)}` });
    return undefined;
  }
}

/** A short reason for a failed file read, without the absolute path Node puts in its messages. */
export function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    default:
      return code ?? String(err);
  }
}
