/**
 * @module `portico __load-config -c FILE`: the child side of load-in-child.ts. Loads and checks the file and
 * prints one JSON answer on stdout. Not meant for people: `portico validate` is.
 */

import type { LoadAnswer } from '../config/load-in-child.ts';
import { loadConfigFile } from '../config/loader.ts';
import { ConfigError } from '../errors.ts';
import { configValidators } from '../runtime/validators.ts';

export async function runLoadConfig(path: string): Promise<number> {
  let answer: LoadAnswer;
  try {
    answer = { ok: true, config: await loadConfigFile(path, { validators: configValidators() }) };
  } catch (err) {
    answer =
      err instanceof ConfigError
        ? { ok: false, issues: [...err.issues] }
        : { ok: false, error: { message: (err as Error).message, code: (err as { code?: string }).code } };
  }
  await new Promise<void>((resolve) => process.stdout.write(JSON.stringify(answer), () => resolve()));
  return 0;
}
