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
  const destination = pino.destination({ dest: 1, sync: false, minLength: 8192 });
  // Buffered lines still reach the terminal promptly when traffic is light.
  setInterval(() => destination.flush(), 1000).unref();
  return pino(
    {
      level,
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

export function flushLogger(log: Logger): void {
  try {
    log.flush();
  } catch {
    // stdout closed: nothing more can be written anyway
  }
}
