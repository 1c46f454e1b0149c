/**
 * @module Loads and checks a config file in a short-lived child process.
 *
 * Checking a config needs the YAML parser, the zod schema and every policy type's option schema: about
 * 20 MiB of code and data a running proxy never uses again (and a thread would not give back: its allocator
 * keeps the memory). A child process takes them away with it when it exits; the server receives the plain,
 * checked config as JSON and freezes it. Same errors, same messages as `loadConfigFile`.
 */
import { spawn } from 'node:child_process';
import { ConfigError, type ConfigIssue } from '../errors.ts';
import { deepFreeze } from './freeze.ts';
import type { Config } from './schema.ts';

/** What the child prints on stdout: one JSON document. */
export type LoadAnswer =
  | { readonly ok: true; readonly config: Config }
  | { readonly ok: false; readonly issues: ConfigIssue[] }
  | { readonly ok: false; readonly error: { readonly message: string; readonly code?: string } };

const LAUNCHER = new URL('../../bin/portico.mjs', import.meta.url).pathname;
/** Loading and checking a config takes well under a second; this only bounds a loader that hangs. */
const LOADER_TIMEOUT_MS = 20_000;

export function loadConfigInChild(path: string): Promise<Config> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [LAUNCHER, '__load-config', '-c', path], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: process.env,
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      err += c;
    });
    child.once('error', reject);
    // A loader that never answers must not hold a start or a reload forever.
    const timer = setTimeout(() => child.kill('SIGKILL'), LOADER_TIMEOUT_MS);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') {
        reject(
          new Error(`config loader gave no answer within ${LOADER_TIMEOUT_MS / 1000} s: ${err.trim() || 'no output'}`),
        );
        return;
      }
      let answer: LoadAnswer;
      try {
        answer = JSON.parse(Buffer.concat(out).toString('utf8')) as LoadAnswer;
      } catch {
        reject(new Error(`config loader failed (exit code ${code}): ${err.trim() || 'no answer'}`));
        return;
      }
      if (answer.ok) resolve(deepFreeze(answer.config));
      else if ('issues' in answer) reject(new ConfigError(answer.issues));
      else reject(Object.assign(new Error(answer.error.message), { code: answer.error.code }));
    });
  });
}
