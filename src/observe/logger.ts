/**
 * @module The process logger (pino, JSON lines on stdout). Access-log lines and operational messages share
 * it; access lines carry `msg: "request"`.
 */
import pino from 'pino';

export type Logger = pino.Logger;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * Asynchronous, buffered writes: the access log must not cost a syscall per request. `flushLogger` runs at
 * shutdown so no line is lost.
 */
export function createLogger(level: LogLevel = 'info'): Logger {
  const destination = new BatchedDestination(pino.destination({ dest: 1, sync: false, minLength: 0, maxWrite: 65536 }));
  // Buffered lines still reach the terminal promptly when traffic is light.
  setInterval(() => destination.flush(), 1000).unref();
  const logger = pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  ACCESS_LINES.set(logger, (line) => destination.write(line));
  return logger;
}

/**
 * Collects log lines and hands them to the file descriptor's writer in large chunks: one system call (and one
 * byte count) per 32 KiB instead of per line. Every line, pino's and the access log's, goes through it, so
 * their order is kept.
 */
class BatchedDestination {
  readonly #out: ReturnType<typeof pino.destination>;
  #pending = '';

  constructor(out: ReturnType<typeof pino.destination>) {
    this.#out = out;
  }

  write(line: string): boolean {
    this.#pending += line;
    if (this.#pending.length >= 32768) this.#drainPending();
    return true;
  }

  flush(cb?: (err?: Error) => void): void {
    this.#drainPending();
    this.#out.flush(cb);
  }

  #drainPending(): void {
    if (this.#pending === '') return;
    const chunk = this.#pending;
    this.#pending = '';
    this.#out.write(chunk);
  }
}

const ACCESS_LINES = new WeakMap<Logger, (line: string) => void>();

/**
 * A writer for pre-serialised JSON lines on the logger's destination, or undefined when info lines are off.
 * The access log uses it: one line per request is worth a hand-built serialiser (pino's generic one costs
 * several percent of a proxied request).
 */
export function lineWriter(logger: Logger): ((line: string) => void) | undefined {
  if (!logger.isLevelEnabled('info')) return undefined;
  return ACCESS_LINES.get(logger) ?? ((line: string) => logger.info(JSON.parse(line) as object));
}

export function flushLogger(log: Logger): void {
  try {
    log.flush();
  } catch {
    // stdout closed: nothing more can be written anyway
  }
}
