/**
 * @module `portico start`: load the config, open the listeners, reload on SIGHUP, drain on SIGTERM/SIGINT.
 */

import { dirname, resolve } from 'node:path';
import { loadConfigInChild } from '../config/load-in-child.ts';
import type { Config } from '../config/schema.ts';
import { ConfigError } from '../errors.ts';
import { createLogger, flushLogger, type Logger, type LogLevel } from '../observe/logger.ts';
import { Runtime } from '../runtime/runtime.ts';

export interface StartOptions {
  readonly config: string;
  readonly logLevel: LogLevel;
}

export async function runStart(options: StartOptions): Promise<number> {
  const log = createLogger(options.logLevel);
  let config: Config;
  try {
    config = await loadConfigInChild(options.config);
  } catch (err) {
    process.stderr.write(`portico: cannot start: ${describeStartError(err, options.config)}\n`);
    return 1;
  }
  // One reload at a time, whether asked by SIGHUP or by the admin API (POST /reload).
  let reloading: Promise<void> = Promise.resolve();
  const reloadFromSource = (): Promise<void> => {
    const run = reloading.then(() => reloadFromFile(runtime, log, options.config));
    reloading = run.catch(() => {});
    return run;
  };
  const runtime = new Runtime(log, { configDir: dirname(resolve(options.config)), reloadFromSource });
  try {
    await runtime.start(config);
  } catch (err) {
    process.stderr.write(`portico: cannot start: ${describeStartError(err, options.config)}\n`);
    flushLogger(log);
    return 1;
  }
  // Signal handlers go in before 'started' is announced: whoever reads that line may signal at once, and a
  // SIGHUP that came before its handler would end the process (the default action) instead of reloading.
  process.on('SIGHUP', () => {
    reloadFromSource().catch(() => {});
  });
  const stopped = new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      log.info({ msg: 'shutting down', signal });
      runtime.shutdown().then(
        () => {
          log.info({ msg: 'stopped' });
          flushLogger(log);
          resolve(0);
        },
        (err) => {
          log.error({ msg: 'shutdown failed', error: String(err) });
          flushLogger(log);
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  log.info({
    msg: 'started',
    config: options.config,
    listeners: runtime.ports(),
    admin: runtime.adminAddress(),
    pid: process.pid,
  });
  flushLogger(log);
  return stopped;
}

/** Loads the config file and swaps it in; logs and counts the result, and rethrows a failure. */
async function reloadFromFile(runtime: Runtime, log: Logger, configPath: string): Promise<void> {
  try {
    const next = await loadConfigInChild(configPath);
    await runtime.reload(next);
    runtime.metrics.reloaded('ok');
    log.info({ msg: 'reloaded', config: configPath, listeners: runtime.ports(), admin: runtime.adminAddress() });
    flushLogger(log);
  } catch (err) {
    runtime.metrics.reloaded(err instanceof ConfigError ? 'invalid' : 'failed');
    const detail = err instanceof ConfigError ? err.issues.length + ' issue(s)' : String(err);
    log.error({ msg: 'reload failed; the running config is unchanged', error: detail });
    process.stderr.write(
      `portico: reload failed, keeping the running config:\n${describeStartError(err, configPath)}\n`,
    );
    throw err;
  }
}

/** One clear line (or one per config issue) for the errors people meet when starting. */
export function describeStartError(err: unknown, configPath: string): string {
  if (err instanceof ConfigError) return `\n${err.message}`;
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  switch (e.code) {
    case 'ENOENT':
      return `config file not found: ${configPath}`;
    case 'EADDRINUSE':
      return `address already in use: ${e.address ?? ''}:${e.port ?? ''} (another process is listening there)`;
    case 'EACCES':
      return `permission denied to listen on ${e.address ?? ''}:${e.port ?? ''} (ports below 1024 need privileges)`;
    case 'EADDRNOTAVAIL':
      return `address not available on this machine: ${e.address ?? ''}`;
    default:
      return e.message ?? String(err);
  }
}
