/** @module `portico validate -c FILE`: loads a config file and reports OK or every issue, one a line. */

import { type LoadOptions, loadConfigFile } from '../config/loader.ts';
import { ConfigError, formatConfigIssue } from '../errors.ts';

/**
 * Checks `configPath` as `portico start` would. Prints `FILE: OK (…)` to stdout and returns 0, or prints each
 * issue (`file:line:col path: message`) to stderr and returns 1.
 */
export async function runValidate(configPath: string, options: LoadOptions = {}): Promise<number> {
  try {
    const config = await loadConfigFile(configPath, options);
    const { listeners, upstreams, routes } = config;
    process.stdout.write(
      `${configPath}: OK (${listeners.length} listeners, ${upstreams.length} upstreams, ${routes.length} routes)\n`,
    );
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.issues.map(formatConfigIssue).join('\n')}\n`);
    return 1;
  }
}
