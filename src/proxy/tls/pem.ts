/**
 * @module PEM values in the config: either the PEM text itself (a `file:` reference inlines a file's contents)
 * or a plain path to a PEM file, which is read here and may be watched for changes.
 *
 * Relative paths are resolved against the config file's directory when the runtime knows it, else the
 * working directory (`portico start` runs from anywhere, so prefer absolute paths or `file:`).
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

export interface PemSource {
  /** The PEM text. */
  readonly pem: string;
  /** The file it came from, when the config named a path (watch it); undefined for inline PEM. */
  readonly path: string | undefined;
}

/** True when `value` is PEM text rather than a path. */
export function isPemText(value: string): boolean {
  return value.includes('-----BEGIN ');
}

/** The absolute path a config path names. */
export function resolvePemPath(value: string, baseDir: string | undefined): string {
  return isAbsolute(value) ? value : resolve(baseDir ?? process.cwd(), value);
}

/** Reads one PEM value. Throws (with the path, never the contents) when the file cannot be read or holds no PEM. */
export function readPem(value: string, baseDir: string | undefined, what: string): PemSource {
  if (isPemText(value)) return { pem: value, path: undefined };
  const path = resolvePemPath(value, baseDir);
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (!isPemText(pem)) throw new Error(`${what} ${path} holds no PEM block`);
  return { pem, path };
}
